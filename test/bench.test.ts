// Pure parts of the bench with literal fixtures: rates, percentiles, ratios, the counter check, CSV rows,
// chart specs, /proc parsing, the plan of points and the command's option parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainRate, lagPercentiles, percentile, ratio, rateBetween, type ProgressSample } from '../src/bench/metrics.ts';
import { checkCounters } from '../src/bench/counterCheck.ts';
import { toCsv } from '../src/bench/csv.ts';
import { parseProcStat } from '../src/harness/processCpu.ts';
import { bestRow, drainChartData, medianRows, summaryTable } from '../src/bench/report.ts';
import { timestampDirName } from '../src/bench/resultsDir.ts';
import { planPoints, pointLabel, QUEUE_DRAIN_BACKLOG_MAX, type Point } from '../src/scenarios/throughput/plan.ts';
import { profileOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { references, toRow, CSV_COLUMNS } from '../src/scenarios/throughput/results.ts';
import { sweepOptionsFromArgs } from '../src/commands/bench.ts';
import { pointResult } from './support/pointResult.ts';

const s = (atMs: number, progress: number, published = 1000, lagMs?: number): ProgressSample => ({ atMs, progress, published, ...(lagMs === undefined ? {} : { lagMs }) });

test('drainRate excludes start-up and ends where the backlog was done', () => {
  // Idle for 2 s (worker starting), then 1000 messages per second, done at 1000 by t=3.5 s, then idle.
  const samples = [s(0, 0), s(1000, 0), s(2000, 0), s(2500, 500), s(3000, 800), s(3500, 1000), s(4000, 1000), s(9000, 1000)];
  const r = drainRate(samples, 1000);
  assert.equal(r.startMs, 2500);
  assert.equal(r.endMs, 3500);
  assert.equal(r.messages, 500);
  assert.equal(r.perSecond, 500);
  // Without a target the window runs to the last sample.
  assert.equal(drainRate(samples).perSecond, 500 / 6.5);
  assert.equal(drainRate([s(0, 0), s(100, 0)]).perSecond, undefined, 'no progress: no rate');
  assert.equal(drainRate([]).perSecond, undefined);
});

test('rateBetween', () => {
  assert.equal(rateBetween(s(0, 10, 100), s(2000, 30, 500), 'published'), 200);
  assert.equal(rateBetween(s(0, 10), s(0, 30), 'progress'), undefined);
});

test('percentile interpolates between closest ranks', () => {
  assert.equal(percentile([1, 2], 50), 1.5);
  assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 9.91);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([3, 9], 100), 9);
  assert.equal(percentile([], 50), undefined);
  assert.throws(() => percentile([1], 101), /p must be from 0 to 100/);
});

test('lag percentiles only over the window', () => {
  const samples = [s(0, 0, 0, 1000), s(100, 0, 0, 10), s(200, 0, 0, 20), s(300, 0, 0, 30), s(400, 0, 0, 5000)];
  assert.deepEqual(lagPercentiles(samples, 100, 300), { p50: 20, p99: 29.8 });
});

test('ratio', () => {
  assert.equal(ratio(308, 154), 2);
  assert.equal(ratio(1, 0), undefined);
  assert.equal(ratio(undefined, 154), undefined);
  assert.equal(ratio(5, undefined), undefined);
});

test('checkCounters: valid, lost, duplicated, missing rows', () => {
  const expected = new Map([['a', 3], ['b', 2], ['c', 1]]);
  assert.deepEqual(checkCounters(expected, new Map([['a', 3], ['b', 2], ['c', 1]])), {
    verdict: 'valid', lost: 0, duplicated: 0, wrongCounters: [], expectedTotal: 6, countedTotal: 6,
  });
  const bad = checkCounters(expected, new Map([['a', 4], ['b', 0], ['x', 1]]));
  assert.equal(bad.verdict, 'invalid');
  assert.equal(bad.lost, 3, 'b lost 2, c (no row) lost 1');
  assert.equal(bad.duplicated, 2, 'a one too many, x has no messages');
  assert.deepEqual(bad.wrongCounters, ['a', 'b', 'c', 'x']);
});

