// The checker on literal fixtures: each case is small enough to verify by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check } from '../src/scenarios/chaos/checker.ts';
import type { DbSnapshot, SnapshotMessage } from '../src/scenarios/chaos/checker.ts';
import type { RequestAttempt, RequestOutcome } from '../src/scenarios/chaos/history.ts';
import type { FaultEvent } from '../src/scenarios/chaos/nemesis.ts';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

function attempt(requestId: string, counterUuid: string, outcome: RequestOutcome, n = 1): RequestAttempt {
  return { requestId, counterUuid, attempt: n, outcome, phase: 'load', startMs: n, endMs: n + 1 };
}
function msg(offset: number, requestId: string, counterUuid: string, acked = true): SnapshotMessage {
  return { offset, requestId, counterUuid, acked };
}
function snapshot(messages: SnapshotMessage[], counters: Record<string, number>): DbSnapshot {
  return { messages, counters: new Map(Object.entries(counters)) };
}

test('valid: every ok request published once and counted once', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', A, 'ok'), attempt('c-3', B, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', A), msg(3, 'c-3', B)], { [A]: 2, [B]: 1 }));
  assert.equal(v.verdict, 'valid', v.reasons.join('; '));
  assert.deepEqual([v.lost, v.duplicated, v.publishDuplicated, v.total], [0, 0, 0, 3]);
  assert.equal(v.bound.holds, true);
  assert.deepEqual(v.reasons, []);
});

test('lost at publish: an ok request missing from the topic is named', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', A, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A)], { [A]: 1 }));
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.lost, 1);
  assert.deepEqual(v.lostRequests, [{ requestId: 'c-2', counterUuid: A }]);
  assert.equal(v.bound.holds, false);
  assert.match(v.reasons.join('\n'), /c-2/);
});

test('lost by the consumer: an acked message whose effect is missing names the counter and offset', () => {
  // The watermill skip: offset 2 sits below the acked offset but was never applied.
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'ok'), attempt('c-3', A, 'ok')];
  const v = check(history, { ...snapshot([msg(1, 'c-1', A), msg(2, 'c-2', B), msg(3, 'c-3', A)], { [A]: 2 }), ackedOffset: 3 });
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.lost, 1);
  assert.equal(v.duplicated, 0);
  assert.equal(v.counterViolations.length, 1);
  const [violation] = v.counterViolations;
  assert.equal(violation?.counterUuid, B);
  assert.equal(violation?.kind, 'lost');
  assert.deepEqual(violation?.offsets, [2]);
  assert.deepEqual(violation?.requestIds, ['c-2']);
  assert.equal(v.messages.ackedOffset, 3);
  assert.deepEqual(v.lostOffsets, [2]);
  assert.match(v.reasons.join('\n'), /skipped\): 2/);
  assert.match(v.reasons.join('\n'), new RegExp(`${B}.*offsets 2`));
});

test('duplicated: an effect applied twice is blamed on the worker, with the counter named', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', B)], { [A]: 2, [B]: 1 }));
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.duplicated, 1);
  assert.equal(v.publishDuplicated, 0);
  assert.equal(v.counterViolations[0]?.counterUuid, A);
  assert.equal(v.counterViolations[0]?.kind, 'duplicated');
  assert.equal(v.bound.holds, false);
});

test('publish-duplicated: one request id twice in the topic is a publish fault, not a worker duplicate', () => {
  // A retrying client without de-duplication: the first attempt's answer was lost, the resend published again.
  const history = [attempt('c-1', A, 'unknown', 1), attempt('c-1', A, 'ok', 2), attempt('c-2', B, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-1', A), msg(3, 'c-2', B)], { [A]: 2, [B]: 1 }));
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.publishDuplicated, 1);
  assert.equal(v.duplicated, 0, 'the worker applied each message once');
  assert.deepEqual(v.publishDuplicates, [{ requestId: 'c-1', outcome: 'ok', offsets: [1, 2] }]);
  assert.match(v.reasons.join('\n'), /publish side, not the worker/);
});

test('unknown outcomes widen the bound: published or not, both are valid', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', A, 'unknown'), attempt('c-3', B, 'unknown'), attempt('c-4', B, 'fail')];
  // c-2 made it, c-3 did not, c-4 definitely did not.
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', A)], { [A]: 2 }));
  assert.equal(v.verdict, 'valid', v.reasons.join('; '));
  assert.deepEqual([v.requests.ok, v.requests.unknown, v.requests.fail], [1, 2, 1]);
  assert.deepEqual(v.bound, { ok: 1, total: 2, okPlusUnknown: 3, holds: true });
});

