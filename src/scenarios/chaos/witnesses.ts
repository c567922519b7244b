// A witness for every anomaly the checker found: the request, the answer its client got and when, whether and
// when the consumer read its message and in which batch, the hole pass that stepped over it if one did, the
// faults active at those moments, and one plain sentence saying what happened. A pure function of what a run
// saved (history, snapshot, the workers' event logs, the fault log), so `eob check` writes the same witnesses
// from a run directory without a database. Times are case-clock seconds (the history's and the faults' clock).
import type { Finding, AnomalyKind } from './checker.ts';
import { ANOMALY_LABELS } from './checker.ts';
import type { RequestAttempt } from './history.ts';
import type { SnapshotMessage } from '../../bench/tableReads.ts';
import type { EventLogLine } from './consumerEventLog.ts';
import type { FaultEvent } from './nemesis.ts';

export interface WitnessInput {
  findings: readonly Finding[];
  history: readonly RequestAttempt[];
  messages: readonly SnapshotMessage[];
  /** undefined: no event log (containers); the witness then says nothing of what the consumer read. */
  events: readonly EventLogLine[] | undefined;
  /** Date.now() at the case clock's 0, to put the event log on the case clock. */
  startedAtMs: number;
  faults: readonly FaultEvent[];
  /** How the case's consumer reads, in words (e.g. "offset mode, gap handling none"), for sentences of skips. */
  consumer: string;
}

/** The consumer's part in a message's story: each batch that read it, with its commits. */
export interface BatchWitness {
  pid: number;
  batch: number;
  readAtS: number;
  /** Offsets of the batch, as ranges. */
  offsets: [number, number][];
  commits: { what: string; atS: number }[];
  rolledBackAtS?: number;
}

export interface Witness {
  kind: AnomalyKind;
  label: string;
  requestId: string | undefined;
  counterUuid: string | undefined;
  offsets: number[];
  /** PostgreSQL: the inserting transaction of each offset. */
  transactionIds?: string[];
  amount: number;
  exact: boolean;
  /** The attempt that settled the request's outcome (the ok one, else the last). */
  answer?: { attempt: number; via: string; status?: number; error?: string; outcome: string; sentAtS: number; answeredAtS: number };
  attempts: number;
  /** Every batch that read one of `offsets`; empty when none did (or there is no event log). */
  batches: BatchWitness[];
  /** The hole pass that stepped over the message, when one did. */
  holePass?: { from: number; to: number; by: string; atS: number; waitedMs: number; pid: number };
  /** A later offset read past this one (a skip with no hole pass): the first batch that did. */
  readPast?: { pid: number; batch: number; atS: number; offsets: [number, number][] };
  /** Faults active at the answer, at the reads and at the hole pass. */
  faults: { fault: string; round: number; startS: number; endS: number | undefined; detail: string }[];
  /** True when the case had an event log to consult. */
  consumerEvidence: boolean;
  sentence: string;
}

