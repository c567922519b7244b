// Retention on PostgreSQL through the engine: offset mode removes what every group's (transaction_id, offset)
// position has passed and nothing after it, queue mode removes acked rows only, old dedup ids go; and a worker
// pruning every second while publishers run still counts every message once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { DEFAULT_PRUNE_OPTIONS, prune } from '../src/system/prune.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../src/system/worker.ts';
import { countPgMessages } from '../src/system/sql/postgres/messagesTable.ts';
import { countPgQueue } from '../src/system/sql/postgres/queueTable.ts';
import { claimPgRequestIds, countPgDedupRows } from '../src/system/sql/postgres/dedupTable.ts';
import { eventually } from './contract/pubsubContract.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';

describe('prune on PostgreSQL', () => {
  const { server, db } = usePrivatePostgresDatabase();

  const counter = randomUUID();
  const messages = (n: number) => Array.from({ length: n }, () => ({ uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} }));

  async function consumeAll(topic: string, mode: TopicMode, expected: number): Promise<void> {
    const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, topic, mode, pollIntervalMs: 5, log: () => undefined });
    try {
      await eventually('the worker to drain', async () => {
        const c = await db().engine.selectConsumption(db().executor(), { mode, topic, consumerGroup: 'counter' });
        return c.drained && c.published === expected;
      });
    } finally {
      await worker.close();
    }
  }

  test('offset mode: removes exactly what the group has passed, in batches; rows after the position stay', async () => {
    const topic = `pr_${randomUUID().slice(0, 8)}`;
    const publisher = new SqlPublisher(db().executor(), db().engine, 'offset', true);
    await publisher.publish(topic, messages(50));
    await consumeAll(topic, 'offset', 50);
    await publisher.publish(topic, messages(7));
    const result = await prune(db(), { ...DEFAULT_PRUNE_OPTIONS, topic, mode: 'offset', batchSize: 20, restRatio: 0 });
    assert.equal(result.messagesRemoved, 50);
    assert.equal(result.groups, 1);
    assert.equal(result.batches, 3, '20 + 20 + 10');
    assert.equal(await countPgMessages(db().executor(), topic), 7, 'the unconsumed messages stay');
    assert.equal(result.dedupRowsRemoved, 0, 'no dedup table: nothing to prune, no error');
  });

  test('a topic no server or worker has created yet: nothing to prune, not an error', async () => {
    const topic = `pn_${randomUUID().slice(0, 8)}`;
    const offset = await prune(db(), { ...DEFAULT_PRUNE_OPTIONS, topic, mode: 'offset' });
    assert.deepEqual([offset.messagesRemoved, offset.groups, offset.dedupRowsRemoved], [0, 0, 0]);
    const queue = await prune(db(), { ...DEFAULT_PRUNE_OPTIONS, topic, mode: 'queue' });
    assert.deepEqual([queue.messagesRemoved, queue.dedupRowsRemoved], [0, 0]);
  });

  test('queue mode: removes acked rows only; dedup ids older than the window go', async () => {
    const topic = `pq_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode: 'queue', dedup: true });
    const publisher = new SqlPublisher(db().executor(), db().engine, 'queue');
    await publisher.publish(topic, messages(30));
    await consumeAll(topic, 'queue', 30);
    await publisher.publish(topic, messages(4));
    await db().transaction('READ COMMITTED', (tx) => claimPgRequestIds(tx, topic, [{ requestId: 'old', counterUuid: counter }]));
    await new Promise((r) => setTimeout(r, 1_200));
    const result = await prune(db(), { ...DEFAULT_PRUNE_OPTIONS, topic, mode: 'queue', batchSize: 8, dedupWindowS: 1, restRatio: 0 });
    assert.equal(result.messagesRemoved, 30);
    assert.deepEqual(await countPgQueue(db().executor(), topic), { total: 4, acked: 0 });
    assert.equal(result.dedupRowsRemoved, 1);
    assert.equal(await countPgDedupRows(db().executor(), topic), 0);
  });

  test('a worker pruning every second while 4 publishers run counts every message once', async () => {
    const topic = `pw_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup: false });
    await db().executor().query('TRUNCATE "counter"');
    const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, topic, pollIntervalMs: 5, pruneEveryS: 1, log: () => undefined });
    let published = 0;
    try {
      const publisher = new SqlPublisher(db().executor(), db().engine, 'offset');
      const until = Date.now() + 3_500;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (Date.now() < until) {
            await publisher.publish(topic, messages(10));
            published += 10;
          }
        }),
      );
      await eventually('every message counted', async () => (await db().engine.selectCounterValue(db().executor(), counter)) === published, 30_000);
      await new Promise((r) => setTimeout(r, 1_500));
      assert.ok((worker.pruned?.messagesRemoved ?? 0) > 0, `the periodic prune removed messages (${JSON.stringify(worker.pruned)})`);
      assert.equal(worker.pruned?.failures, 0);
    } finally {
      await worker.close();
    }
    assert.equal(await db().engine.selectCounterValue(db().executor(), counter), published, 'still exactly once after the prunes');
  });
});
