// What one chaos case produced (verdict, timeline, faults, phases, rates), and whether that met the case's
// expectation: exactly-once cases must be valid, controls must be caught with their violation.
import { type FaultEvent } from './nemesis.ts';
import type { RequestAttempt } from './history.ts';
import { ANOMALY_LABELS, type Verdict } from './checker.ts';
import { type PhaseTiming } from './phases.ts';
import { illegalKinds, type ChaosCase, type Expectation } from './chaosMatrix.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { EventLogLine } from './consumerEventLog.ts';
import type { DbSnapshot } from '../../bench/tableReads.ts';
import type { Witness } from './witnesses.ts';
import { defaultIsolation, gapHandlingFor } from '../../system/worker.ts';

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
  /** What the checker judged: the topic and the counters after the run quiesced. */
  snapshot?: DbSnapshot | undefined;
  /** The harness's facts beside the verdict that decide `passed` (judgeCase). */
  facts?: CaseFacts;
  /** One per anomaly the checker found. */
  witnesses?: Witness[];
  /** The seed the case's fault schedule was drawn from (undefined: the fixed round-robin schedule). */
  seed?: number | undefined;
}

/** What the harness saw beside the verdict: enough, with the verdict, to decide a case again (eob check). */
export interface CaseFacts {
  error: string | undefined;
  interrupted: boolean;
  quiesced: boolean;
  quiesceTimeoutMs: number;
  recoveryTimeoutMs: number;
  faults: readonly FaultEvent[];
  /** The seed's check: the case counter's final value. */
  exactCount?: number;
}

/** The case's result from its verdict and the harness's facts: the one rule for a run and for eob check. */
export function judgeCase(c: Pick<ChaosCase, 'expected' | 'tolerates' | 'exactTotal' | 'faults' | 'perFault'>, verdict: Verdict | undefined, f: CaseFacts): { passed: boolean; why: string } {
  const met = verdict === undefined ? { passed: false, why: `no verdict: ${f.error ?? 'unknown error'}` } : expectationMet(c, verdict);
  // A case proves what it claims only about the faults that actually happened and healed: a fault that failed,
  // did not recover, or was skipped (fewer injections than planned) leaves the case short of its claim (a
  // failover case that never failed over would otherwise pass as valid).
  const notRecovered = f.faults.filter((x) => x.recoveryMs === undefined).length;
  if (notRecovered > 0) {
    met.passed = false;
    met.why += `; ${notRecovered} fault(s) did not recover within ${f.recoveryTimeoutMs} ms`;
  }
  const failed = f.faults.filter((x) => x.error !== undefined);
  if (failed.length > 0) {
    met.passed = false;
    met.why += `; ${failed.length} fault(s) failed: ${failed.map((x) => `${x.fault} #${x.round + 1}: ${x.error}`).join('; ')}`;
  }
  const planned = new Set(c.faults).size * c.perFault;
  if (f.faults.length < planned) {
    met.passed = false;
    met.why += `; only ${f.faults.length} of ${planned} planned fault injections ran`;
  }
  if (!f.quiesced && verdict !== undefined) met.why += `; not quiesced within ${f.quiesceTimeoutMs} ms`;
  if (c.exactTotal !== undefined) {
    const exact = exactCountMet(c.exactTotal, f.exactCount, f.quiesced);
    met.passed = met.passed && exact.passed;
    met.why += `; ${exact.why}`;
  }
  const stallProofs = f.faults.flatMap((x) => (x.proof === undefined ? [] : [x.proof]));
  const stalls = stallProofs.reduce((n, p) => n + p.stalls, 0);
  if (stalls > 0) {
    const inWindow = stallProofs.reduce((n, p) => n + p.inWindow, 0);
    met.why += inWindow > 0
      ? `; db-stall-allocator: ${stalls} stalls, ${inWindow} checked and proven in the allocator window`
      : `; db-stall-allocator: ${stalls} stalls, none proven in the allocator window (the checks found no fresh INNODB_TRX read)`;
  }
  return {
    passed: met.passed && f.error === undefined && !f.interrupted,
    why: f.interrupted ? `interrupted: the run was stopped during this case (${met.why})` : f.error === undefined ? met.why : `error: ${f.error}`,
  };
}

/** How a case's consumer reads, in words, for the witnesses of what it skipped or counted. */
export function consumerDescription(c: Pick<ChaosCase, 'mode' | 'worker'>, engine: EngineName): string {
  const handler = c.worker.handler ?? 'batched';
  const gap = gapHandlingFor(c.mode, handler, c.worker.gapHandling, engine);
  const parts = [
    `${c.mode} mode`,
    `batch ${c.worker.batchSize ?? 1000}`,
    c.worker.isolation ?? defaultIsolation(c.mode, handler, engine),
    handler === 'watermill' ? 'the watermill handler' : undefined,
    gap === undefined
      ? undefined
      : gap === 'none'
        ? engine === 'mariadb' ? 'gap handling none' : 'gap handling none (the read without the xmin rule)'
        : engine === 'mariadb' ? `contiguous offsets, gap proof ${c.worker.gapProof ?? 'statements'}` : 'the xmin rule',
    `${c.worker.ackMode ?? 'transactional'} acks`,
  ];
  return parts.filter((p): p is string => p !== undefined).join(', ');
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
