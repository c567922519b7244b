// The chaos checker: a pure function of the request history and a snapshot of the database taken
// after the run has quiesced. No I/O, no clocks: the same inputs always give the same verdict, which is what
// lets it be unit-tested on literal fixtures and re-run on a saved history.
//
// What it proves, in order:
// 1. publishing: every `ok` request id is in the topic exactly once (else lost / publish_duplicated); no `fail`
//    request id is in the topic at all; no attempt answered 503 (the server's "not published") published a
//    message; no message lacks a request id of the history;
// 2. consuming: every counter's value equals the number of its acked messages (else lost / duplicated); messages
//    not yet acked when the snapshot was taken make the verdict `unknown`, never `valid`;
// 3. Jepsen's counter bound `ok <= total <= ok + unknown` as a cross-check of the two above;
// 4. end to end (publish de-duplication + retrying client): total == number of distinct request ids.
//
// Every anomaly found is also given one kind of a single taxonomy (ANOMALY_KINDS), counted per kind and listed
// one finding at a time, so that a case can say which kinds it tolerates and a control which one it must show.
// Telling a message the consumer skipped from one it consumed without counting needs the consumer's own
// account of what it read (its event log, CheckOptions.delivered); without one, both are `never-counted`.
import { countOutcomes, summarizeRequests } from './history.ts';
import type { RequestAttempt, RequestOutcome, RequestSummary } from './history.ts';
import type { DbSnapshot, SnapshotMessage } from '../../bench/tableReads.ts';
import type { VerdictKind } from '../../bench/counterCheck.ts';

export type { VerdictKind };

export type { DbSnapshot, SnapshotMessage };

export interface CheckOptions {
  /** Publish de-duplication on and a retrying client: the total must equal the number of distinct request ids. */
  endToEnd: boolean;
  /** How many entries each "where" list keeps (the counts are always complete). */
  maxListed: number;
  /**
   * Offsets the consumer read in a batch at least once (from the workers' event logs); undefined when there is
   * no such account (docker backend, a worker without --event-log): skipped and never-counted are not told apart.
   */
  delivered?: ReadonlySet<number> | undefined;
}

export const DEFAULT_CHECK_OPTIONS: CheckOptions = { endToEnd: false, maxListed: 100 };

/**
 * The taxonomy, one CSV column each (the kind with `_` for `-`):
 * - ack-publish-lost: a request answered 2xx (history `ok`) whose message is not in the topic at the end;
 * - never-counted: in the topic, acknowledged by the consumer group (or read by it), its counter short;
 * - skipped: in the topic, acknowledged by the group but never read by the consumer (passed as a hole, or the
 *   read went past it while it was not yet visible), its counter short;
 * - counted-twice: a counter above its messages (the worker applied an effect more than once);
 * - published-twice: one request id more than once in the topic (the publish side, not the worker);
 * - unknown-outcome: a request id whose every attempt ended without a definite answer (timeout, reset, 5xx
 *   other than 503). Not a violation by itself: a case that promises nothing about it tolerates it.
 */
