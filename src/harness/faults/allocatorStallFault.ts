// The db-stall-allocator fault's hold on the database: one injection attaches the allocator stall (gdb on the
// private mariadbd) for a while, stalling every Nth insert right after its offset is allocated, then detaches,
// and reports how many stalls were proven to sit in the allocator window. Whether the machine can do it at all
// (gdb with Python, ptrace rights) is learnt once per process, by attaching to a harmless process, so a case
// that cannot run the fault says why before its load starts instead of failing every injection.
import { spawn } from 'node:child_process';
import { DEFAULT_ALLOCATOR_STALL_OPTIONS, startAllocatorStall } from './allocatorStall.ts';

/** One injection: stop every `every`-th insert for `stallMs` after its offset is allocated, for `forMs`. */
export interface AllocatorStallPlan {
  every: number;
  stallMs: number;
  /** How long inserts are watched (and every `every`-th stalled) before the debugger lets go (ms). */
  forMs: number;
}

/** What one injection did, and the evidence that it opened the allocator window. */
export interface AllocatorStallProof {
  /** Inserts stopped after their offset was allocated. */
  stalls: number;
  /**
   * Stalls proven to sit in the window: while the thread was stopped, its connection was running the
   * statement that had just been given an offset, and a fresh INNODB_TRX read listed no real transaction id
   * for it.
   */
  inWindow: number;
  /** One line for the fault log. */
  detail: string;
}

/** The database side of db-stall-allocator. */
export interface AllocatorStaller {
  /** Why it cannot run here (no gdb, ptrace refused, not a private local database); undefined when it can. */
  unavailable: string | undefined;
  stall(plan: AllocatorStallPlan): Promise<AllocatorStallProof>;
}

export interface LocalAllocatorStallerOptions {
  /** The private server's current pid (it changes when a fault restarts the database). */
  serverPid: () => number | undefined;
  /** That server's URL, for the evidence reads (PROCESSLIST, INNODB_TRX). */
  mysqlUrl: string;
  log: (line: string) => void;
}

/** A staller that cannot run, with the reason every skipped injection will carry. */
export function unavailableStaller(reason: string): AllocatorStaller {
  return {
    unavailable: reason,
    stall: () => Promise.reject(new Error(`db-stall-allocator unavailable: ${reason}`)),
  };
}

const machineChecks = new Map<string, Promise<string | undefined>>();

/** How long the probe may take: gdb starts and attaches to a sleeping process in well under a second here. */
const PROBE_TIMEOUT_MS = 30_000;
const PROBE_MARK = 'EOB-GDB-PROBE-OK';

/**
 * Attaches gdb, with its Python, to a `sleep` child of this process, never to the database: it needs the
 * same things the stall needs (gdb, Python in gdb, the right to ptrace a process gdb did not start), and a
 * probe that went wrong can harm nothing. The answer holds for every private server this process starts:
 * they are its children too, run as the same user. Undefined when the machine can; else the reason.
 */
export function checkMachineForAllocatorStall(gdbPath = DEFAULT_ALLOCATOR_STALL_OPTIONS.gdbPath): Promise<string | undefined> {
  const known = machineChecks.get(gdbPath);
  if (known !== undefined) return known;
  const check = (async (): Promise<string | undefined> => {
    const target = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      if (target.pid === undefined) return 'could not start a process to try gdb on';
      const probe = await run(gdbPath, ['-nx', '-batch', '-p', String(target.pid), '-ex', `python print("${PROBE_MARK}")`], PROBE_TIMEOUT_MS);
      if (probe.error !== undefined) return `gdb could not be started (${probe.error}); install gdb (apt-get install gdb)`;
      if (probe.output.includes(PROBE_MARK)) return undefined;
      if (/ptrace|Operation not permitted/i.test(probe.output)) {
        return 'ptrace refused: gdb may not attach to this process\'s children (run as root or with CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope=0)';
      }
      if (/Python scripting is not supported/i.test(probe.output)) return 'this gdb has no Python support; install the distribution gdb package (apt-get install gdb)';
      return `gdb could not attach: ${probe.output.trim().split('\n').slice(-2).join(' | ') || 'no output'}`;
    } finally {
      target.kill('SIGKILL');
    }
  })();
  machineChecks.set(gdbPath, check);
  return check;
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ output: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (e) => resolve({ output, error: e.message }));
    child.on('close', () => resolve({ output, error: undefined }));
  });
}

