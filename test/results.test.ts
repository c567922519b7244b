// What a person reads from a run, with literal fixtures: CPU per message, the plan's time left, finished-point
// lines, the summary without blank numbers, honest columns (interrupted, no drain lag, which ratios a ceiling
// bounds), `latest` only for complete runs, planned exits, and chaos counts that reconcile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuUsPerMessage } from '../src/bench/metrics.ts';
import { processCpuSeconds, processTreeCpuSeconds } from '../src/harness/processCpu.ts';
import { formatDuration, secondsLeft } from '../src/bench/progress.ts';
import { pointLine, summaryTable } from '../src/bench/report.ts';
import { createResultsDir } from '../src/bench/resultsDir.ts';
import {
  BACKLOG_WRITE_ROWS_PER_S,
  backlogWrites,
  estimatePointSeconds,
  PG_BACKLOG_ANALYZE_S,
  planPoints,
  planRun,
  pointLabel,
  SQL_LOOP_START_S,
  sqlLoopRuns,
} from '../src/scenarios/throughput/plan.ts';
import type { EngineName } from '../src/system/sql/engine.ts';
import { profileOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { boundedBySqlCeiling, references, toRow } from '../src/scenarios/throughput/results.ts';
import { ChildService, type ExitCause } from '../src/harness/childService.ts';
import { caseLine, csvRow, presentVerdict, warmupRequests } from '../src/scenarios/chaos/chaosReport.ts';
import type { CaseResult } from '../src/scenarios/chaos/caseResult.ts';
import type { RequestAttempt } from '../src/scenarios/chaos/history.ts';
import { chaosMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';
import { estimateCaseSeconds } from '../src/scenarios/chaos/runCase.ts';
import { check } from '../src/scenarios/chaos/checker.ts';
import { pointResult } from './support/pointResult.ts';
import { pathOnlyEnvironment } from '../src/config.ts';

test('CPU per message: CPU seconds over the window / messages in it; nothing when no message went through', () => {
  assert.equal(cpuUsPerMessage(0.5, 10_000), 50);
  assert.equal(cpuUsPerMessage(0.5, 0), undefined);
  assert.equal(cpuUsPerMessage(undefined, 10), undefined);
  assert.equal(cpuUsPerMessage(0.5, undefined), undefined);
});

test('process tree CPU counts this process and its children; a gone pid is undefined', () => {
  const own = processCpuSeconds(process.pid)!;
  assert.ok(processTreeCpuSeconds(process.pid)! >= own);
  assert.equal(processTreeCpuSeconds(2 ** 22 + 12345), undefined);
});

test("time left comes from the plan's estimates: later steps plus what is left of the current one", () => {
  assert.equal(secondsLeft([10, 20, 30], 0, 4), 6 + 20 + 30);
  assert.equal(secondsLeft([10, 20, 30], 1, 25), 30, 'a step over its estimate adds nothing, never a negative');
  assert.equal(secondsLeft([10, 20, 30], 3, 0), 0);
  assert.equal(formatDuration(45.4), '45 s');
  assert.equal(formatDuration(185), '3 min 05 s');
  assert.equal(formatDuration(3720), '1 h 02 min');
  // The profiles' estimates agree with what --help and docs/bench.md say of them.
  const total = (profile: 'quick' | 'standard') => {
    const o = profileOptions(profile);
    return planPoints(o).reduce((sum, p) => sum + estimatePointSeconds(p, o), 0);
  };
  assert.ok(total('quick') > 20 && total('quick') < 120, `quick ${total('quick')} s`);
  assert.ok(total('standard') > 120 && total('standard') < 600, `standard ${total('standard')} s`);
});

test("a point's estimate counts every backlog it writes and every run of the SQL ceiling's loop, on each engine", () => {
  const o = profileOptions('standard');
  const find = (engine: EngineName, kind: string, mode: string) => planPoints(o, engine).find((x) => x.kind === kind && x.mode === mode && x.handler !== 'watermill')!;
  const writes = (engine: EngineName, kind: string, mode: string) => backlogWrites(find(engine, kind, mode), engine, o);
  // MariaDB's offset drain writes its backlog once: each round's ceiling loop and workers consume it in turn
  // (the consumption reset in between); PostgreSQL, which cannot undo a consumption, writes one for each run.
  assert.equal(o.drainRounds, 3);
  assert.deepEqual(
    [writes('mariadb', 'sql-ceiling', 'offset'), writes('mariadb', 'drain', 'offset'), writes('mariadb', 'drain', 'queue'), writes('mariadb', 'end-to-end', 'offset'), writes('mariadb', 'http-ceiling', 'offset')],
    [1, 1, 1, 0, 0],
  );
  assert.deepEqual([writes('postgres', 'sql-ceiling', 'offset'), writes('postgres', 'drain', 'offset'), writes('postgres', 'drain', 'queue')], [1, 6, 1]);
  const baseline = planPoints(o).find((x) => x.baseline)!;
  assert.deepEqual([baseline.mode, backlogWrites(baseline, 'mariadb', o), sqlLoopRuns(baseline, o)], ['offset', 1, 1], 'the watermill baseline is an offset drain, paired too, in one round');
  assert.deepEqual(['sql-ceiling', 'drain', 'end-to-end', 'http-ceiling'].map((k) => sqlLoopRuns(find('mariadb', k, 'offset'), o)), [1, 3, 0, 0]);
  assert.equal(sqlLoopRuns(find('mariadb', 'drain', 'queue'), o), 0, 'queue drains are not paired');

  // Each write at its engine's rate: with every drain held at the timeout, a backlog larger by n rows adds
  // n rows per write and nothing else.
  const capped = { ...o, drainTimeoutS: 1 };
  const n = 1_200_000;
  const growth = (engine: EngineName, kind: string, mode: string) => {
    const p = find(engine, kind, mode);
    const at = (backlog: number) => estimatePointSeconds({ ...p, backlogMessages: backlog }, capped, engine);
    return at(2 * n) - at(n);
  };
  for (const engine of ['mariadb', 'postgres'] as const) {
    for (const [kind, mode] of [['sql-ceiling', 'offset'], ['drain', 'offset'], ['drain', 'queue']] as const) {
      const expected = (writes(engine, kind, mode) * n) / BACKLOG_WRITE_ROWS_PER_S[engine];
      assert.ok(Math.abs(growth(engine, kind, mode) - expected) < 1e-9, `${engine} ${kind} ${mode}: ${growth(engine, kind, mode)} s, ${expected} s expected`);
    }
  }

  // Each loop run with its process's start, and PostgreSQL's ANALYZE of each offset-mode backlog: seen at an
  // empty backlog, where nothing is written or consumed.
  const empty = (engine: EngineName, kind: string, mode: string) => estimatePointSeconds({ ...find(engine, kind, mode), backlogMessages: 0 }, o, engine);
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} against ${b}`);
  close(empty('mariadb', 'sql-ceiling', 'offset'), 0.5 + SQL_LOOP_START_S, 'SQL ceiling');
  const queue1 = { ...find('mariadb', 'drain', 'queue'), workers: 1, backlogMessages: 0 };
  // Each round starts its worker again (1.5 s + 0.3 s a worker) and runs the loop once.
  const offset1 = find('mariadb', 'drain', 'offset');
  assert.equal(offset1.workers, 1);
  close(empty('mariadb', 'drain', 'offset') - estimatePointSeconds(queue1, o, 'mariadb'), (o.drainRounds - 1) * (1.5 + 0.3) + o.drainRounds * SQL_LOOP_START_S, 'offset drain over a queue drain of one worker');
  const analyzes = (kind: string, mode: string) => Math.round(((empty('postgres', kind, mode) - empty('mariadb', kind, mode)) / PG_BACKLOG_ANALYZE_S) * 1000) / 1000;
  assert.deepEqual([analyzes('sql-ceiling', 'offset'), analyzes('drain', 'offset'), analyzes('drain', 'queue'), analyzes('end-to-end', 'offset')], [1, 2 * o.drainRounds, 0, 0]);
  assert.ok(PG_BACKLOG_ANALYZE_S >= 0.1 && PG_BACKLOG_ANALYZE_S <= 0.3, 'the measured 0.1-0.3 s per ANALYZE');
});

test("a run's time left estimates each point on its own engine: PostgreSQL's steps count their ANALYZE", () => {
  const o = profileOptions('quick');
  const plan = planRun(o, ['mariadb', 'postgres']);
  assert.deepEqual(plan.engines.map((e) => e.engine), ['mariadb', 'postgres']);
  const steps = plan.engines.flatMap((e) => e.points.map((point) => ({ engine: e.engine, point })));
  assert.equal(plan.estimatesS.length, steps.length, 'one estimate per point of the run, in the order they run');
  steps.forEach((s, i) => assert.equal(plan.estimatesS[i], estimatePointSeconds(s.point, o, s.engine), `${s.engine}: ${pointLabel(s.point)}`));
  // The same offset drain takes longer on PostgreSQL: the estimate the bar would lose with MariaDB's for every point.
  const drain = (engine: string) => plan.estimatesS[steps.findIndex((s) => s.engine === engine && s.point.kind === 'drain' && s.point.mode === 'offset' && s.point.handler === 'batched')]!;
  assert.ok(drain('postgres') > drain('mariadb'), `postgres ${drain('postgres')} s, mariadb ${drain('mariadb')} s`);
});

const valid = { verdict: 'valid' as const, lost: 0, duplicated: 0, wrongCounters: [], expectedTotal: 10, countedTotal: 10 };
const db = { engine: 'mariadb', server_version: 'x', db_flush_log_at_trx_commit: 1 };

test('rows: interrupted points say so, CPU per message columns, the SQL ceiling ratio only where it bounds', () => {
  const o = profileOptions('standard');
  const points = planPoints(o);
  const sql = points.find((p) => p.kind === 'sql-ceiling' && p.batchSize === 1000)!;
  const offset = points.find((p) => p.kind === 'drain' && p.mode === 'offset' && p.batchSize === 1000 && p.handler === 'batched')!;
  const queue = points.find((p) => p.kind === 'drain' && p.mode === 'queue' && p.batchSize === 1000)!;
  assert.equal(boundedBySqlCeiling(offset), true);
  assert.equal(boundedBySqlCeiling(queue), false);
  const results = [
    pointResult(sql, { drainMsgsPerS: 100_000, check: valid }),
    pointResult(offset, { drainMsgsPerS: 90_000, check: valid, drained: true, cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: 3.25, db: 4.5 } }),
    pointResult(queue, { drainMsgsPerS: 40_000, check: valid, drained: true }),
  ];
  const refs = references(results);
  const rows = results.map((r) => toRow(r, refs, o, db));
  assert.equal(rows[1]!.ratio_vs_sql_ceiling, 0.9);
  assert.equal(rows[1]!.cpu_worker_us_per_msg, 3.25);
  assert.equal(rows[1]!.cpu_db_us_per_msg, 4.5);
  assert.equal(rows[1]!.lag_p99_ms, undefined);
  assert.equal(rows[2]!.ratio_vs_sql_ceiling, undefined, 'queue mode runs other statements on several connections');
  // A point that was interrupted is never "valid", even if its counters happened to agree.
  const cut = toRow(pointResult(offset, { drainMsgsPerS: 5, check: valid, interrupted: true }), refs, o, db);
  assert.equal(cut.verdict, 'interrupted');
});

test('a finished point in one line: rate, ratios, CPU per message, verdict', () => {
  const line = pointLine({
    point: 'end-to-end offset batch 1000', kind: 'end-to-end', publish_req_per_s: 15_814.2, drain_msgs_per_s: 15_856, ratio_vs_http_ceiling: 0.431,
    ratio_vs_sql_ceiling: 0.11, ratio_vs_baseline: 103, cpu_server_us_per_msg: 35.2, cpu_worker_us_per_msg: 10, cpu_db_us_per_msg: 23, cpu_loadgen_us_per_msg: 30,
    cpu_system_us_per_msg: 68.2, cpu_vs_http_answer: 3.41,
    latency_p99_ms: 8, lag_p99_ms: 16, verdict: 'valid', point_duration_s: 10.04,
  });
  assert.equal(
    line,
    'end-to-end offset batch 1000: 15,814 req/s, 15,856 msgs/s, 0.11 of SQL ceiling, 0.43 of HTTP ceiling, 103.00x 154/s, ' +
      'CPU us/msg server 35.2, worker 10.0, db 23.0, loadgen 30.0 (system 68.2 = 3.41x an HTTP answer), latency p99 8 ms, lag p99 16 ms, valid, 10.0 s',
  );
  assert.match(pointLine({ point: 'd', kind: 'drain', drain_msgs_per_s: 10, drained: false, verdict: 'valid', note: 'backlog not drained within 6 s' }), /NOT drained in time, valid \(backlog not drained/);
});

test('summary of --only drain: ratios lead, no blank numbers, references not measured are said so', () => {
  const rows = [
    { point: 'drain offset batch 1000', kind: 'drain', mode: 'offset', handler_profile: 'batched', ack_mode: 'transactional', verdict: 'valid', drain_msgs_per_s: 100_000, ratio_vs_baseline: 649.35, cpu_worker_us_per_msg: 3.3, cpu_db_us_per_msg: 4.6, lost: 0, duplicated: 0 },
    { point: 'drain queue x2 batch 1000', kind: 'drain', mode: 'queue', handler_profile: 'batched', ack_mode: 'transactional', verdict: 'valid', drain_msgs_per_s: 50_000, ratio_vs_baseline: 324.68, lost: 0, duplicated: 0 },
  ];
  const text = summaryTable(rows);
  const [headline] = text.split('\n');
  assert.match(headline!, /^best drain: +drain offset batch 1000: SQL ceiling not measured in this run, watermill handler not measured in this run, 649.35x the published 154 msg\/s; 100,000 msgs\/s; CPU us\/msg worker 3.3, db 4.6$/);
  assert.doesNotMatch(text, /\/http ceil|publish\/s|lat p99/, 'columns no row has are left out');
  const table = text.split('\n').filter((l) => l.startsWith('drain '));
  assert.equal(table.length, 2);
  for (const line of table) assert.doesNotMatch(line, / {2}(?= {2})$/, 'no trailing blank cell');
  assert.match(table[1]!, /-/, 'a figure that does not apply reads "-"');
  assert.doesNotMatch(text, /x the watermill handler, *,|of the SQL ceiling *,/);
});

test('latest moves only when asked: a run created with latest false does not take it until markLatest', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-latest-'));
  try {
    const good = createResultsDir(root, 'bench', new Date('2026-01-01T00:00:00Z'));
    assert.equal(await readlink(path.join(root, 'bench', 'latest')), path.basename(good.path));
    const cut = createResultsDir(root, 'bench', new Date('2026-01-02T00:00:00Z'), { latest: false });
    assert.ok(existsSync(cut.path));
    assert.equal(await readlink(path.join(root, 'bench', 'latest')), path.basename(good.path), 'an interrupted run leaves latest alone');
    cut.markLatest();
    assert.equal(await readlink(path.join(root, 'bench', 'latest')), path.basename(cut.path));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a child that dies at a planned failpoint exits "planned", one that dies by itself "unexpected"', async () => {
  const script = "console.log('ready'); setTimeout(() => process.kill(process.pid, 'SIGKILL'), 100)";
  const make = () =>
    new ChildService({ name: 'stand-in', command: process.execPath, args: ['-e', script], env: pathOnlyEnvironment(), readiness: { kind: 'line', pattern: /^ready/ }, startTimeoutMs: 10_000, stopTimeoutMs: 2_000 });
  const causes: ExitCause[] = [];
  const planned = make();
  planned.expectExit('failpoint consume-between-commits=2 armed');
  planned.onExit((_s, expected, cause) => causes.push(cause) && assert.equal(expected, true));
  await planned.start();
  await planned.exited();
  const crash = make();
  crash.onExit((_s, expected, cause) => causes.push(cause) && assert.equal(expected, false));
  await crash.start();
  await crash.exited();
  assert.deepEqual(causes, ['planned', 'unexpected']);
});

function attempt(requestId: string, phase: 'warmup' | 'load', outcome: 'ok' | 'fail' | 'unknown' = 'ok'): RequestAttempt {
  return { requestId, counterUuid: `c-${requestId}`, attempt: 1, outcome, phase, startMs: 0, endMs: 1, via: 'http' };
}

test('chaos: warm-up requests counted apart so requests + warm-up = ok + fail + unknown; endToEnd explained', () => {
  const c = chaosMatrix('quick')[0]!;
  const history = [attempt('w1', 'warmup'), attempt('w2', 'warmup'), attempt('a', 'load'), attempt('b', 'load'), attempt('c', 'load', 'fail')];
  const messages = ['w1', 'w2', 'a', 'b'].map((id, i) => ({ offset: i + 1, requestId: id, counterUuid: `c-${id}`, acked: true }));
  const counters = new Map(['w1', 'w2', 'a', 'b'].map((id) => [`c-${id}`, 1]));
  const verdict = check(history, { messages, counters });
  assert.equal(verdict.verdict, 'valid', verdict.reasons.join('; '));
  const r = { case: { ...c, requests: 3, raw: undefined }, engine: 'mariadb', verdict, expected: 'valid', passed: true, why: 'valid', faults: [], skippedFaults: [], history, timeline: [], phases: [], quiesced: true, drainMsgsPerS: 1, drainDuringFaultsMsgsPerS: undefined, durationMs: 12_000, databaseVersion: 'x', poisoned: 0, gapsPassed: undefined, gapsPassedByTimeout: undefined, error: undefined } as CaseResult;
  assert.equal(warmupRequests(r), 2);
  const v = verdict.requests;
  assert.equal(v.ok + v.fail + v.unknown, r.case.requests + warmupRequests(r));
  const shown = presentVerdict(verdict) as { endToEnd: { checked: boolean; why?: string; holds?: boolean } };
  assert.equal(shown.endToEnd.checked, false);
  assert.equal(shown.endToEnd.holds, undefined, 'no bare holds: false beside a valid verdict');
  assert.match(shown.endToEnd.why ?? '', /not checked/);
  assert.match(caseLine(r, 1, 8), /^\[1\/8\] \S+: PASS \(expected valid, verdict valid\), requests ok\/fail\/unknown 4\/1\/0 \(warm-up 2 of them\), lost 0, dup 0, anomalies: none, no faults, 12 s$/);
});

test('chaos: the quick profile is estimated at under 3 minutes, as --help says', () => {
  const total = chaosMatrix('quick').reduce((sum, c) => sum + estimateCaseSeconds(c), 0);
  assert.ok(total > 60 && total < 180, `quick ${total} s`);
});

test('the bar on a terminal: title, unit, the step named, the plan\'s time left, finished lines above it', async () => {
  const { Writable } = await import('node:stream');
  let written = '';
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        written += chunk.toString();
        done();
      },
    }),
    { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
  ) as unknown as NodeJS.WriteStream;
  let nowMs = 0;
  const { createProgress } = await import('../src/bench/progress.ts');
  const progress = createProgress({ title: 'chaos', unit: 'cases', total: 3, ci: false, estimateS: (i) => [60, 120, 30][i]!, stream, now: () => nowMs });
  progress.update(0, 'case eo-offset-b1000: load');
  nowMs = 20_000;
  progress.log('[1/3] eo-offset-b1000: PASS');
  progress.update(1, 'case ctl-after-commit: setup');
  progress.stop();
  assert.match(written, /chaos \[.*\] 0\/3 cases \| .* elapsed, ~3 min 30 s left \(plan\) \| case eo-offset-b1000: load/);
  assert.match(written, /chaos \[.*\] 0\/3 cases \| .* elapsed, ~3 min 10 s left \(plan\)/, 'counts down within a step');
  assert.match(written, /\[1\/3\] eo-offset-b1000: PASS\n/);
  assert.match(written, /1\/3 cases \| .* ~2 min 30 s left \(plan\) \| case ctl-after-commit: setup/);
  assert.doesNotMatch(written, /bench|points/);
});

test('chaos: a case the run was stopped in is "interrupted" and not passed, whatever its checker said', () => {
  const c = chaosMatrix('quick')[0]!;
  const r = { engine: 'mariadb', case: c, verdict: undefined, expected: 'valid', passed: false, why: 'interrupted: the run was stopped during this case (valid)', faults: [], skippedFaults: [], history: [], timeline: [], phases: [], quiesced: true, drainMsgsPerS: undefined, drainDuringFaultsMsgsPerS: undefined, durationMs: 1_000, databaseVersion: 'x', poisoned: 0, gapsPassed: undefined, gapsPassedByTimeout: undefined, error: undefined, interrupted: true } as CaseResult;
  assert.equal(csvRow(r, 'quick').verdict, 'interrupted');
  assert.match(caseLine(r, 1, 8), /FAIL \(expected valid, verdict interrupted\)/);
});
