// The chaos scenario: the cases of the matrix one after another, each on a fresh system (runCase.ts). Like
// the bench, it runs and then its results are written (chaosReport.ts); the verdicts decide the exit code.
import { type ChaosCase } from './chaosMatrix.ts';
import { type ChaosRunOptions } from './options.ts';
import { type CaseResult } from './caseResult.ts';
import { runCase } from './runCase.ts';
import { caseLine } from './chaosReport.ts';

export interface ChaosSuiteOptions extends ChaosRunOptions {
  cases: readonly ChaosCase[];
  /** Called before each case (progress bar). */
  onCase: (index: number, c: ChaosCase) => void;
}

/** Runs the cases one after another (each on a fresh system); stops early only when `signal` aborts. */
export async function runChaosCases(o: ChaosSuiteOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const [i, c] of o.cases.entries()) {
    if (o.signal?.aborted === true) break;
    o.onCase(i, c);
    const r = await runCase(c, o);
    o.log(caseLine(r, i + 1, o.cases.length));
    results.push(r);
  }
  return results;
}