test('CSV: fixed columns, empty cells, quoting, unknown column refused', () => {
  const csv = toCsv(['point', 'drain_msgs_per_s', 'drained', 'note'], [
    { point: 'drain offset batch 100', drain_msgs_per_s: 1234.56789, drained: true, note: 'a, "b"' },
    { point: 'http', drain_msgs_per_s: undefined },
  ]);
  assert.equal(csv, 'point,drain_msgs_per_s,drained,note\ndrain offset batch 100,1234.568,true,"a, ""b"""\nhttp,,,\n');
  assert.throws(() => toCsv(['a'], [{ b: 1 }]), /column "b" which is not in the column list/);
});

test('parseProcStat reads utime + stime after the command name, even with spaces and parentheses in it', () => {
  const line = '1234 (node (eob) x) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0';
  assert.equal(parseProcStat(line, 100), 3);
  assert.throws(() => parseProcStat('garbage', 100), /not a \/proc/);
});

test('results folder names are ISO timestamps without colons', () => {
  assert.equal(timestampDirName(new Date('2024-05-01T10:20:30.123Z')), '2024-05-01T10-20-30.123Z');
});

test('the plan: quick covers the ceilings, the baseline and the best configuration; standard the grid', () => {
  const quick = planPoints(profileOptions('quick'));
  assert.deepEqual(quick.map((p) => `${p.kind}/${p.handler}/${p.batchSize ?? ''}`), [
    'http-ceiling/none/', 'sql-ceiling/raw-sql/1000', 'drain/watermill/1', 'drain/watermill/100', 'drain/batched/1000', 'end-to-end/batched/1000',
  ]);
  const standard = planPoints(profileOptions('standard'));
  const drains = standard.filter((p) => p.kind === 'drain' && p.handler === 'batched');
  assert.equal(drains.filter((p) => p.mode === 'offset').length, 5 * 3);
  assert.equal(drains.filter((p) => p.mode === 'queue').length, 5 * 3);
  // offset and queue, coalescing on and off, at 50 and at 200 connections; an HTTP ceiling at each count.
  assert.equal(standard.filter((p) => p.kind === 'end-to-end').length, 8);
  assert.deepEqual(standard.filter((p) => p.kind === 'http-ceiling').map((p) => p.connections), [50, 200]);
  const full = profileOptions('full');
  assert.equal(planPoints(full).filter((p) => p.kind === 'http-ceiling').length, 3 * 2, 'one per connection count and repetition');
});

test('each connection count gets its own HTTP ceiling; every ratio is to the best ceiling of the run', () => {
  const o = { ...profileOptions('quick'), endToEndConnections: [50, 200] };
  const points = planPoints(o);
  const http = points.filter((p) => p.kind === 'http-ceiling');
  const e2e = points.filter((p) => p.kind === 'end-to-end');
  assert.deepEqual(http.map((p) => [pointLabel(p), p.connections]), [['http-ceiling (POST /noop)', 50], ['http-ceiling (POST /noop) 200 connections', 200]]);
  assert.deepEqual(e2e.map((p) => p.connections), [50, 200]);
  assert.match(pointLabel(e2e[1] as Point), /coalesce 200 connections$/);
  assert.doesNotMatch(pointLabel(e2e[0] as Point), /connections/, 'the default count is left unsaid');
  const results = [
    pointResult(http[0] as Point, { publishReqPerS: 40_000 }),
    pointResult(http[1] as Point, { publishReqPerS: 30_000 }),
    pointResult(e2e[0] as Point, { publishReqPerS: 16_000 }),
    pointResult(e2e[1] as Point, { publishReqPerS: 24_000 }),
  ];
  const refs = references(results);
  const db = { engine: 'mariadb', server_version: '10.11', db_flush_log_at_trx_commit: 1 };
  // The point at 200 connections is 0.8 of the ceiling at its own count, but 0.6 of the best ceiling measured.
  assert.deepEqual(results.map((r) => toRow(r, refs, o, db)).map((r) => [r.connections, r.ratio_vs_http_ceiling]), [[50, 1], [200, 0.75], [50, 0.4], [200, 0.6]]);
});

