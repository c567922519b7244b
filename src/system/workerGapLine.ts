// The worker's gap report line, the contract between `eob worker` and the harness: after each passed hole (and
// each conflict retry) the worker prints `worker gaps {...}` with its cumulative counts, even when quiet, so a harness that reads its
// output knows how many offsets were passed, and how many only by the bound, even if the worker is later
// killed. Each process counts from zero.
import type { SubscriberStats } from './pubsub/types.ts';

export const WORKER_GAPS_LINE = 'worker gaps';

export interface GapCounts {
  gapsPassed: number;
  gapsPassedByTimeout: number;
  gapsPassedByStatements: number;
  gapsPassedByInnodbTrx: number;
  /** Consume transactions rolled back by a conflict (deadlock, Galera certification) and retried. */
  conflictRetries: number;
}

export function gapCounts(s: SubscriberStats): GapCounts {
  return {
    gapsPassed: s.gapsPassed,
    gapsPassedByTimeout: s.gapsPassedByTimeout,
    gapsPassedByStatements: s.gapsPassedByStatements,
    gapsPassedByInnodbTrx: s.gapsPassedByInnodbTrx,
    conflictRetries: s.conflictRetries,
  };
}

/** The counts of one `worker gaps {...}` line; undefined for any other line. */
export function parseGapLine(line: string): GapCounts | undefined {
  if (!line.startsWith(`${WORKER_GAPS_LINE} `)) return undefined;
  try {
    const v = JSON.parse(line.slice(WORKER_GAPS_LINE.length + 1)) as Partial<GapCounts>;
    const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
    return {
      gapsPassed: n(v.gapsPassed),
      gapsPassedByTimeout: n(v.gapsPassedByTimeout),
      gapsPassedByStatements: n(v.gapsPassedByStatements),
      gapsPassedByInnodbTrx: n(v.gapsPassedByInnodbTrx),
      conflictRetries: n(v.conflictRetries),
    };
  } catch {
    return undefined;
  }
}
