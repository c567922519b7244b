// The peers' pure parts with literal fixtures: their specs and settings, the plan's peer points, the rows'
// same-run ratios against our default drain, the peers table, and what a worker-kill drain case must show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePeerSpecs, peerGuarantee, peerSettingsText, peerVersion, validatePeerSpec } from '../src/bench/peers/peerSpec.ts';
import { enqueuedPerCounter, jobPayloadChunks } from '../src/bench/peers/peerQueue.ts';
import { checkCounters } from '../src/bench/counterCheck.ts';
import { peersTable } from '../src/bench/report.ts';
import { planPoints, pointLabel, type Point } from '../src/scenarios/throughput/plan.ts';
import { profileOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { defaultDrain, references, toRow } from '../src/scenarios/throughput/results.ts';
import { peersReportTable } from '../src/scenarios/throughput/benchPage.ts';
import { sweepOptionsFromArgs } from '../src/commands/bench.ts';
import { drainKillCases, drainKillMet } from '../src/scenarios/chaos/drainKill.ts';
import { pointResult } from './support/pointResult.ts';

const pg = { engine: 'postgres', server_version: '15.20', db_flush_log_at_trx_commit: undefined };

test('peer specs: a task the peer cannot run is refused with what to use instead', () => {
  assert.deepEqual(validatePeerSpec('bench', { peer: 'pg-boss', task: 'counter-in-completion' }), { peer: 'pg-boss', task: 'counter-in-completion' });
  assert.throws(() => validatePeerSpec('bench', { peer: 'graphile-worker', task: 'counter-in-completion' }), /graphile-worker has none: use counter or noop/);
  assert.throws(() => validatePeerSpec('bench', { peer: 'bullmq', task: 'noop' }), /peer must be one of graphile-worker, pg-boss \(got "bullmq"\)/);
  assert.deepEqual(parsePeerSpecs('bench', 'graphile-worker:noop, pg-boss:counter'), [{ peer: 'graphile-worker', task: 'noop' }, { peer: 'pg-boss', task: 'counter' }]);
  assert.throws(() => parsePeerSpecs('bench', 'graphile-worker'), /peer:task pairs like graphile-worker:counter \(got "graphile-worker"\)/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', peers: 'pg-boss:twice' }), /task must be one of noop, counter, counter-in-completion/);
});

test('peer settings and guarantees are written in the peer\'s own option names', () => {
  assert.equal(peerSettingsText({ peer: 'graphile-worker', task: 'counter' }), 'concurrentJobs=24 maxPoolSize=25 localQueue.size=500 completeJobBatchDelay=0 failJobBatchDelay=0');
  assert.equal(peerSettingsText({ peer: 'pg-boss', task: 'counter-in-completion' }), 'batchSize=1000 localConcurrency=4 burstWhenBatchFull=true pollingIntervalSeconds=0.5 transactional=true');
  assert.match(peerGuarantee('counter'), /^at-least-once/);
  assert.match(peerGuarantee('counter-in-completion'), /one transaction/);
  // The installed packages, as every row names them.
  assert.match(peerVersion('graphile-worker'), /^\d+\.\d+\.\d+/);
  assert.match(peerVersion('pg-boss'), /^\d+\.\d+\.\d+/);
});

test('a backlog of peer jobs goes round-robin over the counters, as ours does', () => {
  const counters = ['a', 'b', 'c'];
  assert.deepEqual([...enqueuedPerCounter(counters, 8)], [['a', 3], ['b', 3], ['c', 2]]);
  const chunks = [...jobPayloadChunks(counters, 8, 3)];
  assert.deepEqual(chunks.map((c) => c.length), [3, 3, 2]);
  assert.deepEqual(chunks.flat().map((p) => p.counter_uuid), ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b']);
});

test('the plan runs the peers on PostgreSQL only, right after our offset drains at batch 1000, on their backlog', () => {
  const o = profileOptions('standard');
  assert.equal(planPoints(o, 'mariadb').filter((p) => p.kind === 'peer').length, 0);
  const points = planPoints(o, 'postgres');
  const labels = points.map(pointLabel);
  const peers = points.filter((p) => p.kind === 'peer');
  assert.equal(peers.length, 5);
  const firstPeer = points.findIndex((p) => p.kind === 'peer');
  assert.deepEqual(labels.slice(firstPeer - 3, firstPeer), ['drain offset batch 1000 READ COMMITTED', 'drain offset batch 1000 REPEATABLE READ', 'drain offset batch 1000 SERIALIZABLE'], 'the drains they are compared with, just before them');
  assert.equal(labels[firstPeer + 5], 'drain offset batch 5000 READ COMMITTED');
  // Without a batch-1000 drain they still run, after the drains.
  const other = planPoints(sweepOptionsFromArgs({ profile: 'quick', 'batch-sizes': '100' }), 'postgres').map((p) => p.kind);
  assert.ok(other.lastIndexOf('drain') < other.indexOf('peer') && other.indexOf('peer') < other.indexOf('end-to-end'));
  assert.ok(peers.every((p) => p.backlogMessages === 400_000), 'the batch-1000 drain\'s backlog');
  assert.deepEqual(peers.map(pointLabel), [
    'peer graphile-worker noop',
    'peer graphile-worker counter',
    'peer pg-boss noop',
    'peer pg-boss counter',
    'peer pg-boss counter-in-completion',
  ]);
  const quick = planPoints(profileOptions('quick'), 'postgres').filter((p) => p.kind === 'peer');
  assert.deepEqual(quick.map(pointLabel), ['peer graphile-worker counter'], 'the quick profile\'s one peer point');
  assert.equal(planPoints(sweepOptionsFromArgs({ profile: 'quick', only: 'drain' }), 'postgres').filter((p) => p.kind === 'peer').length, 0);
});

function drain(batchSize: number, over: Partial<Point> = {}): Point {
  return { kind: 'drain', mode: 'offset', workers: 1, handler: 'batched', batchSize, pollIntervalMs: 10, isolation: 'READ COMMITTED', ackMode: 'transactional', coalesce: undefined, connections: undefined, backlogMessages: 100_000, repetition: 1, baseline: false, ...over };
}

function peerPoint(task: 'noop' | 'counter'): Point {
  return { kind: 'peer', mode: 'queue', workers: 1, handler: 'none', batchSize: undefined, pollIntervalMs: undefined, isolation: undefined, ackMode: undefined, coalesce: undefined, connections: undefined, backlogMessages: 100_000, repetition: 1, baseline: false, peer: { peer: 'graphile-worker', task } };
}

const valid = checkCounters(new Map([['a', 2]]), new Map([['a', 2]]));
const doubled = checkCounters(new Map([['a', 2]]), new Map([['a', 3]]));

test('peer rows: our default drain over the peer\'s rate, the peer\'s CPU over ours, its version and guarantee', () => {
  const ours = pointResult(drain(1000), { drainMsgsPerS: 60_000, check: valid, cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: 10, db: 15 } });
  // Faster drains that are not the reference: another batch size, and an invalid one at batch 1000.
  const others = [pointResult(drain(5000), { drainMsgsPerS: 200_000, check: valid }), pointResult(drain(1000, { isolation: 'SERIALIZABLE' }), { drainMsgsPerS: 90_000, check: doubled })];
  const facts = { version: '0.18.0', settings: 'concurrentJobs=24', task: 'counter, one counter upsert per job', guarantee: peerGuarantee('counter') };
  const counter = pointResult(peerPoint('counter'), { drainMsgsPerS: 4_000, check: valid, cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: 150, db: 100 }, peer: { ...facts, jobsCompleted: 40_000 } });
  const noop = pointResult(peerPoint('noop'), { drainMsgsPerS: 15_000, peer: { ...facts, task: 'noop', guarantee: peerGuarantee('noop'), counterTotal: 0 } });
  const results = [ours, ...others, counter, noop];
  const refs = references(results);
  assert.deepEqual(defaultDrain(results), { point: 'drain offset batch 1000 READ COMMITTED', msgsPerS: 60_000, cpuUsPerMsg: 25 });
  const o = profileOptions('quick');
  const row = toRow(counter, refs, o, pg);
  assert.equal(row.ratio_drain_vs_peer, 15);
  assert.equal(row.ratio_peer_cpu_vs_drain, 10);
  assert.equal(row.reference_drain_point, 'drain offset batch 1000 READ COMMITTED');
  assert.equal(row.peer, 'graphile-worker');
  assert.equal(row.peer_version, '0.18.0');
  assert.match(String(row.guarantee), /^at-least-once/);
  assert.equal(row.verdict, 'valid');
  assert.equal(row.ratio_vs_baseline, undefined, 'a peer is compared with our drain, not with the 154 msg/s');
  assert.equal(row.mode, undefined);
  const noopRow = toRow(noop, refs, o, pg);
  assert.equal(noopRow.verdict, 'n/a', 'a no-op task has no effect to count');
  assert.equal(toRow({ ...noop, peer: { ...noop.peer!, counterTotal: 3 } }, refs, o, pg).verdict, 'invalid', 'an effect from a no-op task is not hidden');
  const doubledRow = toRow({ ...counter, check: doubled }, refs, o, pg);
  assert.equal(doubledRow.verdict, 'invalid');
  assert.equal(doubledRow.duplicated, 1);
  // Without a drain of ours at batch 1000 there is no ratio, never one against another drain.
  assert.equal(toRow(counter, references([others[0]!, counter]), o, pg).ratio_drain_vs_peer, undefined);

  const rows = results.map((r) => toRow(r, refs, o, pg));
  const text = peersTable(rows)!;
  const lines = text.split('\n');
  assert.match(lines[0]!, /^\s+ours \/ peer\s+peer CPU \/ ours/, 'ratios first');
  assert.match(lines[2]!, /^ours: drain offset batch 1000 READ COMMITTED\s+1\.00\s+1\.00\s+60,000/);
  assert.match(lines[3]!, /^graphile-worker counter, one counter upsert per job\s+15\.00\s+10\.00\s+4,000 .* none lost, none doubled\s+at-least-once/);
  assert.match(lines[4]!, /no effect to count/);
  assert.equal(peersTable(rows.filter((r) => r.kind !== 'peer')), undefined);
  const page = peersReportTable(rows)!;
  assert.deepEqual(page.columns.slice(0, 3), ['', 'our drain ÷ peer (rate)', 'peer ÷ ours (CPU per job)']);
  assert.equal(page.rows[1]!.cells[1], '15.00');
  assert.equal(peersReportTable([{ ...rows[3]!, verdict: 'invalid', lost: 2, duplicated: 0 }])!.rows[0]!.status, 'bad', 'a peer that lost a job is marked');
});

test('worker-kill drains: at-least-once tolerates duplicates, never a loss; exactly-once neither', () => {
  const kills = [{ atJobs: 6_000, freedJobs: 500 }];
  const atLeastOnce = { expected: 'at-least-once' as const, killAt: [0.3] };
  const exactlyOnce = { expected: 'exactly-once' as const, killAt: [0.3] };
  assert.deepEqual(drainKillMet(atLeastOnce, { drained: true, lost: 0, duplicated: 38, kills }), { passed: true, why: 'lost 0, duplicated 38 after 1 kill(s): at-least-once allows duplicates, reported' });
  assert.equal(drainKillMet(atLeastOnce, { drained: true, lost: 1, duplicated: 0, kills }).passed, false);
  assert.equal(drainKillMet(exactlyOnce, { drained: true, lost: 0, duplicated: 0, kills }).passed, true);
  assert.match(drainKillMet(exactlyOnce, { drained: true, lost: 0, duplicated: 1, kills }).why, /its guarantee says none/);
  assert.match(drainKillMet(exactlyOnce, { drained: false, lost: 0, duplicated: 0, kills }).why, /not done within the bound/);
  assert.match(drainKillMet(exactlyOnce, { drained: true, lost: 0, duplicated: 0, kills: [] }).why, /only 0 of 1 kills landed/, 'a drain done before its kill proves nothing');
  assert.deepEqual(drainKillCases('quick', 'mariadb'), [], 'the peers are PostgreSQL job queues');
  assert.deepEqual(drainKillCases('quick', 'postgres', ['db-kill']), [], 'left out without worker-kill');
  assert.deepEqual(drainKillCases('quick', 'postgres').map((c) => [c.name, c.expected]), [
    ['kill-drain-ours', 'exactly-once'],
    ['kill-drain-graphile-worker', 'at-least-once'],
    ['kill-drain-pg-boss', 'at-least-once'],
    ['kill-drain-pg-boss-in-completion', 'exactly-once'],
  ]);
});