test('ok <= total <= ok + unknown: a total above the bound without another finding is invalid', () => {
  // A counter row nobody published for (e.g. written by hand): no message explains it.
  const history = [attempt('c-1', A, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A)], { [A]: 1, [B]: 1 }));
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.bound.holds, false);
  assert.equal(v.duplicated, 1, 'a counter above its message count is a duplicate effect');
});

test('a fail outcome found in the topic is reported', () => {
  const history = [attempt('c-1', A, 'fail')];
  const v = check(history, snapshot([msg(1, 'c-1', A)], { [A]: 1 }));
  assert.equal(v.verdict, 'invalid');
  assert.deepEqual(v.failedButPublished, [{ requestId: 'c-1', offsets: [1] }]);
});

test('a request answered 503 whose id was published is a violation', () => {
  const answered503 = (requestId: string, n: number): RequestAttempt => ({ ...attempt(requestId, A, 'fail', n), status: 503 });
  // Only attempt: 503, yet published.
  const alone = check([answered503('c-1', 1)], snapshot([msg(1, 'c-1', A)], { [A]: 1 }));
  assert.equal(alone.verdict, 'invalid');
  assert.deepEqual(alone.unavailableButPublished, [{ requestId: 'c-1', offsets: [1], attempts503: 1 }]);
  assert.match(alone.reasons.join('\n'), /answered 503 \("not published"\) were published anyway.*c-1 at 1/);
  // A retrying client without de-duplication: 504 (may have published), 503, then 204. Two messages are
  // explained by the 504 and the 204; a third can only come from the 503.
  const retried = [{ ...attempt('c-2', A, 'unknown', 1), status: 504 }, answered503('c-2', 2), { ...attempt('c-2', A, 'ok', 3), status: 204 }];
  const explained = check(retried, snapshot([msg(1, 'c-2', A), msg(2, 'c-2', A)], { [A]: 2 }));
  assert.deepEqual(explained.unavailableButPublished, [], 'the 504 and the 204 account for both messages');
  const threeMessages = check(retried, snapshot([msg(1, 'c-2', A), msg(2, 'c-2', A), msg(3, 'c-2', A)], { [A]: 3 }));
  assert.equal(threeMessages.verdict, 'invalid');
  assert.deepEqual(threeMessages.unavailableButPublished.map((u) => u.requestId), ['c-2']);
  // A 503 that published nothing is fine.
  const honest = check([answered503('c-3', 1), { ...attempt('c-3', A, 'ok', 2), status: 204 }], snapshot([msg(1, 'c-3', A)], { [A]: 1 }));
  assert.equal(honest.verdict, 'valid', honest.reasons.join('; '));
});

test('pending messages make the verdict unknown, not valid', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', A, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', A, false)], { [A]: 1 }));
  assert.equal(v.verdict, 'unknown');
  assert.equal(v.messages.pending, 1);
  assert.equal(v.lost, 0);
});

test('with de-duplication and retries the total equals the distinct request ids', () => {
  const history = [
    attempt('c-1', A, 'unknown', 1),
    attempt('c-1', A, 'fail', 2),
    attempt('c-1', A, 'ok', 3),
    attempt('c-2', B, 'ok', 1),
  ];
  const good = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', B)], { [A]: 1, [B]: 1 }), { endToEnd: true });
  assert.equal(good.verdict, 'valid', good.reasons.join('; '));
  assert.deepEqual(good.endToEnd, { checked: true, distinctRequestIds: 2, total: 2, holds: true });
  assert.equal(good.requests.attempts, 4);
  assert.equal(good.requests.distinct, 2);

  // Retries gave up on c-2 with its outcome unknown and it was not published: end to end is not proven.
  const gaveUp = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'unknown', 1), attempt('c-2', B, 'unknown', 2)];
  const v = check(gaveUp, snapshot([msg(1, 'c-1', A)], { [A]: 1 }), { endToEnd: true });
  assert.equal(v.verdict, 'unknown');
  assert.equal(v.endToEnd.holds, false);
});

test('messages that belong to no request are foreign', () => {
  const v = check([attempt('c-1', A, 'ok')], snapshot([msg(1, 'c-1', A), msg(2, 'stranger', A)], { [A]: 2 }));
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.foreignMessages[0]?.offset, 2);
});

test('a history that sends one request id for two counters is rejected', () => {
  assert.throws(() => check([attempt('c-1', A, 'unknown'), attempt('c-1', B, 'ok', 2)], snapshot([], {})), /two counters/);
});

