// A consumer that has caught up (its batch did not fill) sleeps caughtUpPauseMs before it reads again, so
// messages arriving one by one are consumed in fewer, larger batches; one that is behind reads full batches
// without pausing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { testPool } from './support/contractTargets.ts';
import { executorOf } from '../src/system/db/mariadb/pool.ts';
import { insertMessages } from '../src/system/sql/mariadb/messagesTable.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import type { Message } from '../src/system/pubsub/types.ts';

const db = usePrivateDatabase();

/** Publishes `n` messages 10 ms apart while a consumer runs; returns its batches (sizes) once all are handled. */
async function batchesFor(caughtUpPauseMs: number, n: number): Promise<number[]> {
  const pool = testPool(db().url, 4);
  const topic = `pause_${randomUUID().slice(0, 8)}`;
  const run = executorOf(pool);
  await ensureSchema(run, { topic, topicSchema: 'offset', dedup: false });
  const sizes: number[] = [];
  const handler = async (messages: readonly Message[]): Promise<void> => {
    sizes.push(messages.length);
  };
  const sub = await subscribeOffset(pool, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, topic, batchSize: 100, pollIntervalMs: 2, caughtUpPauseMs, handler });
  try {
    for (let i = 0; i < n; i += 1) {
      await insertMessages(run, topic, [{ uuid: randomUUID(), payload: { counter_uuid: randomUUID() }, metadata: {} }]);
      await sleep(10);
    }
    const deadline = Date.now() + 10_000;
    while (sizes.reduce((a, b) => a + b, 0) < n && Date.now() < deadline) await sleep(10);
    return sizes;
  } finally {
    await sub.close();
    await pool.end();
  }
}

describe('caughtUpPauseMs', () => {
  test('messages arriving every 10 ms: one batch each without the pause, a few large batches with a 200 ms pause', async () => {
    const without = await batchesFor(0, 20);
    const withPause = await batchesFor(200, 20);
    assert.equal(without.reduce((a, b) => a + b, 0), 20);
    assert.equal(withPause.reduce((a, b) => a + b, 0), 20);
    assert.ok(without.length >= 10, `without the pause: ${JSON.stringify(without)}`);
    assert.ok(withPause.length <= 5, `with a 200 ms pause: ${JSON.stringify(withPause)}`);
  });
});
