// The bench's progress sampler without a database (an engine and an executor that answer from here): the first
// reading, the baseline that counts every row on PostgreSQL, is taken before startSampler resolves, so a point's
// timed window, opened after it, never contains it; on both engines, and when the first poll fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSampler, type SamplerOptions } from '../src/bench/sampler.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import type { EngineName } from '../src/system/sql/engine.ts';
import { postgresEngine } from '../src/system/sql/postgres/engine.ts';

/** How long the fake's first reading takes: the baseline's full count, long against the readings after it. */
const BASELINE_MS = 40;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A sampler's target on `engine`, answered here: MariaDB through selectProgress, PostgreSQL through the poller's
 * one statement (pgProgressReader) on `db`. The first reading takes BASELINE_MS and finds 400,000 rows, none
 * consumed; later readings are immediate. `firstEndedAt` is when the first reading returned.
 */
function fakeTarget(engine: EngineName, failFirst = false) {
  let readings = 0;
  const state = { firstEndedAt: Number.NaN };
  const reading = async (): Promise<number> => {
    readings += 1;
    const n = readings;
    if (n === 1) {
      await sleep(BASELINE_MS);
      state.firstEndedAt = performance.now();
      if (failFirst) throw new Error('connection refused');
    }
    return n;
  };
  const db: SqlExecutor = {
    query: async <T>(): Promise<T> => {
      if (engine !== 'postgres') throw new Error('MariaDB reads through selectProgress here');
      await reading();
      const row = { bound: '1000', tx: '0', off: '0', newly: readings === 1 ? '400000' : '0', newly_upto: '0', passed: '0', open: '0', open_upto: '0', lag_ms: null };
      return [row] as T;
    },
  };
  const selectProgress = async () => {
    await reading();
    return { progress: 0, published: 400_000, lagMs: 0 };
  };
  const options: SamplerOptions = {
    // PostgreSQL's poller is the engine's own, over the fake executor's rows.
    engine: { name: engine, selectProgress, progressReader: engine === 'postgres' ? postgresEngine.progressReader : () => () => selectProgress() },
    mode: 'offset',
    topic: 't',
    consumerGroup: 'g',
    intervalMs: 10,
  };
  return { db, options, state, readings: () => readings };
}

for (const engine of ['mariadb', 'postgres'] as const) {
  test(`${engine}: the sampler's first reading ends before startSampler resolves, so a window opened after it does not contain it`, async () => {
    const t = fakeTarget(engine);
    const sampler = await startSampler(t.db, t.options);
    const windowStart = performance.now();
    try {
      assert.ok(t.state.firstEndedAt <= windowStart, 'the first reading was still running when the window opened');
      assert.deepEqual(sampler.samples[0] && { progress: sampler.samples[0].progress, published: sampler.samples[0].published }, { progress: 0, published: 400_000 }, 'the baseline is the first sample');
      assert.ok(sampler.samples[0]!.atMs < windowStart);
      // Polling goes on after the baseline.
      assert.equal(await sampler.waitFor(() => t.readings() >= 3, 2_000), true);
      assert.equal((await sampler.latest()).published, 400_000);
    } finally {
      await sampler.stop();
    }
  });
}

test('a first poll that fails still resolves startSampler after it; the next reading is the baseline', async () => {
  const t = fakeTarget('mariadb', true);
  const sampler = await startSampler(t.db, t.options);
  const windowStart = performance.now();
  try {
    assert.ok(t.state.firstEndedAt <= windowStart);
    assert.equal(sampler.samples.length, 0, 'the failed poll left no sample');
    assert.equal(await sampler.waitFor((s) => s.published === 400_000, 2_000), true);
  } finally {
    await sampler.stop();
  }
});
