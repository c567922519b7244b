// Poison messages on PostgreSQL: a message the handler keeps rejecting is moved to eob_poison_<topic> in the
// transaction that acks its batch, after the set number of failed deliveries, in both modes; the good messages
// around it are counted once, and the group moves on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { openDatabase } from '../src/system/db/openDatabase.ts';
import type { Database } from '../src/system/db/database.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../src/system/worker.ts';
import { countPgPoisoned } from '../src/system/sql/postgres/poison.ts';
import { eventually } from './contract/pubsubContract.ts';

describe('poison messages on PostgreSQL', () => {
  const server = usePrivatePostgres();
  let db: Database;
  before(() => {
    db = openDatabase({ url: server().url, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'test' });
  });
  after(async () => {
    await db.end();
  });

  for (const mode of ['offset', 'queue'] as const) {
    test(`${mode} mode: one bad payload among 40 is moved aside after 2 failed deliveries; the 40 are counted once`, async () => {
      const topic = `poison_${randomUUID().slice(0, 8)}`;
      const counter = randomUUID();
      await db.engine.ensureSchema(db.executor(), { topic, mode, dedup: false });
      await db.executor().query('TRUNCATE "counter"');
      const publisher = new SqlPublisher(db.executor(), db.engine, mode);
      const good = (n: number) => Array.from({ length: n }, () => ({ uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} }));
      await publisher.publish(topic, good(20));
      await publisher.publish(topic, [{ uuid: randomUUID(), payload: { counter_uuid: 'not-a-uuid' }, metadata: {} }]);
      await publisher.publish(topic, good(20));
      const lines: string[] = [];
      const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, mysqlUrl: server().url, topic, mode, batchSize: 10, poisonAfterFailures: 2, pollIntervalMs: 5, log: (l) => lines.push(l) });
      try {
        await eventually('the good messages counted and the bad one poisoned', async () =>
          (await db.engine.selectCounterValue(db.executor(), counter)) === 40 && (await countPgPoisoned(db.executor(), topic)) === 1,
        );
        const c = await db.engine.selectConsumption(db.executor(), { mode, topic, consumerGroup: 'counter' });
        assert.equal(c.drained, true, 'the group moved past the poison');
        assert.equal(worker.subscription.stats.poisoned, 1);
        assert.ok(lines.some((l) => l.includes('moved to "eob_poison_')), lines.join('\n'));
      } finally {
        await worker.close();
      }
      assert.equal(await db.engine.selectCounterValue(db.executor(), counter), 40);
    });
  }
});
