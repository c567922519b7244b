// One tiny end-to-end bench run (seconds) on a private database with the real server and worker: the CSV has
// every column, every row's verdict is computed, and a deliberately lossy configuration (ack before commit,
// worker crashed between the two commits by a failpoint) is reported as not valid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readEnvironment } from '../src/config.ts';
import { runBench } from '../src/scenarios/throughput/runBench.ts';
import { profileOptions, type SweepOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { CSV_COLUMNS } from '../src/scenarios/throughput/results.ts';

test('tiny bench run: columns, verdicts, and the lossy control reported as not valid', { timeout: 240_000 }, async () => {
  const env = readEnvironment();
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-bench-test-'));
  const base = profileOptions('quick');
  const sweep: SweepOptions = {
    ...base,
    grid: { ...base.grid, batchSizes: [100], ackModes: ['transactional', 'before-commit'] },
    include: { httpCeiling: true, sqlCeiling: true, baseline: false, drain: true, peers: false, endToEnd: true },
    backlogMessages: 3_000,
    counters: 50,
    drainTimeoutS: 10,
    endToEndDurationS: 2,
    endToEndConnections: [10],
    httpCeilingDurationS: 1,
    // Fires only in the before-commit point: its 2nd batch is acked, then the worker dies before the effects.
    workerFailpoints: ['consume-between-commits=2'],
  };
  try {
    const lines: string[] = [];
    const run = await runBench({
      sweep,
      system: { databaseUrl: undefined, mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath, handleSignals: false },
      resultsRoot: root,
      ci: true,
      out: (line) => lines.push(line),
    });
    assert.equal(run.interrupted, false);
    const csv = await readFile(path.join(run.dir, 'results.csv'), 'utf8');
    const [header, ...body] = csv.trim().split('\n');
    assert.equal(header, CSV_COLUMNS.join(','));
    assert.equal(body.length, 5, csv);
    const byKind = (kind: string, ack?: string) => run.rows.find((r) => r.kind === kind && (ack === undefined || r.ack_mode === ack));
    for (const row of run.rows) {
      assert.ok(['valid', 'invalid', 'n/a'].includes(String(row.verdict)), `verdict computed for ${row.point}: ${row.verdict} (${row.note})`);
    }
    const good = byKind('drain', 'transactional')!;
    assert.equal(good.verdict, 'valid', String(good.note));
    assert.equal(good.drained, true);
    assert.equal(good.acked_offset, good.max_offset);
    assert.ok(Number(good.drain_msgs_per_s) > 0);
    const lossy = byKind('drain', 'before-commit')!;
    assert.equal(lossy.verdict, 'invalid', `lossy control came out ${lossy.verdict}: ${lossy.note}`);
    assert.equal(lossy.lost, 100, 'exactly the crashed batch is lost');
    assert.match(String(lossy.note), /exited/);
    const e2e = byKind('end-to-end')!;
    assert.equal(e2e.verdict, 'valid', String(e2e.note));
    // CPU per message: every process of an end-to-end point, the worker and the database of a drain.
    for (const c of ['cpu_server_us_per_msg', 'cpu_worker_us_per_msg', 'cpu_db_us_per_msg', 'cpu_loadgen_us_per_msg']) {
      assert.ok(Number(e2e[c]) > 0, `end to end ${c} = ${e2e[c]}`);
    }
    for (const c of ['cpu_worker_us_per_msg', 'cpu_db_us_per_msg']) assert.ok(Number(good[c]) > 0, `drain ${c} = ${good[c]}`);
    assert.equal(good.cpu_server_us_per_msg, undefined, 'a drain has no server');
    // A drain has no lag (its messages were all published before it began): the column stays empty.
    assert.equal(good.lag_p99_ms, undefined);
    // An offset drain is paired with the SQL ceiling measured on its own backlog just before it.
    assert.ok(Number(good.paired_sql_ceiling_msgs_per_s) > 0, `paired ceiling ${good.paired_sql_ceiling_msgs_per_s}`);
    assert.ok(Number(good.ratio_vs_sql_ceiling) > 0);
    assert.ok(e2e.lag_p99_ms !== undefined);
    assert.ok(Number(e2e.publish_req_per_s) > 0 && Number(e2e.requests_2xx) > 0);
    assert.ok(Number(byKind('http-ceiling')!.publish_req_per_s) > 0);
    assert.ok(Number(byKind('sql-ceiling')!.drain_msgs_per_s) > 0);
    assert.match(run.summary, /NOT VALID: drain offset batch 100 READ COMMITTED before-commit/);
    for (const f of ['options.json', 'drain.svg', 'drain.png', 'end-to-end.svg', 'end-to-end.png', 'index.html']) {
      assert.ok((await stat(path.join(run.dir, f))).size > 0, `${f} written`);
    }
    assert.equal(await readlink(path.join(root, 'bench', 'latest')), path.basename(run.dir));
    const options = JSON.parse(await readFile(path.join(run.dir, 'options.json'), 'utf8')) as {
      databases: { mariadb: { settings: { innodb_flush_log_at_trx_commit: number } } };
      versions: { node: string };
    };
    assert.equal(options.databases.mariadb.settings.innodb_flush_log_at_trx_commit, 1);
    assert.ok(run.rows.every((r) => r.engine === 'mariadb' && /MariaDB|^\d/.test(String(r.server_version))), 'every row names its engine and server version');
    assert.equal(options.versions.node, process.version);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
