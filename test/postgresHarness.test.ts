// The harness on PostgreSQL, end to end and short: a tiny bench run with --engine postgres (SQL ceiling, a
// drain and an end-to-end point, each checked, every row naming its engine and server version), an end-to-end
// point on a topic never analyzed, which must have statistics taken before its load wrote a row, and one chaos
// case on a private PostgreSQL whose faults are PostgreSQL's own: pg_terminate_backend of the worker's sessions
// and a SIGKILL of the postmaster with its backends (WAL crash recovery), under HTTP and raw SQL publishers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readEnvironment } from '../src/config.ts';
import { runBench } from '../src/scenarios/throughput/runBench.ts';
import { profileOptions, type SweepOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { CSV_COLUMNS } from '../src/scenarios/throughput/results.ts';
import { planPoints } from '../src/scenarios/throughput/plan.ts';
import { runPoint } from '../src/scenarios/throughput/points.ts';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { pgMessagesTable } from '../src/system/sql/postgres/identifiers.ts';
import { runCase } from '../src/scenarios/chaos/runCase.ts';
import { chaosMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';

const env = readEnvironment();

test('tiny bench on PostgreSQL: ceiling, drain and end to end, all valid, rows tagged postgres', { timeout: 120_000 }, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-pg-bench-test-'));
  const base = profileOptions('quick');
  const sweep: SweepOptions = {
    ...base,
    grid: { ...base.grid, batchSizes: [100] },
    include: { httpCeiling: false, sqlCeiling: true, baseline: false, drain: true, peers: false, endToEnd: true },
    backlogMessages: 2_000,
    counters: 50,
    drainTimeoutS: 15,
    endToEndDurationS: 2,
    endToEndConnections: [8],
  };
  try {
    const run = await runBench({
      sweep,
      engines: ['postgres'],
      system: { postgresBinDir: env.postgresBinDir, handleSignals: false },
      resultsRoot: root,
      ci: true,
      out: () => undefined,
    });
    assert.equal(run.interrupted, false);
    const header = (await readFile(path.join(run.dir, 'results.csv'), 'utf8')).split('\n')[0];
    assert.equal(header, CSV_COLUMNS.join(','));
    assert.deepEqual(run.rows.map((r) => r.kind), ['sql-ceiling', 'drain', 'end-to-end']);
    for (const r of run.rows) {
      assert.equal(r.engine, 'postgres');
      assert.match(String(r.server_version), /^\d+\.\d+/);
      assert.equal(r.verdict, 'valid', `${r.point}: ${r.note}`);
      assert.ok(Number(r.drain_msgs_per_s) > 0, `${r.point} measured a drain rate`);
    }
    const drain = run.rows.find((r) => r.kind === 'drain')!;
    assert.equal(drain.messages_consumed, 2_000, 'the whole backlog consumed, counted by the database');
    assert.equal(drain.gap_handling, 'contiguous');
    assert.ok(Number(drain.ratio_vs_sql_ceiling) > 0, "compared with PostgreSQL's own SQL ceiling");
    assert.ok(Number(drain.paired_sql_ceiling_msgs_per_s) > 0, 'a ceiling paired with the drain, measured seconds before it');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("an end-to-end point on PostgreSQL primes the topic's statistics before its load", { timeout: 120_000 }, async () => {
  const base = profileOptions('quick');
  const sweep: SweepOptions = {
    ...base,
    include: { httpCeiling: false, sqlCeiling: false, baseline: false, drain: false, peers: false, endToEnd: true },
    counters: 20,
    endToEndDurationS: 1,
    endToEndConnections: [4],
  };
  const point = planPoints(sweep, 'postgres').find((p) => p.kind === 'end-to-end' && p.mode === 'offset');
  assert.ok(point !== undefined);
  const sut = await SystemUnderTest.start({ engine: 'postgres', postgresBinDir: env.postgresBinDir, handleSignals: false });
  try {
    // The topic's table exists but was never analyzed (a new server, `eob bench --only end-to-end`), and
    // autovacuum stays off it: whatever statistics it has after the point, the point took.
    const table = pgMessagesTable(sweep.topic);
    await sut.sql.ensureSchema(sut.db, { topic: sweep.topic, mode: 'offset', dedup: false });
    await sut.db.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    const result = await runPoint({ sut, options: sweep, signal: undefined, log: () => undefined }, point);
    assert.equal(result.check?.verdict, 'valid', result.note);
    assert.ok((result.messagesPublished ?? 0) > 0, 'the load wrote rows');
    const stats = await sut.db.query<{ mcv: string | null; bounds: string | null }[]>(
      `SELECT "most_common_vals"::text AS "mcv", "histogram_bounds"::text AS "bounds" FROM "pg_stats"
        WHERE "schemaname" = current_schema() AND "tablename" = $1 AND "attname" = 'transaction_id'`,
      [table.slice(1, -1)],
    );
    assert.equal(stats.length, 1, 'the topic table has statistics of transaction_id');
    const sampled = [stats[0]!.mcv, stats[0]!.bounds].flatMap((t) => (t === null ? [] : t.replace(/[{}]/g, '').split(',').map(BigInt)));
    assert.ok(sampled.length > 0, JSON.stringify(stats));
    const [loaded] = await sut.db.query<{ first: string }[]>(`SELECT MIN("transaction_id")::text AS "first" FROM ${table}`);
    const newestSampled = sampled.reduce((a, b) => (a > b ? a : b));
    // Every id the statistics saw is below the load's first: they were taken before the load wrote a row.
    assert.ok(newestSampled < BigInt(loaded!.first), `statistics saw transaction ${newestSampled}, the load began at ${loaded!.first}`);
  } finally {
    await sut.close();
  }
});

test('chaos on PostgreSQL: conn-kill (pg_terminate_backend) and db-kill (postmaster SIGKILL) under load stay valid', { timeout: 120_000 }, async () => {
  const base = chaosMatrix('quick', undefined, 'postgres').find((c) => c.name === 'eo-queue-b100');
  assert.ok(base !== undefined);
  const c = { ...base, faults: ['conn-kill', 'db-kill'] as const, perFault: 1, requests: 400, raw: { publishers: 4, requests: 100 } };
  const r = await runCase(c, { engine: 'postgres', databaseUrl: undefined, postgresBinDir: env.postgresBinDir });
  assert.equal(r.error, undefined);
  assert.equal(r.engine, 'postgres');
  assert.match(String(r.databaseVersion), /^\d+\.\d+/);
  const connKill = r.faults.find((f) => f.fault === 'conn-kill');
  const ended = Number(/^pg_terminate_backend (\d+) worker session/.exec(String(connKill?.detail))?.[1]);
  assert.ok(ended >= 1, `conn-kill ended the worker's sessions (${connKill?.detail})`);
  for (const f of r.faults) assert.ok(f.recoveryMs !== undefined, `${f.fault} recovered (${f.detail})`);
  assert.ok(r.verdict !== undefined);
  assert.equal(r.verdict.verdict, 'valid', r.verdict.reasons.join('; '));
  assert.equal(r.verdict.messages.pending, 0);
  assert.ok(r.history.some((a) => a.via === 'sql' && a.outcome === 'ok'), 'raw INSERTs committed on PostgreSQL');
});