test('history: JSONL round trip, and a bad line is named by file and line', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { writeHistoryJsonl, readHistoryJsonl } = await import('../src/scenarios/chaos/history.ts');
  const dir = mkdtempSync(join(tmpdir(), 'eob-history-'));
  try {
    const history = [attempt('c-1', A, 'ok'), { ...attempt('c-2', B, 'unknown'), error: 'ECONNRESET' }];
    await writeHistoryJsonl(join(dir, 'h.jsonl'), history);
    assert.deepEqual(await readHistoryJsonl(join(dir, 'h.jsonl')), history);
    writeFileSync(join(dir, 'bad.jsonl'), `${JSON.stringify(history[0])}\n{"requestId": 3}\n`);
    await assert.rejects(readHistoryJsonl(join(dir, 'bad.jsonl')), /bad\.jsonl:2: not a request attempt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('outcome classification: a refused connection or a 503 proves nothing was published; a 504 does not', async () => {
  const { classifyAttempt } = await import('../src/scenarios/chaos/historyLoad.ts');
  assert.equal(classifyAttempt(204, undefined).outcome, 'ok');
  assert.equal(classifyAttempt(400, undefined).outcome, 'fail');
  assert.equal(classifyAttempt(409, undefined).outcome, 'fail');
  assert.equal(classifyAttempt(503, undefined).outcome, 'fail');
  assert.equal(classifyAttempt(504, undefined).outcome, 'unknown');
  assert.equal(classifyAttempt(500, undefined).outcome, 'unknown');
  assert.equal(classifyAttempt(undefined, 'ECONNREFUSED').outcome, 'fail');
  assert.equal(classifyAttempt(undefined, 'ECONNRESET').outcome, 'unknown');
  assert.equal(classifyAttempt(undefined, 'ETIMEDOUT').outcome, 'unknown');
});

// The taxonomy: each anomaly gets one kind, counted in its CSV column; a case's declaration decides with them.
test('taxonomy: an acknowledged publish missing from the topic is ack-publish-lost, not a consumer loss', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'ok')];
  const v = check(history, snapshot([msg(1, 'c-1', A)], { [A]: 1 }), { delivered: new Set([1]) });
  assert.equal(v.anomalies['ack-publish-lost'], 1);
  assert.equal(v.anomalies['never-counted'] + v.anomalies.skipped, 0);
  assert.deepEqual(v.findings, [{ kind: 'ack-publish-lost', requestId: 'c-2', counterUuid: B, offsets: [], amount: 1, exact: true }]);
});

test('taxonomy: a short counter is skipped when the consumer never read its message, never-counted when it did', () => {
  // c-2 (offset 2) was never read: passed as a hole; c-3 (offset 3) was read, acked, and its effect lost.
  const C = 'cccccccc-0000-4000-8000-000000000003';
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'ok'), attempt('c-3', C, 'ok')];
  const snap = { ...snapshot([msg(1, 'c-1', A), msg(2, 'c-2', B), msg(3, 'c-3', C)], { [A]: 1 }), ackedOffset: 3 };
  const v = check(history, snap, { delivered: new Set([1, 3]) });
  assert.equal(v.verdict, 'invalid');
  assert.equal(v.consumerEvidence, true);
  assert.equal(v.anomalies.skipped, 1);
  assert.equal(v.anomalies['never-counted'], 1);
  assert.deepEqual(v.findings.map((f) => [f.kind, f.requestId, f.offsets]), [['skipped', 'c-2', [2]], ['never-counted', 'c-3', [3]]]);
  // Without the consumer's account the two cannot be told apart: both are never-counted, and the verdict says why.
  const blind = check(history, snap);
  assert.equal(blind.consumerEvidence, false);
  assert.equal(blind.anomalies.skipped, 0);
  assert.equal(blind.anomalies['never-counted'], 2);
  assert.match(blind.reasons.join('\n'), /no account of what the consumer read/);
});

test('taxonomy: counted twice, published twice and unknown outcomes each have their kind', () => {
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'unknown', 1), attempt('c-2', B, 'ok', 2), attempt('c-3', A, 'unknown')];
  const v = check(history, snapshot([msg(1, 'c-1', A), msg(2, 'c-2', B), msg(3, 'c-2', B)], { [A]: 2, [B]: 2 }), { delivered: new Set([1, 2, 3]) });
  assert.equal(v.anomalies['counted-twice'], 1, 'A holds 2 for one message');
  assert.equal(v.anomalies['published-twice'], 1, 'c-2 is in the topic twice');
  assert.equal(v.anomalies['unknown-outcome'], 1, 'c-3 never got a definite answer');
  assert.equal(v.anomalies['ack-publish-lost'], 0);
});