/** The staller of a private database this process started; checks the machine first. */
export async function localAllocatorStaller(o: LocalAllocatorStallerOptions): Promise<AllocatorStaller> {
  const reason = await checkMachineForAllocatorStall();
  if (reason !== undefined) return unavailableStaller(reason);
  const attach = async (plan: AllocatorStallPlan, maxStalls: number, evidence: boolean) => {
    const pid = o.serverPid();
    if (pid === undefined) throw new Error('db-stall-allocator: the private database is not running');
    const started = await startAllocatorStall({
      ...DEFAULT_ALLOCATOR_STALL_OPTIONS,
      serverPid: pid,
      mysqlUrl: o.mysqlUrl,
      every: plan.every,
      stallMs: plan.stallMs,
      maxStalls,
      evidenceEvery: evidence ? 1 : 0,
      log: o.log,
    });
    if (started.kind === 'unavailable') throw new Error(`db-stall-allocator: ${started.reason}`);
    return started.stall;
  };
  return {
    unavailable: undefined,
    async stall(plan) {
      // First the proof, on a sample: each evidence check reads INNODB_TRX fresh, and a read refreshes the
      // table's cache for every session for 100 ms. Checking every stall (one every ~60 ms here) kept the
      // worker's own INNODB_TRX reads from ever being fresh, so the rule under test never passed a hole and
      // lost nothing (0 of 150 stalls, where unchecked stalls lost 16-17 of 120). So: stalls with evidence
      // until one is proven, then the rest of the window without.
      const sampler = await attach(plan, EVIDENCE_SAMPLE, true);
      const sampleDeadline = performance.now() + Math.min(plan.forMs, SAMPLE_WAIT_MS);
      // Until one stall is proven (a check can find INNODB_TRX's cache refreshed by the worker's own reads
      // and prove nothing), or the sample is used up.
      while (performance.now() < sampleDeadline) {
        const n = sampler.counts();
        if (n.stallsInWindow > 0 || n.stalls >= EVIDENCE_SAMPLE) break;
        await sleep(20);
      }
      const sample = await sampler.stop();
      const proven = sampler.stalls.find((x) => x.verdict === 'in-window');
      const other = sampler.stalls.find((x) => x.verdict !== 'in-window');
      const rest = await attach(plan, 0, false);
      await sleep(plan.forMs);
      const unchecked = await rest.stop();
      const stalls = sample.stalls + unchecked.stalls;
      return {
        stalls,
        inWindow: sample.stallsInWindow,
        detail:
          `stalled ${stalls} of ${sample.allocations + unchecked.allocations} allocations ${plan.stallMs} ms (every ${plan.every}th, then ${plan.forMs} ms); ` +
          `of the first ${sample.stalls} checked: ${sample.stallsInWindow} proven in the allocator window, ${sample.stallsRegistered} already registered, ${sample.stallsUnproven} unproven` +
          (proven === undefined ? '' : ` (e.g. ${proven.reason})`) +
          (proven === undefined && other !== undefined ? ` (e.g. ${other.verdict}: ${other.reason})` : ''),
      };
    },
  };
}

/**
 * Stalls checked at most per injection. One proven is enough to show the breakpoint lands in the window;
 * with the worker reading INNODB_TRX itself, a check often finds the cache just refreshed and proves nothing,
 * which is why more than one may be needed.
 */
const EVIDENCE_SAMPLE = 10;
/** How long the sample may take (ms): at ~15 stalls a second here, 10 stalls take under 1 s. */
const SAMPLE_WAIT_MS = 2_500;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
