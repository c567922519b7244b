// What one chaos case produced (verdict, timeline, faults, phases, rates), and whether that met the case's
// expectation: exactly-once cases must be valid, controls must be caught with their violation.
import { type FaultEvent } from './nemesis.ts';
import type { RequestAttempt } from './history.ts';
import { ANOMALY_LABELS, type Verdict } from './checker.ts';
import { type PhaseTiming } from './phases.ts';
import { illegalKinds, type ChaosCase, type Expectation } from './chaosMatrix.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { EventLogLine } from './consumerEventLog.ts';

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
  /** Date.now() at the case clock's 0: the workers' event log is in wall-clock time. */
  startedAtMs?: number;
  /** Every worker's event log lines (batches read and committed, holes passed); undefined: no log (containers). */
  consumerEvents?: EventLogLine[] | undefined;
}

/**
 * Whether a verdict meets a case's declaration: no illegal kind (one the case neither tolerates nor must show),
 * and either a valid verdict or, for a control, at least one anomaly of its kind. Without the consumer's
 * account of what it read, a skip cannot be told from a message read and never counted; a control that must
 * show `skipped` then accepts `never-counted`, and says so.
 */
export function expectationMet(c: Pick<ChaosCase, 'expected' | 'tolerates'>, v: Verdict): { passed: boolean; why: string } {
  // Without the event log a skip shows as never-counted: for a control of skips, that is its kind too.
  const asSkip = c.expected === 'skipped' && !v.consumerEvidence;
  const illegal = illegalKinds(c).filter((k) => v.anomalies[k] > 0 && !(asSkip && k === 'never-counted'));
  const illegalWhy = illegal.map((k) => `illegal here: ${v.anomalies[k]} ${ANOMALY_LABELS[k]}`).join('; ');
  const tolerated = c.tolerates.filter((k) => v.anomalies[k] > 0).map((k) => `${v.anomalies[k]} ${ANOMALY_LABELS[k]} (tolerated)`);
  if (c.expected === 'valid') {
    const passed = v.verdict === 'valid' && illegal.length === 0;
    const why = v.verdict === 'valid' ? ['valid', ...tolerated].join('; ') : `${v.verdict}: ${v.reasons.join('; ')}`;
    return { passed, why: illegal.length > 0 && v.verdict === 'valid' ? `${why}; ${illegalWhy}` : why };
  }
  const kind = c.expected;
  let shown = v.anomalies[kind];
  let note = '';
  if (asSkip && v.anomalies['never-counted'] > 0) {
    shown += v.anomalies['never-counted'];
    note = ' (as never-counted: no event log told skipped from read)';
  }
  if (shown === 0) return { passed: false, why: `control came out clean: no ${ANOMALY_LABELS[kind]} detected${illegal.length > 0 ? `; ${illegalWhy}` : ''}` };
  const caught = `detected ${shown} ${ANOMALY_LABELS[kind]}${note}`;
  if (illegal.length > 0) return { passed: false, why: `${caught}, but ${illegalWhy}` };
  return { passed: true, why: [caught, ...tolerated].join('; ') };
}

/**
 * The seed's rule (a case's exactTotal): the counter reads exactly the requests sent, and the drain finished in
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
