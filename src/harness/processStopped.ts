// Waiting until a SIGSTOP has taken effect. kill(2) only queues the signal: a thread of the target that is running
// on another core goes on until the kernel next looks at it, so a query can still be answered just after pause()
// returned (the managed database's pause test saw an answer 3 ms after SIGSTOP on a loaded 2-core machine). A
// pause is real once every thread of the process reads state T (stopped) in /proc/<pid>/task/<tid>/stat.
import { readdirSync, readFileSync } from 'node:fs';
import { statFieldsAfterComm } from './procStat.ts';

/** The state letter of each /proc/<pid>/task/<tid>/stat (field 3), or undefined if the process is gone. */
function threadStates(pid: number): string[] | undefined {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      return statFieldsAfterComm(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))?.[0] ?? '';
    });
  } catch {
    return undefined;
  }
}

/** True when every thread of `pid` is stopped ('T', or 't' under a tracer) or the process is gone. */
export function isStopped(pid: number): boolean {
  const states = threadStates(pid);
  return states === undefined || states.every((s) => s === 'T' || s === 't' || s === 'Z' || s === 'X');
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks until every process of `pids` is stopped, polling each millisecond; throws after `timeoutMs`. Blocking,
 * so pause() stays synchronous for its callers; it normally returns within a millisecond.
 */
export function waitUntilStopped(pids: readonly number[], timeoutMs = 2_000): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = pids.filter((pid) => !isStopped(pid));
    if (running.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`SIGSTOP sent, but process(es) ${running.join(', ')} still not stopped after ${timeoutMs} ms`);
    Atomics.wait(sleeper, 0, 0, 1);
  }
}