export function buildWitnesses(input: WitnessInput): Witness[] {
  const toS = (wallMs: number) => round2((wallMs - input.startedAtMs) / 1000);
  const attemptsById = new Map<string, RequestAttempt[]>();
  for (const a of input.history) {
    const list = attemptsById.get(a.requestId);
    if (list === undefined) attemptsById.set(a.requestId, [a]);
    else list.push(a);
  }
  const txById = new Map<number, string>();
  for (const m of input.messages) if (m.transactionId !== undefined) txById.set(m.offset, m.transactionId);

  // Index the event log: reads by offset, commits and rollbacks by (pid, batch), passes in order.
  const events = input.events;
  const readsByOffset = new Map<number, EventLogLine[]>();
  const commitsOf = new Map<string, EventLogLine[]>();
  const reads: Extract<EventLogLine, { e: 'read' }>[] = [];
  const passes: Extract<EventLogLine, { e: 'pass' }>[] = [];
  const wanted = new Set(input.findings.flatMap((f) => f.offsets));
  for (const e of events ?? []) {
    if (e.e === 'read') {
      reads.push(e);
      for (const [a, b] of e.offsets) {
        for (const o of wanted) if (o >= a && o <= b) push(readsByOffset, o, e);
      }
    } else if (e.e === 'commit' || e.e === 'rollback') {
      push(commitsOf, `${e.p}/${e.batch}`, e);
    } else if (e.e === 'pass') {
      passes.push(e);
    }
  }

  const activeAt = (tS: number) =>
    input.faults.filter((f) => f.startMs / 1000 <= tS && tS <= (f.recoveredMs ?? f.healStartMs) / 1000);

  return input.findings.map((f): Witness => {
    const attempts = f.requestId === undefined ? [] : (attemptsById.get(f.requestId) ?? []);
    const settling = attempts.find((a) => a.outcome === 'ok') ?? attempts[attempts.length - 1];
    const answer =
      settling === undefined
        ? undefined
        : {
            attempt: settling.attempt,
            via: settling.via ?? 'http',
            ...(settling.status === undefined ? {} : { status: settling.status }),
            ...(settling.error === undefined ? {} : { error: settling.error }),
            outcome: settling.outcome,
            sentAtS: round2(settling.startMs / 1000),
            answeredAtS: round2(settling.endMs / 1000),
          };
    const batches: BatchWitness[] = [];
    const seen = new Set<string>();
    for (const o of f.offsets) {
      for (const r of readsByOffset.get(o) ?? []) {
        if (r.e !== 'read') continue;
        const key = `${r.p}/${r.batch}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const after = commitsOf.get(key) ?? [];
        const rolledBack = after.find((c) => c.e === 'rollback');
        batches.push({
          pid: r.p,
          batch: r.batch,
          readAtS: toS(r.t),
          offsets: r.offsets,
          commits: after.flatMap((c) => (c.e === 'commit' ? [{ what: c.what, atS: toS(c.t) }] : [])),
          ...(rolledBack === undefined ? {} : { rolledBackAtS: toS(rolledBack.t) }),
        });
      }
    }
    batches.sort((a, b) => a.readAtS - b.readAtS);
    const first = f.offsets[0];
    const pass = first === undefined ? undefined : passes.find((p) => p.from <= first && first <= p.to);
    const holePass = pass === undefined ? undefined : { from: pass.from, to: pass.to, by: pass.by, atS: toS(pass.t), waitedMs: pass.waitedMs, pid: pass.p };
    // A skip without a pass: the first read that took an offset above this one, with this one not in it.
    const past =
      f.kind !== 'skipped' || holePass !== undefined || first === undefined
        ? undefined
        : reads.find((r) => r.offsets.some(([, b]) => b > first) && !r.offsets.some(([a, b]) => a <= first && first <= b));
    const readPast = past === undefined ? undefined : { pid: past.p, batch: past.batch, atS: toS(past.t), offsets: past.offsets };
    const times = [answer?.answeredAtS, answer?.sentAtS, ...batches.flatMap((b) => [b.readAtS, ...b.commits.map((c) => c.atS)]), holePass?.atS, readPast?.atS].filter(
      (t): t is number => t !== undefined,
    );
    const faults = uniqueFaults(times.flatMap(activeAt)).map((x) => ({
      fault: x.fault,
      round: x.round,
      startS: round2(x.startMs / 1000),
      endS: x.recoveredMs === undefined ? undefined : round2(x.recoveredMs / 1000),
      detail: x.detail,
    }));
    const transactionIds = f.offsets.flatMap((o) => (txById.has(o) ? [txById.get(o)!] : []));
    const w: Omit<Witness, 'sentence'> = {
      kind: f.kind,
      label: ANOMALY_LABELS[f.kind],
      requestId: f.requestId,
      counterUuid: f.counterUuid,
      offsets: f.offsets,
      ...(transactionIds.length === 0 ? {} : { transactionIds }),
      amount: f.amount,
      exact: f.exact,
      ...(answer === undefined ? {} : { answer }),
      attempts: attempts.length,
      batches,
      ...(holePass === undefined ? {} : { holePass }),
      ...(readPast === undefined ? {} : { readPast }),
      faults,
      consumerEvidence: events !== undefined,
    };
    return { ...w, sentence: sentence(w, input.consumer) };
  });
}

/** The one plain sentence of a witness. */
export function sentence(w: Omit<Witness, 'sentence'>, consumer: string): string {
  const who = `request ${w.requestId ?? '(several)'} for counter ${w.counterUuid ?? '?'}`;
  const answered = w.answer === undefined ? 'never answered' : describeAnswer(w.answer);
  const where = w.transactionIds !== undefined && w.transactionIds.length > 0 ? `offset ${list(w.offsets)} (transaction ${list(w.transactionIds)})` : `offset ${list(w.offsets)}`;
  const faults = w.faults.length === 0 ? 'with no fault active' : `while ${w.faults.map((f) => `${f.fault} #${f.round + 1} (${f.detail}, ${f.startS}-${f.endS ?? '?'} s)`).join(' and ')}`;
  const reads = w.batches.map((b) => describeBatch(b)).join('; then ');
  switch (w.kind) {
    case 'ack-publish-lost':
      return `${who} was ${answered}; no message of it is in the topic at the end, so an acknowledged publish was lost, ${faults}`;
    case 'skipped': {
      const answeredAt = w.answer?.answeredAtS;
      if (w.holePass !== undefined) {
        const order = answeredAt === undefined || answeredAt >= w.holePass.atS ? ', after' : ', yet';
        return `${who} was ${answered}; its ${where} committed by then${order} the consumer had passed offsets ${w.holePass.from}-${w.holePass.to} as ${w.holePass.by === 'timeout' ? 'a hole by the bound (timeout), without proof' : `a permanent hole (proof: ${w.holePass.by})`} at ${w.holePass.atS} s; the consumer never read it, ${faults}`;
      }
      if (w.readPast !== undefined) {
        return `${who} was ${answered}; its ${where} was never read: batch ${w.readPast.batch} of worker ${w.readPast.pid} read offsets ${ranges(w.readPast.offsets)} at ${w.readPast.atS} s, past it while it was not yet visible, and the group's acked position moved over it (${consumer}), ${faults}`;
      }
      return `${who} was ${answered}; its ${where} is below the group's acked position but no batch read it${w.consumerEvidence ? '' : ' (no event log to say more)'} (${consumer}), ${faults}`;
    }
    case 'never-counted': {
      if (w.batches.length === 0) return `${who} was ${answered}; its ${where} is acknowledged by the group, its counter short, and no event log says who read it (${consumer}), ${faults}`;
      const acked = w.batches.some((b) => b.commits.some((c) => c.what === 'ack')) && !w.batches.some((b) => b.commits.some((c) => c.what !== 'ack'));
      return `${who} was ${answered}; its ${where} was read: ${reads}${acked ? '; the ack committed and its effects never did: the worker was gone between the two commits' : ''}, so it is acknowledged and never counted, ${faults}`;
    }
    case 'counted-twice': {
      const firstRead = w.batches[0];
      const unacked = firstRead !== undefined && firstRead.commits.some((c) => c.what === 'effects') && !firstRead.commits.some((c) => c.what !== 'effects');
      const story = w.batches.length > 1 ? `it was read ${w.batches.length} times: ${reads}, each applying its effect` : reads === '' ? 'no event log names the reads' : reads;
      return `${who} is counted ${w.amount} time(s) too many (${where}): ${story}${unacked ? `; the first read's effects committed and its ack never did: the worker was gone between the two commits, so the next one read it again` : ''}, ${faults}`;
    }
    case 'published-twice':
      return `${who} is in the topic ${w.offsets.length} times (${where}) after ${w.attempts} attempt(s), the settling one ${answered}: the publish side wrote it twice, ${faults}`;
    case 'unknown-outcome':
      return `${who} got no definite answer (${answered}); its message is ${w.offsets.length === 0 ? 'not in the topic' : `in the topic at ${where}`}, ${faults}`;
  }
}

function describeAnswer(a: NonNullable<Witness['answer']>): string {
  const what = a.status !== undefined ? `answered ${a.status}` : a.error !== undefined ? `cut off (${a.error})` : a.outcome === 'ok' ? 'committed' : `left ${a.outcome}`;
  const via = a.via === 'sql' ? ' (raw SQL INSERT)' : '';
  return `${what}${via} at ${a.answeredAtS} s`;
}

function describeBatch(b: BatchWitness): string {
  const commits = b.commits.length === 0 ? (b.rolledBackAtS !== undefined ? `, rolled back at ${b.rolledBackAtS} s` : ', never committed') : `, ${b.commits.map((c) => `${c.what} committed at ${c.atS} s`).join(', ')}`;
  return `batch ${b.batch} of worker ${b.pid} at ${b.readAtS} s${commits}`;
}

function uniqueFaults(list: readonly FaultEvent[]): FaultEvent[] {
  const seen = new Set<string>();
  return list.filter((f) => {
    const key = `${f.fault}/${f.round}/${f.startMs}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const existing = map.get(key);
  if (existing === undefined) map.set(key, [value]);
  else existing.push(value);
}

function list(items: readonly (string | number)[]): string {
  return items.length <= 3 ? items.join('/') : `${items.slice(0, 3).join('/')}/... (${items.length})`;
}

function ranges(r: readonly [number, number][]): string {
  const shown = r.slice(0, 3).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  return r.length > 3 ? `${shown.join(', ')}, ...` : shown.join(', ');
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