test('end to end, CPU per message is also read against what one HTTP answer cost at the same connection count', () => {
  const quick = profileOptions('quick');
  const o = { ...quick, endToEndConnections: [50, 200], grid: { ...quick.grid, repetitions: 2 } };
  const points = planPoints(o);
  const http = points.filter((p) => p.kind === 'http-ceiling');
  const e2e = points.filter((p) => p.kind === 'end-to-end' && p.repetition === 1);
  const cpu = (server: number | undefined, worker?: number, db?: number) => ({ cpuUsPerMsg: { loadgen: 30, server, worker, db } });
  const at = (connections: number, repetition: number) => http.find((p) => p.connections === connections && p.repetition === repetition) as Point;
  const results = [
    // The least answer cost of each count is its reference: 20 at 50 connections, 25 at 200.
    pointResult(at(50, 1), { publishReqPerS: 40_000, ...cpu(22) }),
    pointResult(at(50, 2), { publishReqPerS: 39_000, ...cpu(20) }),
    pointResult(at(200, 1), { publishReqPerS: 30_000, ...cpu(25) }),
    pointResult(at(200, 2), { publishReqPerS: 31_000, ...cpu(undefined) }),
    pointResult(e2e.find((p) => p.connections === 50) as Point, { publishReqPerS: 16_000, ...cpu(30, 6, 14) }),
    pointResult(e2e.find((p) => p.connections === 200) as Point, { publishReqPerS: 24_000, ...cpu(27, 5, 18) }),
    pointResult(e2e.find((p) => p.connections === 200) as Point, { publishReqPerS: 24_000, ...cpu(27, undefined, 18) }),
  ];
  const refs = references(results);
  assert.deepEqual([...refs.httpAnswerCpuUsByConnections].sort(), [[200, 25], [50, 20]]);
  const rows = results.map((r) => toRow(r, refs, o, { engine: 'mariadb', server_version: '10.11', db_flush_log_at_trx_commit: 1 }));
  assert.deepEqual(rows.map((r) => [r.cpu_system_us_per_msg, r.cpu_vs_http_answer]), [
    [undefined, undefined], [undefined, undefined], [undefined, undefined], [undefined, undefined],
    [50, 2.5],
    [50, 2],
    [undefined, undefined], // a process's CPU not read: no total, rather than a total that leaves it out
  ]);
});

test('rows carry ratios against the run references and every column', () => {
  const o = profileOptions('quick');
  const [http, sql, wm1, wm100, drain] = planPoints(o) as [Point, Point, Point, Point, Point];
  const valid = { verdict: 'valid' as const, lost: 0, duplicated: 0, wrongCounters: [], expectedTotal: 10, countedTotal: 10 };
  const results = [
    pointResult(http, { publishReqPerS: 20_000 }),
    pointResult(sql, { drainMsgsPerS: 100_000, check: valid }),
    pointResult(wm1, { drainMsgsPerS: 300, check: valid }),
    pointResult(wm100, { drainMsgsPerS: 2_000, check: valid }),
    pointResult(drain, { drainMsgsPerS: 50_000, check: valid }),
  ];
  const refs = references(results);
  assert.equal(refs.watermillProfileMsgsPerS, 2_000);
  const row = toRow(results[4]!, refs, o, { engine: 'mariadb', server_version: '10.11', db_flush_log_at_trx_commit: 1 });
  assert.deepEqual(Object.keys(row).sort(), [...CSV_COLUMNS].sort());
  assert.equal(row.ratio_vs_baseline, 50_000 / 154);
  assert.equal(row.ratio_vs_watermill_profile, 25);
  assert.equal(row.ratio_vs_sql_ceiling, 0.5);
  assert.equal(row.ratio_vs_http_ceiling, undefined, 'a drain point is not an HTTP figure');
  assert.equal(row.verdict, 'valid');
  assert.equal(row.db_flush_log_at_trx_commit, 1);
  assert.equal(row.engine, 'mariadb');
  assert.equal(row.server_version, '10.11');
  const unchecked = toRow(pointResult(drain, {}), refs, o, { engine: 'postgres', server_version: '15.20', db_flush_log_at_trx_commit: undefined });
  assert.equal(unchecked.engine, 'postgres');
  assert.equal(unchecked.verdict, 'unknown');
});

test('report: best row is the fastest valid exactly-once drain; invalid rows are called out', () => {
  const rows = [
    { kind: 'drain', point: 'fast but lossy', drain_msgs_per_s: 90_000, verdict: 'invalid', ack_mode: 'before-commit', lost: 100, duplicated: 0 },
    { kind: 'drain', point: 'good', drain_msgs_per_s: 50_000, verdict: 'valid', ack_mode: 'transactional', batch_size: 1000, mode: 'offset', isolation: 'SERIALIZABLE', handler_profile: 'batched' },
  ];
  assert.equal(bestRow(rows, 'drain', 'drain_msgs_per_s')?.point, 'good');
  assert.match(summaryTable(rows), /NOT VALID: fast but lossy \(lost 100, duplicated 0\)/);
  assert.deepEqual(drainChartData(rows).points.map((p) => p.series), ['offset SERIALIZABLE batched']);
  const baseline = { kind: 'drain', point: 'watermill', drain_msgs_per_s: 60_000, verdict: 'valid', ack_mode: 'transactional', handler_profile: 'watermill' };
  assert.equal(bestRow([...rows, baseline], 'drain', 'drain_msgs_per_s')?.point, 'good', 'the baseline profile is never the best configuration');
});

