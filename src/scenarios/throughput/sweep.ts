// The throughput sweep behind `eob bench`: the planned points (plan.ts) run in order (points.ts); ceilings
// (HTTP without database, raw-SQL consume loop), the watermill-handler baseline, drain points (a backlog
// published straight into the table, then workers) and end-to-end points (autocannon and workers together).
import { type Point, pointLabel } from './plan.ts';
import { type PointResult, type SweepContext, runPoint } from './points.ts';

export interface SweepRun {
  results: PointResult[];
  interrupted: boolean;
}

/** Runs the planned points in order; stops early (keeping what was measured) when `signal` aborts. */
export async function runSweep(
  ctx: SweepContext,
  points: readonly Point[],
  onPoint: (done: number, label: string, result?: PointResult) => void,
): Promise<SweepRun> {
  const results: PointResult[] = [];
  for (const [i, point] of points.entries()) {
    if (ctx.signal?.aborted === true) return { results, interrupted: true };
    onPoint(i, pointLabel(point));
    const r = await runPoint(ctx, point);
    results.push(r);
    onPoint(i + 1, pointLabel(point), r);
  }
  return { results, interrupted: ctx.signal?.aborted === true };
}