export const ANOMALY_KINDS = ['ack-publish-lost', 'never-counted', 'skipped', 'counted-twice', 'published-twice', 'unknown-outcome'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** How each kind reads in a sentence and a table. */
export const ANOMALY_LABELS: Record<AnomalyKind, string> = {
  'ack-publish-lost': 'acknowledged publish lost',
  'never-counted': 'acknowledged but never counted',
  skipped: 'published but skipped by the consumer',
  'counted-twice': 'counted twice',
  'published-twice': 'published twice',
  'unknown-outcome': 'unknown outcome',
};

/** A kind's CSV column: ack_publish_lost, never_counted, skipped, counted_twice, published_twice, unknown_outcome. */
export function anomalyColumn(kind: AnomalyKind): string {
  return kind.replace(/-/g, '_');
}

/**
 * One anomaly: what it is, whose, and which messages. `amount` is how many of its kind it accounts for (a
 * counter short by 2 with 5 messages is one finding of amount 2 whose `offsets` are the 5 candidates, `exact`
 * false); with a counter per request every finding is exact.
 */
export interface Finding {
  kind: AnomalyKind;
  requestId: string | undefined;
  counterUuid: string | undefined;
  /** The messages concerned (none for an acknowledged publish that never reached the topic). */
  offsets: number[];
  amount: number;
  exact: boolean;
}

export interface CounterViolation {
  counterUuid: string;
  kind: 'lost' | 'duplicated';
  value: number;
  /** Messages of this counter the consumer group has acked: the value it must have. */
  ackedMessages: number;
  pendingMessages: number;
  /** By how much the value is off. */
  amount: number;
  /** The counter's messages: exact culprits when each request has its own counter, candidates otherwise. */
  offsets: number[];
  requestIds: string[];
}

export interface PublishDuplicate {
  requestId: string;
  outcome: RequestOutcome;
  offsets: number[];
}

export interface Verdict {
  verdict: VerdictKind;
  /** One sentence per finding, naming what failed and where. */
  reasons: string[];
  requests: { distinct: number; attempts: number; ok: number; fail: number; unknown: number };
  messages: { total: number; acked: number; pending: number; ackedOffset: number | null };
  /** Sum of every counter's value. */
  total: number;
  lost: number;
  duplicated: number;
  publishDuplicated: number;
  bound: { ok: number; total: number; okPlusUnknown: number; holds: boolean };
  endToEnd: { checked: boolean; distinctRequestIds: number; total: number; holds: boolean };
  /** `ok` request ids that are not in the topic: acknowledged to the client, never published. */
  lostRequests: { requestId: string; counterUuid: string }[];
  publishDuplicates: PublishDuplicate[];
  counterViolations: CounterViolation[];
  /**
   * Offsets proven lost by the consumer: the acked messages of counters whose value is 0 (with a counter per
   * request, exactly the skipped offsets). Sorted; capped like the other lists.
   */
  lostOffsets: number[];
  /** `fail` request ids found in the topic: the client was told "not published" and it was. */
  failedButPublished: { requestId: string; offsets: number[] }[];
  /**
   * Request ids with an attempt answered 503 whose messages outnumber the attempts that may have published
   * (ok and unknown ones): a 503 said "not published" and was not true.
   */
  unavailableButPublished: { requestId: string; offsets: number[]; attempts503: number }[];
  /** Messages with no request id of the history, or a counter other than the one the request named. */
  foreignMessages: { offset: number; requestId: string | undefined; counterUuid: string | undefined; why: string }[];
  /** How many of each kind (complete). */
  anomalies: Record<AnomalyKind, number>;
  /** Every anomaly, one finding each (not capped: the witnesses are written from it). */
  findings: Finding[];
  /** Whether the consumer's account of what it read was given (CheckOptions.delivered). */
  consumerEvidence: boolean;
}

export function check(history: readonly RequestAttempt[], snapshot: DbSnapshot, options: Partial<CheckOptions> = {}): Verdict {
  const opts: CheckOptions = { ...DEFAULT_CHECK_OPTIONS, ...options };
  const summaries = summarizeRequests(history);
  // Per request id: attempts that may have published (ok, unknown), and attempts answered 503.
  const mayPublish = new Map<string, number>();
  const answered503 = new Map<string, number>();
  for (const a of history) {
    if (a.outcome !== 'fail') mayPublish.set(a.requestId, (mayPublish.get(a.requestId) ?? 0) + 1);
    if (a.status === 503) answered503.set(a.requestId, (answered503.get(a.requestId) ?? 0) + 1);
  }
  const outcomes = countOutcomes(summaries.values());
  const reasons: string[] = [];
  const cap = <T>(list: T[], item: T): void => {
    if (list.length < opts.maxListed) list.push(item);
  };

  const byRequest = new Map<string, SnapshotMessage[]>();
  const byCounter = new Map<string, SnapshotMessage[]>();
  const foreignMessages: Verdict['foreignMessages'] = [];
  let foreignCount = 0;
  for (const m of snapshot.messages) {
    const summary = m.requestId === undefined ? undefined : summaries.get(m.requestId);
    let why: string | undefined;
    if (summary === undefined) why = m.requestId === undefined ? 'no request id' : 'request id not in the history';
    else if (summary.counterUuid !== m.counterUuid) why = `payload counter differs from the request's ${summary.counterUuid}`;
    if (why !== undefined) {
      foreignCount += 1;
      cap(foreignMessages, { offset: m.offset, requestId: m.requestId, counterUuid: m.counterUuid, why });
    }
    if (m.requestId !== undefined) push(byRequest, m.requestId, m);
    if (m.counterUuid !== undefined) push(byCounter, m.counterUuid, m);
  }

  const findings: Finding[] = [];
  const delivered = opts.delivered;

  // 1. publishing
  const lostRequests: Verdict['lostRequests'] = [];
  const publishDuplicates: PublishDuplicate[] = [];
  const failedButPublished: Verdict['failedButPublished'] = [];
  let lostRequestCount = 0;
  let publishDuplicated = 0;
  let publishDuplicatedIds = 0;
  let failedButPublishedCount = 0;
  const unavailableButPublished: Verdict['unavailableButPublished'] = [];
  let unavailableButPublishedCount = 0;
  let unavailableOnlyCount = 0;
  for (const s of summaries.values()) {
    const found = byRequest.get(s.requestId) ?? [];
    const attempts503 = answered503.get(s.requestId) ?? 0;
    // Without de-duplication each attempt that reached the database writes its own message, so more messages
    // than ok/unknown attempts means a definite-fail attempt published; with de-duplication an id has one
    // message at most, and the rule reduces to "every attempt failed, yet the id is published".
    if (attempts503 > 0 && found.length > (mayPublish.get(s.requestId) ?? 0)) {
      unavailableButPublishedCount += 1;
      // Counted once: an all-fail id is already a failedButPublished violation.
      if (s.outcome !== 'fail') unavailableOnlyCount += 1;
      cap(unavailableButPublished, { requestId: s.requestId, offsets: found.map((m) => m.offset), attempts503 });
    }
    if (s.outcome === 'ok' && found.length === 0) {
      lostRequestCount += 1;
      cap(lostRequests, { requestId: s.requestId, counterUuid: s.counterUuid });
      findings.push({ kind: 'ack-publish-lost', requestId: s.requestId, counterUuid: s.counterUuid, offsets: [], amount: 1, exact: true });
    }
    if (s.outcome === 'unknown') {
      findings.push({ kind: 'unknown-outcome', requestId: s.requestId, counterUuid: s.counterUuid, offsets: found.map((m) => m.offset), amount: 1, exact: true });
    }
    if (found.length > 1) {
      publishDuplicated += found.length - 1;
      publishDuplicatedIds += 1;
      cap(publishDuplicates, { requestId: s.requestId, outcome: s.outcome, offsets: found.map((m) => m.offset) });
      findings.push({ kind: 'published-twice', requestId: s.requestId, counterUuid: s.counterUuid, offsets: found.map((m) => m.offset), amount: found.length - 1, exact: true });
    }
    if (s.outcome === 'fail' && found.length > 0) {
      failedButPublishedCount += 1;
      cap(failedButPublished, { requestId: s.requestId, offsets: found.map((m) => m.offset) });
    }
  }
  if (lostRequestCount > 0) {
    reasons.push(
      `lost at publish: ${lostRequestCount} request(s) answered 2xx are not in the topic, e.g. ${list(lostRequests.map((r) => r.requestId))}`,
    );
  }
  if (publishDuplicated > 0) {
    reasons.push(
      `publish_duplicated: ${publishDuplicated} extra message(s) for ${publishDuplicatedIds} request id(s) ` +
        `published more than once (publish side, not the worker), e.g. ${list(publishDuplicates.map((d) => `${d.requestId} at offsets ${d.offsets.join('/')}`))}`,
    );
  }
  if (failedButPublishedCount > 0) {
    reasons.push(
      `${failedButPublishedCount} request(s) the client saw fail definitely are in the topic, e.g. ${list(failedButPublished.map((f) => `${f.requestId} at ${f.offsets.join('/')}`))}`,
    );
  }
  if (unavailableButPublishedCount > 0) {
    reasons.push(
      `${unavailableButPublishedCount} request(s) answered 503 ("not published") were published anyway, e.g. ${list(unavailableButPublished.map((u) => `${u.requestId} at ${u.offsets.join('/')}`))}`,
    );
  }
  if (foreignCount > 0) {
    reasons.push(`${foreignCount} message(s) in the topic do not belong to the history, e.g. ${list(foreignMessages.map((f) => `offset ${f.offset} (${f.why})`))}`);
  }

  // 2. consuming
  const counterViolations: CounterViolation[] = [];
  let lostEffects = 0;
  let duplicated = 0;
  let pendingTotal = 0;
  let ackedTotal = 0;
  const counterIds = new Set<string>([...byCounter.keys(), ...snapshot.counters.keys()]);
  for (const id of [...counterIds].sort()) {
    const msgs = byCounter.get(id) ?? [];
    const acked = msgs.filter((m) => m.acked).length;
    const pending = msgs.length - acked;
    const value = snapshot.counters.get(id) ?? 0;
    ackedTotal += acked;
    pendingTotal += pending;
    let kind: CounterViolation['kind'] | undefined;
    let amount = 0;
    // An acked message's effect must be there (ack and effect commit together); a pending one may or may not
    // be, so only a value outside [acked, acked + pending] is a proven violation.
    if (value < acked) {
      kind = 'lost';
      amount = acked - value;
      lostEffects += amount;
      findings.push(...shortFindings(id, msgs.filter((m) => m.acked), amount, delivered));
    } else if (value > acked + pending) {
      kind = 'duplicated';
      amount = value - acked - pending;
      duplicated += amount;
      const requestIds = new Set(msgs.map((m) => m.requestId));
      findings.push({
        kind: 'counted-twice',
        requestId: requestIds.size === 1 ? msgs[0]?.requestId : undefined,
        counterUuid: id,
        offsets: msgs.map((m) => m.offset),
        amount,
        exact: msgs.length === 1,
      });
    }
    if (kind !== undefined) {
      cap(counterViolations, {
        counterUuid: id,
        kind,
        value,
        ackedMessages: acked,
        pendingMessages: pending,
        amount,
        offsets: msgs.slice(0, opts.maxListed).map((m) => m.offset),
        requestIds: msgs.slice(0, opts.maxListed).map((m) => m.requestId ?? '(none)'),
      });
    }
  }
  const lostCounters = counterViolations.filter((v) => v.kind === 'lost');
  const lostOffsets: number[] = [];
  for (const id of counterIds) {
    if ((snapshot.counters.get(id) ?? 0) !== 0) continue;
    for (const m of byCounter.get(id) ?? []) if (m.acked) lostOffsets.push(m.offset);
  }
  lostOffsets.sort((a, b) => a - b);
  lostOffsets.splice(opts.maxListed);
  const dupCounters = counterViolations.filter((v) => v.kind === 'duplicated');
  if (lostEffects > 0 && lostOffsets.length > 0) {
    reasons.push(`acked offsets with no effect at all (skipped): ${list(lostOffsets.map(String), 20)}`);
  }
  if (lostEffects > 0) {
    reasons.push(
      `lost: ${lostEffects} acked message(s) never applied, in counter(s) ${list(lostCounters.map((v) => `${v.counterUuid} (value ${v.value}, ${v.ackedMessages} acked; offsets ${list(v.offsets.map(String), 10)})`))}`,
    );
  }
  if (duplicated > 0) {
    reasons.push(
      `duplicated: ${duplicated} effect(s) applied more than once, in counter(s) ${list(dupCounters.map((v) => `${v.counterUuid} (value ${v.value}, ${v.ackedMessages + v.pendingMessages} messages; offsets ${list(v.offsets.map(String), 10)})`))}`,
    );
  }
  if (pendingTotal > 0) {
    reasons.push(`incomplete: ${pendingTotal} message(s) were not acked when the snapshot was taken (the drain did not finish)`);
  }

  // 3. the counter bound
  let total = 0;
  for (const v of snapshot.counters.values()) total += v;
  const okPlusUnknown = outcomes.ok + outcomes.unknown;
  const boundHolds = outcomes.ok <= total && total <= okPlusUnknown;
  const otherViolations =
    lostRequestCount + publishDuplicated + failedButPublishedCount + unavailableOnlyCount + foreignCount + lostEffects + duplicated;
  if (!boundHolds) {
    reasons.push(
      `counter bound violated: ok ${outcomes.ok} <= total ${total} <= ok + unknown ${okPlusUnknown} does not hold` +
        (otherViolations > 0 ? ' (explained by the findings above)' : pendingTotal > 0 ? ' (drain incomplete)' : ''),
    );
  }

  // 4. end to end
  const endToEndHolds = total === summaries.size;
  if (opts.endToEnd && !endToEndHolds) {
    reasons.push(
      `end to end: total ${total} != ${summaries.size} distinct request ids` +
        (outcomes.fail + outcomes.unknown > 0 ? ` (${outcomes.fail} fail and ${outcomes.unknown} unknown outcome(s) left after retries)` : ''),
    );
  }

  let verdict: VerdictKind = 'valid';
  const unexplainedBound = !boundHolds && otherViolations === 0 && pendingTotal === 0;
  const endToEndBroken = opts.endToEnd && !endToEndHolds && outcomes.fail + outcomes.unknown === 0;
  if (otherViolations > 0 || unexplainedBound || endToEndBroken) verdict = 'invalid';
  else if (pendingTotal > 0 || (opts.endToEnd && !endToEndHolds)) verdict = 'unknown';

  const anomalies = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])) as Record<AnomalyKind, number>;
  for (const f of findings) anomalies[f.kind] += f.amount;
  if (delivered === undefined && anomalies['never-counted'] > 0) {
    reasons.push('no account of what the consumer read (event log): messages it skipped are counted as never-counted');
  }

  return {
    verdict,
    reasons,
    requests: { distinct: summaries.size, attempts: history.length, ...outcomes },
    messages: {
      total: snapshot.messages.length,
      acked: ackedTotal,
      pending: pendingTotal,
      ackedOffset: snapshot.ackedOffset ?? null,
    },
    total,
    lost: lostRequestCount + lostEffects,
    duplicated,
    publishDuplicated,
    bound: { ok: outcomes.ok, total, okPlusUnknown, holds: boundHolds },
    endToEnd: { checked: opts.endToEnd, distinctRequestIds: summaries.size, total, holds: endToEndHolds },
    lostRequests,
    publishDuplicates,
    counterViolations,
    lostOffsets,
    failedButPublished,
    unavailableButPublished,
    foreignMessages,
    anomalies,
    findings,
    consumerEvidence: delivered !== undefined,
  };
}