test('a case declaration: illegal kinds fail it, a control needs its own kind, tolerated kinds pass', async () => {
  const { expectationMet } = await import('../src/scenarios/chaos/caseResult.ts');
  const { illegalKinds, EXACTLY_ONCE_TOLERATES } = await import('../src/scenarios/chaos/chaosMatrix.ts');
  const history = [attempt('c-1', A, 'ok'), attempt('c-2', B, 'unknown')];
  const clean = check(history, snapshot([msg(1, 'c-1', A)], { [A]: 1 }), { delivered: new Set([1]) });
  const eo = { expected: 'valid' as const, tolerates: EXACTLY_ONCE_TOLERATES };
  assert.deepEqual(illegalKinds(eo), ['ack-publish-lost', 'never-counted', 'skipped', 'counted-twice', 'published-twice']);
  assert.equal(expectationMet(eo, clean).passed, true, 'an unknown outcome is tolerated');
  assert.equal(expectationMet({ expected: 'valid', tolerates: [] }, clean).passed, false, 'and illegal where not declared');
  // A control of skips: caught only with a skip, and a loss of another kind beside it fails it.
  const skip = { expected: 'skipped' as const, tolerates: EXACTLY_ONCE_TOLERATES };
  assert.equal(expectationMet(skip, clean).passed, false);
  const skipped = check([attempt('c-1', A, 'ok')], { ...snapshot([msg(1, 'c-1', A)], {}), ackedOffset: 1 }, { delivered: new Set() });
  assert.equal(expectationMet(skip, skipped).passed, true);
  assert.equal(expectationMet({ expected: 'never-counted', tolerates: [] }, skipped).passed, false, 'a skip is not a lost effect');
  // Without an event log a skip shows as never-counted, which a control of skips accepts and says so.
  const blind = check([attempt('c-1', A, 'ok')], { ...snapshot([msg(1, 'c-1', A)], {}), ackedOffset: 1 });
  const met = expectationMet(skip, blind);
  assert.equal(met.passed, true);
  assert.match(met.why, /as never-counted/);
});

test('a case whose faults did not all happen and heal fails, whatever the verdict: an error, no recovery, fewer injections than planned', async () => {
  const { judgeCase } = await import('../src/scenarios/chaos/caseResult.ts');
  const { EXACTLY_ONCE_TOLERATES } = await import('../src/scenarios/chaos/chaosMatrix.ts');
  const valid = check([attempt('c-1', A, 'ok')], snapshot([msg(1, 'c-1', A)], { [A]: 1 }), { delivered: new Set([1]) });
  const c = { expected: 'valid' as const, tolerates: EXACTLY_ONCE_TOLERATES, faults: ['primary-failover' as const], perFault: 2 };
  const healed = (round: number): FaultEvent => ({ fault: 'primary-failover' as const, round, startMs: 1_000 * round, healStartMs: 1_000 * round + 100, recoveredMs: 1_000 * round + 300, recoveryMs: 200, detail: 'failed over' });
  const facts = (faults: FaultEvent[]) => ({ error: undefined, interrupted: false, quiesced: true, quiesceTimeoutMs: 1_000, recoveryTimeoutMs: 1_000, faults });
  assert.equal(judgeCase(c, valid, facts([healed(0), healed(1)])).passed, true, 'both planned failovers ran and healed');
  const errored = judgeCase(c, valid, facts([healed(0), { ...healed(1), error: 'promotion refused' }]));
  assert.equal(errored.passed, false);
  assert.match(errored.why, /1 fault\(s\) failed: primary-failover #2: promotion refused/);
  const unrecovered = judgeCase(c, valid, facts([healed(0), { ...healed(1), recoveredMs: undefined, recoveryMs: undefined }]));
  assert.equal(unrecovered.passed, false);
  assert.match(unrecovered.why, /did not recover/);
  const short = judgeCase(c, valid, facts([healed(0)]));
  assert.equal(short.passed, false);
  assert.match(short.why, /only 1 of 2 planned fault injections ran/);
  const skipped = judgeCase(c, valid, facts([]));
  assert.equal(skipped.passed, false, 'a case whose fault was skipped never failed over');
  assert.equal(judgeCase({ ...c, faults: [], perFault: 0 }, valid, facts([])).passed, true, 'a case without faults plans none');
});
