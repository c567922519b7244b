// The children of a process, from /proc: what the bench adds up to charge a database its backends' CPU, and
// what pausing a private PostgreSQL signals besides the postmaster.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Pids of the children of `pid` (every thread's), from /proc/<pid>/task/<tid>/children; [] if unreadable. Like
 * any reading of /proc, it can miss a child started or reaped while it reads: callers that need every child
 * (signalling a server) read it while the parent is stopped.
 */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}
