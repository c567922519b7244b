// The peer runner on real servers with tiny backlogs: a bench run on a private PostgreSQL with our drain and
// every peer point (each row with its version, settings, rate, same-run ratio and a clean check); the check of a
// peer's counters per counter (a control: an increment moved between counters keeps the total and is caught);
// graphile-worker's recovery of a SIGKILLed worker's jobs (a control: without it they stay locked); and the
// worker-kill drains of ours and of pg-boss's transactional worker, each effect applied once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readEnvironment } from '../src/config.ts';
import { runBench } from '../src/scenarios/throughput/runBench.ts';
import { profileOptions, type SweepOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { peerVersion } from '../src/bench/peers/peerSpec.ts';
import { addToPgCounters } from '../src/system/sql/postgres/counterTable.ts';
import { checkPeerDrain, peerQueueOf, peerWorkerChild, preparePeerBacklog, startPeerSampler, type PeerDrainTarget } from '../src/scenarios/throughput/peerDrain.ts';
import { drainKillCases } from '../src/scenarios/chaos/drainKill.ts';
import { runDrainKillCase } from '../src/scenarios/chaos/runDrainKill.ts';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';

const env = readEnvironment();

test('a bench run on PostgreSQL measures every peer beside our drain: version, settings, rate, same-run ratio, a clean check', { timeout: 300_000 }, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-peers-bench-test-'));
  const base = profileOptions('standard');
  const sweep: SweepOptions = {
    ...base,
    grid: { ...base.grid, batchSizes: [1000], isolations: ['READ COMMITTED'], modes: ['offset'] },
    include: { httpCeiling: false, sqlCeiling: false, baseline: false, drain: true, peers: true, endToEnd: false },
    // Enough for a few of the peer sampler's 500 ms readings even at the fastest peer's rate here (~13,000 jobs/s).
    backlogMessages: 20_000,
    counters: 40,
    drainTimeoutS: 30,
    peerWindowS: 60,
  };
  try {
    const lines: string[] = [];
    const run = await runBench({ sweep, engines: ['postgres'], system: { postgresBinDir: env.postgresBinDir, handleSignals: false }, resultsRoot: root, ci: true, out: (l) => lines.push(l) });
    assert.equal(run.interrupted, false);
    assert.deepEqual(run.rows.map((r) => r.point), [
      'drain offset batch 1000 READ COMMITTED',
      'peer graphile-worker noop',
      'peer graphile-worker counter',
      'peer pg-boss noop',
      'peer pg-boss counter',
      'peer pg-boss counter-in-completion',
    ]);
    const drainRate = Number(run.rows[0]!.drain_msgs_per_s);
    for (const r of run.rows.slice(1)) {
      const what = `${r.point}: ${r.note ?? ''}`;
      assert.equal(r.peer_version, peerVersion(r.peer as 'pg-boss'), what);
      assert.ok(String(r.peer_settings).length > 0, what);
      assert.equal(r.drained, true, what);
      assert.equal(r.messages_consumed, 20_000, `${what}: every job completed, counted from the peer's tables`);
      assert.ok(Number(r.drain_msgs_per_s) > 0, what);
      assert.ok(Math.abs(Number(r.ratio_drain_vs_peer) - drainRate / Number(r.drain_msgs_per_s)) < 0.01, `${what}: our drain's rate over the peer's, same run`);
      assert.ok(Number(r.cpu_worker_us_per_msg) > 0 && Number(r.cpu_db_us_per_msg) > 0, `${what}: the peer's process and the database, read apart`);
      assert.equal(r.verdict, String(r.point).endsWith('noop') ? 'n/a' : 'valid', what);
      // The checker's count of the counters: one per completed job for a counter task, none for a no-op.
      assert.equal(r.counter_total, r.verdict === 'valid' ? 20_000 : 0, what);
      if (r.verdict === 'valid') assert.deepEqual([r.lost, r.duplicated], [0, 0], what);
    }
    assert.match(lines.join('\n'), /^peers \(same run; ratios first/m, 'the terminal summary has the peers table');
    const page = await readFile(path.join(run.dir, 'index.html'), 'utf8');
    assert.match(page, /Peers, same run: our drain against graphile-worker and pg-boss/);
    assert.match(page, /<div class="beside"><figure><img src="drain\.png"/, 'the peers table beside the drain chart');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

describe('peers on a private PostgreSQL', () => {
  const pg = usePrivatePostgresDatabase();

  function target(spec: PeerDrainTarget['spec'], jobs: number, counters: readonly string[]): PeerDrainTarget {
    const db = pg.db();
    return { spec, databaseUrl: pg.server().url, db: db.executor(), database: db, sql: db.engine, topic: 'counter', counters, jobs };
  }

  const timeouts = { startTimeoutMs: 60_000, stopTimeoutMs: 15_000 };

  test('a peer\'s counters are checked counter by counter: an increment moved to another counter keeps the total and is caught', { timeout: 120_000 }, async () => {
    const counters = Array.from({ length: 20 }, (_, i) => `counter-${String(i).padStart(2, '0')}`);
    const t = target({ peer: 'graphile-worker', task: 'counter' }, 600, counters);
    const enqueued = await preparePeerBacklog(t);
    const sampler = await startPeerSampler(t, 50);
    const worker = peerWorkerChild(t, timeouts);
    try {
      await worker.start();
      assert.ok(await sampler.waitFor((s) => s.progress >= 600, 60_000), 'the peer completed its backlog');
    } finally {
      await sampler.stop();
      await worker.stop();
    }
    const clean = await checkPeerDrain(t, enqueued);
    assert.equal(clean.jobsCompleted, 600);
    assert.deepEqual([clean.counters?.verdict, clean.counters?.lost, clean.counters?.duplicated], ['valid', 0, 0]);
    // One job's effect applied to the wrong counter: the sums still agree (a check of totals would pass).
    await addToPgCounters(t.db, new Map([['counter-00', -1], ['counter-01', 1]]));
    const moved = await checkPeerDrain(t, enqueued);
    assert.equal(moved.counterTotal, clean.counterTotal);
    assert.deepEqual([moved.counters?.verdict, moved.counters?.lost, moved.counters?.duplicated], ['invalid', 1, 1]);
    await peerQueueOf(t).clear(t.databaseUrl, t.db);
  });

  test('graphile-worker: a SIGKILLed worker\'s jobs stay locked until force-unlocked (its recovery), then the drain completes', { timeout: 180_000 }, async () => {
    const counters = Array.from({ length: 20 }, (_, i) => `counter-${i}`);
    const jobs = 3_000;
    const t = target({ peer: 'graphile-worker', task: 'counter' }, jobs, counters);
    const queue = peerQueueOf(t);
    const enqueued = await preparePeerBacklog(t);
    const sampler = await startPeerSampler(t, 20);
    const worker = peerWorkerChild(t, timeouts);
    const locked = async () => Number((await t.db.query<{ n: string }[]>('SELECT count(*) AS n FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL'))[0]!.n);
    try {
      await worker.start();
      assert.ok(await sampler.waitFor((s) => s.progress > 0, 60_000));
      await worker.kill('SIGKILL');
      const heldByDead = await locked();
      assert.ok(heldByDead > 0, 'the dead worker held jobs (its local queue)');
      // Control: a new worker completes everything else and stops short by exactly the dead worker's jobs.
      await worker.start();
      assert.ok(await sampler.waitFor((s) => s.progress >= jobs - heldByDead, 60_000));
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal((await sampler.latest()).progress, jobs - heldByDead, 'the locked jobs were not run');
      await worker.stop();
      assert.equal(await queue.recoverAfterKill(t.databaseUrl, t.db), heldByDead);
      await worker.start();
      assert.ok(await sampler.waitFor((s) => s.progress >= jobs, 60_000), 'after the force unlock every job completed');
    } finally {
      await sampler.stop();
      await worker.stop();
    }
    const check = await checkPeerDrain(t, enqueued);
    assert.equal(check.jobsCompleted, jobs);
    assert.equal(check.counters?.lost, 0, 'at-least-once: nothing lost');
    await queue.clear(t.databaseUrl, t.db);
  });
});

test('worker-kill drains on a private PostgreSQL: ours and pg-boss\'s transactional worker apply every effect once', { timeout: 300_000 }, async () => {
  const cases = drainKillCases('quick', 'postgres').filter((c) => c.name === 'kill-drain-ours' || c.name === 'kill-drain-pg-boss-in-completion');
  for (const c of cases) {
    const r = await runDrainKillCase({ ...c, jobs: 6_000 }, { postgresBinDir: env.postgresBinDir });
    assert.equal(r.error, undefined, `${c.name}: ${r.why}`);
    assert.equal(r.kills.length, 1, `${c.name}: the kill landed mid-drain`);
    assert.deepEqual([r.passed, r.jobsCompleted, r.lost, r.duplicated], [true, 6_000, 0, 0], `${c.name}: ${r.why}`);
  }
});
