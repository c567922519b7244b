// CPU seconds (user + system) used by a process, from /proc/<pid>/stat, so the bench can say which process
// the cores went to: load generator, server, worker, database.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { childPids } from './childPids.ts';
import { statFieldsAfterComm } from './procStat.ts';

let ticksPerSecond: number | undefined;

/** The kernel's USER_HZ (`getconf CLK_TCK`), 100 on every Linux this runs on; read once. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * The sum of two tick counters of a /proc/<pid>/stat line, in seconds; `field` is the first one's number as
 * proc(5) counts them.
 */
function sumOfTwoFields(text: string, field: number, what: string, ticks: number): number {
  const rest = statFieldsAfterComm(text);
  if (rest === undefined) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  const a = Number(rest[field - 3]);
  const b = Number(rest[field - 2]);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error(`cannot read ${what} from: ${text.slice(0, 80)}`);
  return (a + b) / ticks;
}

/** utime + stime (fields 14 and 15) of a /proc/<pid>/stat line: the process's own CPU seconds, all threads. */
export function parseProcStat(text: string, ticks = clockTicksPerSecond()): number {
  return sumOfTwoFields(text, 14, 'utime/stime', ticks);
}

/**
 * cutime + cstime (fields 16 and 17): the CPU seconds of the children `pid` has waited for. A server that forks
 * a process per connection (PostgreSQL's postmaster) reaps each backend when it exits, so a closed session's CPU
 * lands here instead of vanishing from the tree.
 */
export function parseReapedChildrenCpu(text: string, ticks = clockTicksPerSecond()): number {
  return sumOfTwoFields(text, 16, 'cutime/cstime', ticks);
}

/** CPU seconds of `pid` and of the children it has reaped; undefined if the process is gone. */
function processAndReapedCpuSeconds(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return parseProcStat(text) + parseReapedChildrenCpu(text);
  } catch {
    return undefined;
  }
}

/** CPU seconds of `pid` so far; undefined if the process is gone (or /proc is not there). */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of `pid` and of every descendant, live or reaped (a database started under a wrapper, PostgreSQL's
 * backend per connection); undefined if `pid` itself is gone. /proc/<pid>/stat already counts all threads of a
 * process, and its cutime/cstime the children it has waited for: without those, a PostgreSQL end-to-end point
 * read 0 us of database CPU per message once the server's and worker's sessions had closed before the reading.
 */
export function processTreeCpuSeconds(pid: number): number | undefined {
  const own = processAndReapedCpuSeconds(pid);
  if (own === undefined) return undefined;
  let total = own;
  const seen = new Set<number>([pid]);
  const queue = childPids(pid);
  while (queue.length > 0) {
    const child = queue.shift()!;
    if (seen.has(child)) continue;
    seen.add(child);
    total += processAndReapedCpuSeconds(child) ?? 0;
    queue.push(...childPids(child));
  }
  return total;
}

/** CPU seconds of this process so far, all its threads (it runs the load generator, the sampler, the SQL ceiling). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Difference of two readings, undefined if either is missing (a process that died in between). */
export function cpuDelta(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : Math.max(0, after - before);
}
