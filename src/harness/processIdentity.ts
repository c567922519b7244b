// Who a pid is: a process is named by its pid and its start time (field 22 of /proc/<pid>/stat, clock ticks
// since boot), taken in a given boot and pid namespace. A pid alone is not enough to say a recorded process
// still runs: once it has exited, the kernel hands the number to the next process that wants one.
//
// Linux only (it reads /proc). Where /proc cannot be read, nothing can be told about a recorded process, and
// every answer leans towards "it may still run".
import { readFile, readlink } from 'node:fs/promises';
import { statFieldsAfterComm } from './procStat.ts';

/** One process: its pid and its start time, which together never name another process within a boot. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks from boot to the process's start. */
  startTicks: number;
}

/** What a pid and a start time are relative to. */
export interface ProcessContext {
  /** /proc/sys/kernel/random/boot_id: a new one at each boot, when every pid and start time starts over. */
  bootId: string;
  /** /proc/self/ns/pid's link, e.g. `pid:[4026531836]`: pids are numbered per namespace (one per container). */
  pidNamespace: string;
}

/** `/proc/<pid>/stat`'s fields 3 onwards (statFieldsAfterComm); undefined when the process is gone. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    return statFieldsAfterComm(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The boot and pid namespace this process runs in; undefined where /proc does not say. */
export async function currentProcessContext(): Promise<ProcessContext | undefined> {
  try {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const pidNamespace = await readlink('/proc/self/ns/pid');
    return bootId === '' || pidNamespace === '' ? undefined : { bootId, pidNamespace };
  } catch {
    return undefined;
  }
}

/** `pid`'s identity while it runs; undefined when it is gone (or /proc does not say). */
export async function processIdentity(pid: number): Promise<ProcessIdentity | undefined> {
  // Field 22 is the 20th counted from field 3.
  const startTicks = Number((await statFields(pid))?.[19]);
  return Number.isSafeInteger(startTicks) && startTicks >= 0 ? { pid, startTicks } : undefined;
}

/**
 * Whether the process `identity` names (recorded in `recorded`, a context of this machine) can still be
 * running, seen from this process. False only when that is certain: another boot, no process with that pid, a
 * zombie (it holds no files any more), or a process with that pid that started at another time (the pid was
 * reused). A record from another pid namespace cannot be checked from here, so it counts as running.
 */
export async function mayStillRun(identity: ProcessIdentity, recorded: ProcessContext, current: ProcessContext | undefined): Promise<boolean> {
  if (current === undefined) return true;
  if (recorded.bootId !== current.bootId) return false;
  if (recorded.pidNamespace !== current.pidNamespace) return true;
  if (!pidInUse(identity.pid)) return false;
  const fields = await statFields(identity.pid);
  // Gone between the two looks, or hidden from this user by /proc's hidepid (then it cannot be told apart).
  if (fields === undefined) return pidInUse(identity.pid);
  const state = fields[0];
  if (state === 'Z' || state === 'X') return false;
  return Number(fields[19]) === identity.startTicks;
}

/**
 * Whether some process, whoever it is, runs with `pid` now (a zombie does not: it holds no files any more).
 * Where /proc hides it from this user, a pid in use counts as running.
 */
export async function pidRuns(pid: number): Promise<boolean> {
  if (!pidInUse(pid)) return false;
  const fields = await statFields(pid);
  if (fields === undefined) return pidInUse(pid);
  return fields[0] !== 'Z' && fields[0] !== 'X';
}

/** True while some process has `pid`, whoever it is. */
function pidInUse(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to a user this process may not signal.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
