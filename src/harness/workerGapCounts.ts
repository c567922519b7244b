// Sums the gap counts workers report (`worker gaps {...}` lines, cumulative per process) over every worker
// process of a run, restarts included: a process's last line is its total; a new `worker started` line begins
// a new process of the same child.
import type { ChildService } from './childService.ts';

/** A child whose output lines can be followed (a ChildService). */
export type LineSource = Pick<ChildService, 'onLine'>;
import { parseGapLine, type GapCounts } from '../system/workerGapLine.ts';

const zero = (): GapCounts => ({ gapsPassed: 0, gapsPassedByTimeout: 0, gapsPassedByStatements: 0, gapsPassedByInnodbTrx: 0, conflictRetries: 0 });

export class WorkerGapCounts {
  /** Totals of processes that have been replaced by a restart. */
  private finished = zero();
  /** The latest line of each child's current process. */
  private readonly current = new Map<LineSource, GapCounts>();

  /** Starts counting a worker child's lines; call before it starts, or right after (its first pass comes later). */
  watch(child: LineSource): void {
    child.onLine((line) => {
      if (line.startsWith('worker started')) {
        const last = this.current.get(child);
        if (last !== undefined) this.finished = add(this.finished, last);
        this.current.delete(child);
        return;
      }
      const counts = parseGapLine(line);
      if (counts !== undefined) this.current.set(child, counts);
    });
  }

  totals(): GapCounts {
    let t = this.finished;
    for (const c of this.current.values()) t = add(t, c);
    return t;
  }
}

function add(a: GapCounts, b: GapCounts): GapCounts {
  return {
    gapsPassed: a.gapsPassed + b.gapsPassed,
    gapsPassedByTimeout: a.gapsPassedByTimeout + b.gapsPassedByTimeout,
    gapsPassedByStatements: a.gapsPassedByStatements + b.gapsPassedByStatements,
    gapsPassedByInnodbTrx: a.gapsPassedByInnodbTrx + b.gapsPassedByInnodbTrx,
    conflictRetries: a.conflictRetries + b.conflictRetries,
  };
}
