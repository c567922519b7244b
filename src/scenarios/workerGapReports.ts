// The gap counts of a chaos case, from what its worker processes print: each one prints
// `worker stopped {stats}` when it stops cleanly, even when its logs are quiet. A worker killed by a fault
// prints nothing, so the counts cover the processes that reported, and say how many of how many did.
export interface GapCounts {
  /** Offsets passed over as holes, by any rule. */
  passed: number;
  /** Of those, passed by the bound (the gap timeout), without proof. */
  passedByTimeout: number;
  /** Worker processes that printed their stats. */
  reports: number;
  /** Worker processes started (each prints `worker started` when ready). */
  starts: number;
}

const STOPPED = /^worker stopped (\{.*\})\s*$/;

/** Sums the `worker stopped` lines of the workers' output; lines that are not stats are ignored. */
export function gapCountsFromOutput(lines: Iterable<string>): GapCounts {
  const counts: GapCounts = { passed: 0, passedByTimeout: 0, reports: 0, starts: 0 };
  for (const line of lines) {
    if (line.startsWith('worker started')) counts.starts += 1;
    const m = STOPPED.exec(line);
    if (m === null) continue;
    let stats: { gapsPassed?: unknown; gapsPassedByTimeout?: unknown };
    try {
      stats = JSON.parse(m[1] ?? '') as typeof stats;
    } catch {
      continue;
    }
    counts.reports += 1;
    if (typeof stats.gapsPassed === 'number') counts.passed += stats.gapsPassed;
    if (typeof stats.gapsPassedByTimeout === 'number') counts.passedByTimeout += stats.gapsPassedByTimeout;
  }
  return counts;
}
