// What one chaos case produced (verdict, timeline, faults, phases, rates), and whether that met the case's
// expectation: exactly-once cases must be valid, controls must be caught with their violation.
import { type FaultEvent } from './nemesis.ts';
import type { RequestAttempt } from './history.ts';
import { type Verdict } from './checker.ts';
import { type PhaseTiming } from './phases.ts';
import { type ChaosCase, type Expectation } from './chaosMatrix.ts';
import type { EngineName } from '../../harness/engines.ts';

export interface TimelineSample {
  tMs: number;
  published: number;
  acked: number;
  requestsOk: number;
  /** Sum of every counter (the effects applied); undefined when that read failed. */
  counterTotal?: number | undefined;
}

export interface CaseResult {
  case: ChaosCase;
  /** The engine the case ran on. */
  engine: EngineName;
  verdict: Verdict | undefined;
  expected: Expectation;
  /** The case shows what it must: valid for exactly-once cases, the violation for controls. */
  passed: boolean;
  why: string;
  faults: FaultEvent[];
  skippedFaults: string[];
  history: RequestAttempt[];
  timeline: TimelineSample[];
  phases: PhaseTiming[];
  quiesced: boolean;
  drainMsgsPerS: number | undefined;
  drainDuringFaultsMsgsPerS: number | undefined;
  durationMs: number;
  databaseVersion: string | undefined;
  /** Rows in eob_poison_<topic> at the snapshot: messages the workers set aside (0 unless a payload was rejected; on the docker backend, whose database is shared by the cases, the run so far). */
  poisoned: number | undefined;
  /** Offset mode: offsets the workers passed as holes, and of those, by the gap timeout (a bound) alone. */
  gapsPassed: number | undefined;
  gapsPassedByTimeout: number | undefined;
  /** Consume transactions rolled back by a conflict (deadlock, or a certification failure on a cluster) and retried. */
  conflictRetries?: number | undefined;
  /** single (the default), or galera (a private cluster; the case names the node of each process). */
  topology?: string;
  error: string | undefined;
  /** The run was stopped (Ctrl-C, SIGTERM) while this case ran: its load was cut short, so it proves nothing. */
  interrupted?: boolean;
}

export function expectationMet(expected: Expectation, v: Verdict): { passed: boolean; why: string } {
  switch (expected) {
    case 'valid':
      return { passed: v.verdict === 'valid', why: v.verdict === 'valid' ? 'valid' : `${v.verdict}: ${v.reasons.join('; ')}` };
    case 'duplicated':
      return { passed: v.duplicated > 0, why: v.duplicated > 0 ? `detected ${v.duplicated} duplicated` : 'control came out clean: no duplicate detected' };
    case 'lost':
      return { passed: v.lost > 0, why: v.lost > 0 ? `detected ${v.lost} lost` : 'control came out clean: no loss detected' };
    case 'unknown-outcomes': {
      const workerClean = v.lost === 0 && v.duplicated === 0;
      if (v.requests.unknown === 0) return { passed: false, why: 'control came out clean: no unknown outcome' };
      return {
        passed: workerClean,
        why: workerClean
          ? `${v.requests.unknown} unknown outcome(s) reported; publish_duplicated ${v.publishDuplicated}, attributed to publishing`
          : `worker-side violation: lost ${v.lost}, duplicated ${v.duplicated}`,
      };
    }
  }
}

/**
 * The Watermill example's rule (a case's exactTotal): the counter reads exactly the requests sent, and the drain finished in
 * time; a timeout fails the case whatever had been counted by then, it never passes it.
 */
export function exactCountMet(expected: number, count: number | undefined, quiesced: boolean): { passed: boolean; why: string } {
  const read = `count ${count ?? 'unread'} of ${expected}`;
  if (!quiesced) return { passed: false, why: `${read} (timed out: the drain did not finish)` };
  if (count !== expected) return { passed: false, why: `${read} (wrong count)` };
  return { passed: true, why: read };
}

/** A case's name in file names: MariaDB's as before, other engines' prefixed, so ENGINE=all writes both. */
export function caseFileName(r: Pick<CaseResult, 'engine' | 'case'>): string {
  return r.engine === 'mariadb' ? r.case.name : `${r.engine}-${r.case.name}`;
}
