// Witnesses on literal fixtures: each anomaly gets a record and a sentence naming what broke it (the hole pass
// and its proof, the read that went past, the commit that never came, the faults active), and a saved case
// re-checks to the same verdict and witnesses without a database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { check } from '../src/scenarios/chaos/checker.ts';
import type { DbSnapshot, SnapshotMessage } from '../src/scenarios/chaos/checker.ts';
import type { RequestAttempt } from '../src/scenarios/chaos/history.ts';
import { buildWitnesses } from '../src/scenarios/chaos/witnesses.ts';
import { deliveredOffsets, parseEventLog, type EventLogLine } from '../src/scenarios/chaos/consumerEventLog.ts';
import type { FaultEvent } from '../src/scenarios/chaos/nemesis.ts';
import { readCaseRecord, recheckCase, writeCaseRecord } from '../src/scenarios/chaos/caseRecord.ts';
import { chaosMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';
import { judgeCase, type CaseResult } from '../src/scenarios/chaos/caseResult.ts';

const T0 = 1_700_000_000_000;
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';

const ok = (requestId: string, counterUuid: string, endMs: number, via: 'http' | 'sql' = 'http'): RequestAttempt => ({
  requestId, counterUuid, attempt: 1, outcome: 'ok', status: via === 'http' ? 204 : undefined, via, phase: 'load', startMs: endMs - 5, endMs,
});
const msg = (offset: number, requestId: string, counterUuid: string, acked = true): SnapshotMessage => ({ offset, requestId, counterUuid, acked });
const snap = (messages: SnapshotMessage[], counters: Record<string, number>, ackedOffset?: number): DbSnapshot => ({
  messages, counters: new Map(Object.entries(counters)), ...(ackedOffset === undefined ? {} : { ackedOffset }),
});
const stall: FaultEvent = { fault: 'db-stall-allocator', round: 0, startMs: 12_000, healStartMs: 15_000, recoveredMs: 15_200, recoveryMs: 200, detail: 'stalled 7 inserts 500 ms' };

test('a skip passed as a hole: the sentence names the pass, its proof, and the fault that held the insert', () => {
  const history = [ok('r-1', A, 12_100), ok('r-2', B, 12_620, 'sql'), ok('r-3', C, 12_300)];
  const events: EventLogLine[] = [
    { t: T0 + 12_200, p: 7, e: 'read', batch: 4, offsets: [[1, 1]] },
    { t: T0 + 12_210, p: 7, e: 'commit', batch: 4, what: 'effects+ack' },
    { t: T0 + 12_400, p: 7, e: 'pass', from: 2, to: 2, by: 'innodb-trx', waitedMs: 40 },
    { t: T0 + 12_410, p: 7, e: 'read', batch: 5, offsets: [[3, 3]] },
    { t: T0 + 12_420, p: 7, e: 'commit', batch: 5, what: 'effects+ack' },
  ];
  const s = snap([msg(1, 'r-1', A), msg(2, 'r-2', B), msg(3, 'r-3', C)], { [A]: 1, [C]: 1 }, 3);
  const v = check(history, s, { delivered: deliveredOffsets(events) });
  assert.equal(v.anomalies.skipped, 1);
  const [w] = buildWitnesses({ findings: v.findings, history, messages: s.messages, events, startedAtMs: T0, faults: [stall], consumer: 'offset mode, gap proof innodb-trx' });
  assert.ok(w !== undefined);
  assert.equal(w.kind, 'skipped');
  assert.equal(w.requestId, 'r-2');
  assert.deepEqual(w.offsets, [2]);
  assert.deepEqual(w.holePass, { from: 2, to: 2, by: 'innodb-trx', atS: 12.4, waitedMs: 40, pid: 7 });
  assert.deepEqual(w.batches, []);
  assert.equal(w.answer?.answeredAtS, 12.62);
  assert.equal(w.faults[0]?.fault, 'db-stall-allocator');
  assert.match(w.sentence, /request r-2 for counter bbbbbbbb.* \(raw SQL INSERT\) at 12\.62 s; its offset 2 committed by then, after the consumer had passed offsets 2-2 as a permanent hole \(proof: innodb-trx\) at 12\.4 s/);
  assert.match(w.sentence, /while db-stall-allocator #1/);
});

test('a skip with no hole pass names the read that went past it; a before-commit loss names the missing commit', () => {
  const history = [ok('r-1', A, 1_000), ok('r-2', B, 1_100), ok('r-3', C, 1_050)];
  // r-2 (offset 2) committed late: batch 1 read 1 and 3. r-3 (offset 3) was read and acked, its effects lost.
  const events: EventLogLine[] = [
    { t: T0 + 1_060, p: 9, e: 'read', batch: 1, offsets: [[1, 1], [3, 3]] },
    { t: T0 + 1_070, p: 9, e: 'commit', batch: 1, what: 'ack' },
  ];
  const s = snap([msg(1, 'r-1', A), msg(2, 'r-2', B), msg(3, 'r-3', C)], { [A]: 1 }, 3);
  const v = check(history, s, { delivered: deliveredOffsets(events) });
  const ws = buildWitnesses({ findings: v.findings, history, messages: s.messages, events, startedAtMs: T0, faults: [], consumer: 'offset mode, gap handling none' });
  const skip = ws.find((w) => w.kind === 'skipped');
  const lost = ws.find((w) => w.kind === 'never-counted');
  assert.ok(skip !== undefined && lost !== undefined);
  assert.match(skip.sentence, /batch 1 of worker 9 read offsets 1, 3 at 1\.06 s, past it while it was not yet visible.*gap handling none/);
  assert.match(lost.sentence, /the ack committed and its effects never did/);
  assert.match(lost.sentence, /with no fault active/);
});

test('the event log parser keeps whole lines only: a line cut by a SIGKILL is left out', () => {
  const text = `${JSON.stringify({ t: 1, p: 2, e: 'read', batch: 1, offsets: [[1, 5]] })}\n{"t":2,"p":2,"e":"comm`;
  const events = parseEventLog(text);
  assert.equal(events.length, 1);
  assert.deepEqual([...deliveredOffsets(events)], [1, 2, 3, 4, 5]);
});

test('a saved case re-checks without a database to the verdict, result and witnesses of the run', async () => {
  const c = chaosMatrix('quick').find((x) => x.name === 'ctl-innodb-trx-only');
  assert.ok(c !== undefined);
  // Every planned injection ran (the case plans perFault of its one fault), the later one after the anomaly.
  const stalls = Array.from({ length: c.perFault }, (_, i): FaultEvent => ({ ...stall, round: i, startMs: stall.startMs + i * 4_000, healStartMs: stall.healStartMs + i * 4_000, recoveredMs: stall.recoveredMs! + i * 4_000 }));
  const history = [ok('r-1', A, 12_100), ok('r-2', B, 12_620, 'sql')];
  const events: EventLogLine[] = [
    { t: T0 + 12_200, p: 7, e: 'read', batch: 1, offsets: [[1, 1]] },
    { t: T0 + 12_400, p: 7, e: 'pass', from: 2, to: 2, by: 'innodb-trx', waitedMs: 40 },
  ];
  const s = snap([msg(1, 'r-1', A), msg(2, 'r-2', B)], { [A]: 1 }, 2);
  const verdict = check(history, s, { delivered: deliveredOffsets(events) });
  const facts = { error: undefined, interrupted: false, quiesced: true, quiesceTimeoutMs: 120_000, recoveryTimeoutMs: 20_000, faults: stalls };
  const judged = judgeCase(c, verdict, facts);
  assert.equal(judged.passed, true, judged.why);
  const witnesses = buildWitnesses({ findings: verdict.findings, history, messages: s.messages, events, startedAtMs: T0, faults: stalls, consumer: 'x' });
  const r = {
    case: c, engine: 'mariadb', verdict, expected: c.expected, passed: judged.passed, why: judged.why, faults: stalls, skippedFaults: [], history, timeline: [], phases: [],
    quiesced: true, drainMsgsPerS: undefined, drainDuringFaultsMsgsPerS: undefined, durationMs: 1, databaseVersion: undefined, poisoned: 0, gapsPassed: 1, gapsPassedByTimeout: 0,
    error: undefined, startedAtMs: T0, consumerEvents: events, snapshot: s, facts, witnesses,
  } satisfies CaseResult;
  const dir = mkdtempSync(path.join(tmpdir(), 'eob-record-'));
  try {
    const caseDir = await writeCaseRecord(dir, r);
    const lines = readFileSync(path.join(caseDir, 'anomalies.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    const again = recheckCase(await readCaseRecord(caseDir));
    assert.equal(again.agrees, true, again.differences.join('; '));
    assert.equal(again.verdict.verdict, 'invalid');
    assert.equal(again.passed, true);
    assert.equal(again.why, judged.why);
    assert.deepEqual(again.witnesses.map((w) => w.sentence), witnesses.map((w) => w.sentence));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the page shows a case\'s own kind first: a control\'s witnesses before its tolerated unknown outcomes', async () => {
  const { pageWitnesses, WITNESSES_SHOWN } = await import('../src/scenarios/chaos/chaosPage.ts');
  const c = chaosMatrix('quick').find((x) => x.name === 'ctl-nonlocking-read');
  assert.ok(c !== undefined);
  const w = (kind: 'unknown-outcome' | 'skipped', i: number) => ({ kind, sentence: `${kind} ${i}` }) as unknown as ReturnType<typeof buildWitnesses>[number];
  const witnesses = [w('unknown-outcome', 1), w('unknown-outcome', 2), w('unknown-outcome', 3), w('skipped', 4), w('skipped', 5)];
  const shown = pageWitnesses({ case: c, witnesses } as unknown as CaseResult);
  assert.equal(shown.length, WITNESSES_SHOWN);
  assert.deepEqual(shown.map((x) => x.sentence), ['skipped 4', 'skipped 5', 'unknown-outcome 1']);
});
