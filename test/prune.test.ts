// Retention against a private MariaDB: `eob prune` removes exactly the messages every group has acked (queue
// mode: the acked rows) and the dedup ids older than the window, nothing else; pruning while publishers and
// consumers run loses and repeats nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { testPool } from './support/contractTargets.ts';
import { executorOf, type Pool } from '../src/system/db/mariadb/pool.ts';
import type { OutgoingMessage, SqlExecutor, Subscription } from '../src/system/pubsub/types.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_PRUNE_OPTIONS, prune, startPeriodicPrune } from '../src/system/prune.ts';
import { insertMessages, insertMessagesStatement, selectMaxOffset, writeMessages } from '../src/system/sql/mariadb/messagesTable.ts';
import { createOffsetsTable, selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { countQueue, markAcked } from '../src/system/sql/mariadb/queueTable.ts';
import { createPublishDedupTable } from '../src/system/sql/mariadb/dedupTable.ts';
import { dedupTable, messagesTable, offsetsTable, queueTable } from '../src/system/sql/mariadb/identifiers.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, subscribeQueue } from '../src/system/pubsub/queueSubscriber.ts';
import { counterHandler } from '../src/system/counterHandler.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../src/system/worker.ts';
import { selectAllCounters } from '../src/system/sql/mariadb/counterTable.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';
import { childEnvironment } from '../src/config.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const message = (counter = randomUUID()): OutgoingMessage => ({ uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} });

async function offsets(db: SqlExecutor, table: string): Promise<number[]> {
  const rows = await db.query<{ offset: number }[]>(`SELECT \`offset\` FROM ${table} ORDER BY \`offset\``);
  return rows.map((r) => Number(r.offset));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function setGroup(db: SqlExecutor, topic: string, group: string, acked: number): Promise<void> {
  await db.query(
    `INSERT INTO ${offsetsTable(topic)} (\`consumer_group\`, \`offset_acked\`, \`offset_consumed\`) VALUES (?, ?, ?)
     ON DUPLICATE KEY UPDATE \`offset_acked\` = VALUES(\`offset_acked\`)`,
    [group, acked, acked],
  );
}

describe('prune (private MariaDB)', () => {
  const database = usePrivateDatabase();
  let pool: Pool;
  let db: SqlExecutor;
  before(() => {
    pool = testPool(database().url, 12);
    db = executorOf(pool);
  });
  after(async () => {
    await pool.end();
  });

  const opts = (topic: string, mode: TopicMode, over: Partial<typeof DEFAULT_PRUNE_OPTIONS> = {}) => ({ ...DEFAULT_PRUNE_OPTIONS, topic, mode, ...over });

  test('offset mode: removes exactly the messages at or below the lowest acked offset of every group', async () => {
    const topic = 'prune_offset';
    await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
    await createOffsetsTable(db, topic);
    await insertMessages(db, topic, Array.from({ length: 100 }, () => message()));
    // A hole (a rolled-back offset) inside the prunable range changes nothing.
    await db.query(`DELETE FROM ${messagesTable(topic)} WHERE \`offset\` = 10`);

    const none = await prune(pool, opts(topic, 'offset', { batchSize: 7 }));
    assert.deepEqual([none.groups, none.messagesRemoved], [0, 0], 'no group: nothing is known to be consumed');

    await setGroup(db, topic, 'slow', 40);
    await setGroup(db, topic, 'fast', 70);
    const first = await prune(pool, opts(topic, 'offset', { batchSize: 7 }));
    assert.equal(first.floor, 40, 'the minimum over the groups');
    assert.equal(first.messagesRemoved, 39, 'offsets 1-40 less the hole');
    assert.ok(first.batches >= 6, `batches of 7 offsets (${first.batches})`);
    assert.deepEqual(await offsets(db, messagesTable(topic)), range(41, 100));

    await setGroup(db, topic, 'new', 0);
    const held = await prune(pool, opts(topic, 'offset'));
    assert.equal(held.messagesRemoved, 0, 'a group at 0 holds everything');
    await db.query(`DELETE FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = 'new'`);

    await setGroup(db, topic, 'slow', 100);
    const second = await prune(pool, opts(topic, 'offset'));
    assert.equal(second.messagesRemoved, 30);
    assert.deepEqual(await offsets(db, messagesTable(topic)), range(71, 100), "'fast' still needs 71-100");
  });

  test('queue mode: removes the acked rows and only them', async () => {
    const topic = 'prune_queue';
    await ensureSchema(db, { topic, topicSchema: 'queue', dedup: false });
    const values = Array.from({ length: 60 }, () => '(UUID(), NULL, NULL)').join(', ');
    await db.query(`INSERT INTO ${queueTable(topic)} (\`uuid\`, \`payload\`, \`metadata\`) VALUES ${values}`);
    const acked = range(1, 60).filter((o) => o % 3 === 0 || o < 10);
    await markAcked(db, topic, acked);
    const result = await prune(pool, opts(topic, 'queue', { batchSize: 4 }));
    assert.equal(result.messagesRemoved, acked.length);
    assert.deepEqual(await offsets(db, queueTable(topic)), range(1, 60).filter((o) => !acked.includes(o)));
    assert.deepEqual(await countQueue(db, topic), { total: 60 - acked.length, acked: 0 });
  });

  test('dedup ids older than the window go, newer ones stay; a missing dedup table is not an error', async () => {
    const topic = 'prune_dedup';
    await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
    await createOffsetsTable(db, topic);
    const missing = await prune(pool, opts(topic, 'offset'));
    assert.equal(missing.dedupRowsRemoved, 0);

    await createPublishDedupTable(db, topic);
    const old = Array.from({ length: 25 }, () => randomUUID());
    const fresh = Array.from({ length: 10 }, () => randomUUID());
    for (const id of old) {
      await db.query(`INSERT INTO ${dedupTable(topic)} (\`request_id\`, \`token\`, \`created_at\`) VALUES (?, ?, NOW(6) - INTERVAL 2 HOUR)`, [id, randomUUID()]);
    }
    // Just inside a one-hour window, and brand new.
    await db.query(`INSERT INTO ${dedupTable(topic)} (\`request_id\`, \`token\`, \`created_at\`) VALUES (?, ?, NOW(6) - INTERVAL 3590 SECOND)`, [fresh[0], randomUUID()]);
    for (const id of fresh.slice(1)) await db.query(`INSERT INTO ${dedupTable(topic)} (\`request_id\`, \`token\`) VALUES (?, ?)`, [id, randomUUID()]);

    const result = await prune(pool, opts(topic, 'offset', { batchSize: 4, dedupWindowS: 3_600 }));
    assert.equal(result.dedupRowsRemoved, 25);
    // request_id is VARBINARY (ids are compared byte for byte), so it comes back as a Buffer.
    const left = (await db.query<{ request_id: Buffer }[]>(`SELECT \`request_id\` FROM ${dedupTable(topic)}`)).map((r) => r.request_id.toString('utf8'));
    assert.deepEqual(left.sort(), [...fresh].sort());
  });

  test('a topic no server or worker has created yet: nothing to prune, not an error', async () => {
    const topic = `prune_new_${randomUUID().slice(0, 8)}`;
    const offset = await prune(pool, opts(topic, 'offset'));
    assert.deepEqual([offset.messagesRemoved, offset.groups, offset.dedupRowsRemoved], [0, 0, 0]);
    const queue = await prune(pool, opts(topic, 'queue'));
    assert.deepEqual([queue.messagesRemoved, queue.dedupRowsRemoved], [0, 0]);
  });

  test('`eob prune` prints what it removed', async () => {
    const topic = 'prune_cli';
    await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
    await createOffsetsTable(db, topic);
    await insertMessages(db, topic, Array.from({ length: 12 }, () => message()));
    await setGroup(db, topic, 'counter', 5);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      // The URL (with its password) goes through the environment, never the command line.
      ['--import', 'tsx', CLI, 'prune', '--topic', topic, '--batch-size', '2'],
      { cwd: ROOT, env: childEnvironment({ EOB_LOG: 'quiet', MYSQL_URL: database().url }) },
    );
    const line = stdout.split('\n').find((l) => l.startsWith('pruned '));
    assert.ok(line !== undefined, stdout);
    const printed = JSON.parse(line.slice('pruned '.length)) as { messagesRemoved: number; floor: number };
    assert.deepEqual([printed.messagesRemoved, printed.floor], [5, 5]);
    assert.deepEqual(await offsets(db, messagesTable(topic)), range(6, 12));
  });

  test('the worker prunes every --prune-every seconds', async () => {
    const topic = 'prune_worker';
    const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: database().url, topic, pruneEveryS: 1, log: () => undefined });
    try {
      await insertMessages(db, topic, Array.from({ length: 200 }, () => message()));
      const deadline = performance.now() + 15_000;
      while ((await offsets(db, messagesTable(topic))).length > 0 && performance.now() < deadline) await sleep(100);
      assert.deepEqual(await offsets(db, messagesTable(topic)), [], 'every consumed message was pruned');
      assert.equal(worker.pruned?.messagesRemoved, 200);
      assert.equal(await selectAckedOffset(db, topic, 'counter'), 200);
    } finally {
      await worker.close();
    }
  });

  for (const mode of ['offset', 'queue'] as const) {
    test(`${mode} mode: pruning every 100 ms while publishing and consuming, every message is counted exactly once`, async () => {
      const topic = `prune_live_${mode}`;
      await ensureSchema(db, { topic, topicSchema: mode, dedup: false });
      await db.query('DELETE FROM `counter`');
      const handler = counterHandler('batched', mariadbEngine);
      const subscription: Subscription =
        mode === 'offset'
          ? await subscribeOffset(pool, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, topic, batchSize: 50, pollIntervalMs: 5, handler })
          : await subscribeQueue(pool, { ...DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, topic, batchSize: 50, pollIntervalMs: 5, concurrency: 2, handler });
      const pruner = startPeriodicPrune(pool, { ...DEFAULT_PRUNE_OPTIONS, topic, mode, batchSize: 100 }, 100, () => undefined);
      const counters = Array.from({ length: 20 }, () => randomUUID());
      const published = new Map<string, number>();
      try {
        const until = performance.now() + 3_000;
        await Promise.all(
          Array.from({ length: 6 }, async (_, p) => {
            for (let i = 0; performance.now() < until; i += 1) {
              const batch = Array.from({ length: 1 + ((i + p) % 5) }, (_, k) => message(counters[(i * 7 + k + p) % counters.length]));
              await writeMessages(db, insertMessagesStatement(mode === 'offset' ? messagesTable(topic) : queueTable(topic), batch));
              for (const m of batch) {
                const id = (m.payload as { counter_uuid: string }).counter_uuid;
                published.set(id, (published.get(id) ?? 0) + 1);
              }
            }
          }),
        );
        const total = [...published.values()].reduce((a, b) => a + b, 0);
        const deadline = performance.now() + 30_000;
        const caughtUp = async () =>
          mode === 'offset'
            ? (await selectAckedOffset(db, topic, 'counter')) >= (await selectMaxOffset(db, topic))
            : (await countQueue(db, topic)).total === (await countQueue(db, topic)).acked;
        while (!(await caughtUp()) && performance.now() < deadline) await sleep(50);
        await sleep(300); // at least one more prune after the last ack
        const actual = await selectAllCounters(db);
        for (const [id, n] of published) assert.equal(actual.get(id), n, `counter ${id}`);
        assert.ok(pruner.totals.messagesRemoved > 0, 'the prunes removed rows while the load ran');
        assert.equal(pruner.totals.failures, 0);
        const left = mode === 'offset' ? (await offsets(db, messagesTable(topic))).length : (await countQueue(db, topic)).total;
        assert.ok(left < total, `rows left ${left} of ${total}`);
      } finally {
        await pruner.stop();
        await subscription.close();
      }
    });
  }
});