test('bench flags override the profile and bad values are refused with the field named', () => {
  const o = sweepOptionsFromArgs({ profile: 'quick', 'batch-sizes': '1,100,1000', isolation: 'READ-COMMITTED,serializable', coalesce: 'on,off', repetitions: 2 });
  assert.deepEqual(o.grid.batchSizes, [1, 100, 1000]);
  assert.deepEqual(o.grid.isolations, ['READ COMMITTED', 'SERIALIZABLE']);
  assert.deepEqual(o.grid.coalesce, [true, false]);
  assert.equal(o.grid.repetitions, 2);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'fast' }), /--profile must be one of quick, standard, full/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', 'batch-sizes': '1,x' }), /--batch-sizes must be whole numbers/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', isolation: 'SNAPSHOT' }), /--isolation "SNAPSHOT"/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', modes: 'offset,log' }), /modes must be one of offset, queue/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', 'batch-sizes': '0' }), /batch-sizes must be a whole number from 1/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', coalesce: 'maybe' }), /--coalesce takes on,off/);
  assert.deepEqual(sweepOptionsFromArgs({ profile: 'quick', connections: '20, 80' }).endToEndConnections, [20, 80]);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', connections: '50,many' }), /--connections must be whole numbers/);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', connections: '50,0' }), /connections must be a whole number from 1/);
});

test('report: medians over repetitions, one row per point; a point is valid only if every repetition was', () => {
  const rows = [
    { kind: 'drain', point: 'a', repetition: 1, drain_msgs_per_s: 100, verdict: 'valid', lost: 0, duplicated: 0 },
    { kind: 'drain', point: 'a', repetition: 2, drain_msgs_per_s: 300, verdict: 'valid', lost: 0, duplicated: 0 },
    { kind: 'drain', point: 'a', repetition: 3, drain_msgs_per_s: 200, verdict: 'valid', lost: 0, duplicated: 0 },
    { kind: 'drain', point: 'b', repetition: 1, drain_msgs_per_s: 50, verdict: 'valid', lost: 0, duplicated: 0 },
    { kind: 'drain', point: 'b', repetition: 2, drain_msgs_per_s: 70, verdict: 'invalid', lost: 3, duplicated: 1 },
  ];
  const medians = medianRows(rows);
  assert.deepEqual(
    medians.map((r) => [r.point, r.repetition, r.drain_msgs_per_s, r.verdict, r.lost, r.duplicated]),
    [
      ['a', 'median of 3', 200, 'valid', 0, 0],
      ['b', 'median of 2', 60, 'invalid', 3, 1],
    ],
  );
});

test('plan: drain backlogs are at most 2,000 batches, and at least 20 batches for the watermill profile', () => {
  const o = profileOptions('full');
  const drains = planPoints(o).filter((p) => p.kind === 'drain' || p.kind === 'sql-ceiling');
  for (const p of drains) {
    const batches = (p.backlogMessages ?? 0) / (p.batchSize ?? 1);
    if (p.handler === 'watermill') assert.ok(batches >= 20 || p.backlogMessages === o.backlogMessages, `${pointLabel(p)}: ${p.backlogMessages}`);
    else assert.ok(batches <= 2_000 && (p.backlogMessages ?? 0) <= o.backlogMessages, `${pointLabel(p)}: ${p.backlogMessages}`);
  }
  const batch1 = drains.find((p) => p.kind === 'drain' && p.handler === 'batched' && p.batchSize === 1);
  assert.equal(batch1?.backlogMessages, 2_000);
  // Queue drains are sized for queue mode's rates, so they end within the window rather than at it.
  const queue = planPoints(profileOptions('standard')).filter((p) => p.kind === 'drain' && p.mode === 'queue');
  assert.ok(queue.length > 0 && queue.every((p) => (p.backlogMessages ?? 0) <= QUEUE_DRAIN_BACKLOG_MAX));
  assert.equal(queue.find((p) => p.batchSize === 1000)?.backlogMessages, QUEUE_DRAIN_BACKLOG_MAX);
});