/**
 * A counter `amount` short of its acked messages `acked`: the ones the consumer never read are skipped (as many
 * as the shortfall allows), the rest never-counted; without the consumer's account all are never-counted. A
 * finding per message when the candidates are exactly the shortfall, else one for the counter.
 */
function shortFindings(counterUuid: string, acked: readonly SnapshotMessage[], amount: number, delivered: ReadonlySet<number> | undefined): Finding[] {
  const unread = delivered === undefined ? [] : acked.filter((m) => !delivered.has(m.offset));
  const read = delivered === undefined ? [...acked] : acked.filter((m) => delivered.has(m.offset));
  const skipped = Math.min(amount, unread.length);
  const groups: [AnomalyKind, readonly SnapshotMessage[], number][] = [
    ['skipped', unread, skipped],
    ['never-counted', skipped === amount ? [] : read.length > 0 ? read : unread, amount - skipped],
  ];
  const out: Finding[] = [];
  for (const [kind, candidates, n] of groups) {
    if (n <= 0) continue;
    if (candidates.length === n) {
      for (const m of candidates) out.push({ kind, requestId: m.requestId, counterUuid, offsets: [m.offset], amount: 1, exact: true });
    } else {
      out.push({ kind, requestId: undefined, counterUuid, offsets: candidates.map((m) => m.offset), amount: n, exact: false });
    }
  }
  return out;
}

/** The summaries the checker used, for reports that list outcomes per request. */
export function requestSummaries(history: readonly RequestAttempt[]): RequestSummary[] {
  return [...summarizeRequests(history).values()];
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const existing = map.get(key);
  if (existing === undefined) map.set(key, [value]);
  else existing.push(value);
}

function list(items: readonly string[], max = 5): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown}, ...` : shown;
}
