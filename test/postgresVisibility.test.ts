// The PostgreSQL visibility rule, proven on a private server: a consumer that reads only rows whose transaction
// is below the snapshot's xmin, in (transaction_id, offset) order, never steps over a late committer; the same
// consumer without the xmin condition does (the control); 16 raw publishers plus a slow transaction are counted
// exactly once; a server crash mid-consume leaves counters equal to messages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { createPgPool, inPgTransaction, pgExecutorOf, type PgPool } from '../src/system/db/postgres/pool.ts';
import { classifyPgError } from '../src/system/db/postgres/errors.ts';
import {
  countPgMessages,
  createPgMessagesTable,
  insertPgMessages,
  lockAndSelectPgMessages,
  positionOf,
  selectAllPgMessages,
  selectPgMessagesAfter,
  selectPgMessagesAfterWithoutXminRule,
  type PgMessage,
} from '../src/system/sql/postgres/messagesTable.ts';
import { createPgOffsetsTable, ensurePgGroupRow, lockPgPosition, selectPgPosition, writePgPosition } from '../src/system/sql/postgres/offsetsTable.ts';
import { addToPgCounters, createPgCounterTable, selectAllPgCounters, sumPgCounters } from '../src/system/sql/postgres/counterTable.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';

const GROUP = 'g';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Reader = 'xmin rule' | 'without xmin rule' | 'one statement' | 'xmin rule at READ COMMITTED';

/** One consume transaction (REPEATABLE READ): lock the position, read a batch, count it, ack it. */
async function consumeBatch(pool: PgPool, topic: string, reader: Reader, limit: number): Promise<number> {
  const isolation = reader === 'xmin rule at READ COMMITTED' ? 'READ COMMITTED' : 'REPEATABLE READ';
  return inPgTransaction(pool, isolation, async (tx: SqlExecutor) => {
    let batch: PgMessage[];
    if (reader === 'one statement') {
      batch = await lockAndSelectPgMessages(tx, topic, GROUP, limit);
    } else {
      const position = await lockPgPosition(tx, topic, GROUP);
      batch = reader === 'without xmin rule'
        ? await selectPgMessagesAfterWithoutXminRule(tx, topic, position, limit)
        : await selectPgMessagesAfter(tx, topic, position, limit);
    }
    const last = batch.at(-1);
    if (last === undefined) return 0;
    const increments = new Map<string, number>();
    for (const m of batch) {
      const id = (m.payload as { counter_uuid: string }).counter_uuid;
      increments.set(id, (increments.get(id) ?? 0) + 1);
    }
    await addToPgCounters(tx, increments);
    await writePgPosition(tx, topic, GROUP, positionOf(last));
    return batch.length;
  });
}

/** Consumes until `stop()` says so and the topic is drained; retries what the error classes say is retryable. */
async function consumeLoop(pool: PgPool, topic: string, reader: Reader, limit: number, stop: () => boolean): Promise<{ batches: number; retries: number }> {
  let batches = 0;
  let retries = 0;
  for (;;) {
    let n: number;
    try {
      n = await consumeBatch(pool, topic, reader, limit);
    } catch (error) {
      if (classifyPgError(error) === 'fatal') throw error;
      retries += 1;
      await sleep(50);
      continue;
    }
    if (n > 0) batches += 1;
    else if (stop()) return { batches, retries };
    else await sleep(10);
  }
}

async function setUpTopic(pool: PgPool, topic: string): Promise<void> {
  const db = pgExecutorOf(pool);
  await createPgMessagesTable(db, topic);
  await createPgOffsetsTable(db, topic);
  await createPgCounterTable(db);
  await db.query('TRUNCATE "counter"');
  await ensurePgGroupRow(db, topic, GROUP);
}

function message(counter: string) {
  return { uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} };
}

/** Counters must equal, per counter, the number of that counter's messages in the topic. */
async function assertCountedOnce(pool: PgPool, topic: string): Promise<{ messages: number; counted: number }> {
  const db = pgExecutorOf(pool);
  const expected = new Map<string, number>();
  for (const m of await selectAllPgMessages(db, topic)) {
    const id = (m.payload as { counter_uuid: string }).counter_uuid;
    expected.set(id, (expected.get(id) ?? 0) + 1);
  }
  const actual = await selectAllPgCounters(db);
  const diffs: string[] = [];
  for (const [id, n] of expected) if ((actual.get(id) ?? 0) !== n) diffs.push(`${id}: ${actual.get(id) ?? 0} counted, ${n} published`);
  for (const [id, n] of actual) if (!expected.has(id)) diffs.push(`${id}: ${n} counted, none published`);
  assert.deepEqual(diffs, []);
  return { messages: await countPgMessages(db, topic), counted: await sumPgCounters(db) };
}

/**
 * The late committer: a transaction inserts first (lowest offset and transaction id), then 30 rows commit
 * above it while a consumer keeps reading, and it commits 2.5 s later. Returns how many of the 31 messages the
 * consumer counted.
 */
async function lateCommitter(pool: PgPool, url: string, topic: string, reader: Reader): Promise<{ counted: number; published: number }> {
  await setUpTopic(pool, topic);
  const late = new pg.Client({ connectionString: url });
  await late.connect();
  try {
    await late.query('BEGIN');
    await late.query(`INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") VALUES ($1, $2, '{}')`, [randomUUID(), JSON.stringify({ counter_uuid: 'late' })]);
    let done = false;
    const consumer = consumeLoop(pool, topic, reader, 5, () => done);
    for (let i = 0; i < 30; i += 1) {
      await insertPgMessages(pgExecutorOf(pool), topic, [message('early')]);
      await sleep(50);
    }
    await sleep(1_000);
    await late.query('COMMIT');
    await sleep(1_000);
    done = true;
    await consumer;
  } finally {
    await late.end();
  }
  return { counted: await sumPgCounters(pgExecutorOf(pool)), published: await countPgMessages(pgExecutorOf(pool), topic) };
}

describe('PostgreSQL visibility rule', () => {
  const server = usePrivatePostgres();
  const pool = (): PgPool => createPgPool({ url: server().url, connectionLimit: 24, connectTimeoutMs: 5_000, role: 'test' });

  test('a late committer (inserts first, commits last, seconds later) is consumed exactly once (REPEATABLE READ, one-statement read, READ COMMITTED)', async () => {
    const p = pool();
    try {
      const topics = { 'xmin rule': 'late', 'one statement': 'late_cte', 'xmin rule at READ COMMITTED': 'late_rc' } as const;
      for (const [reader, topic] of Object.entries(topics) as [Reader, string][]) {
        const { counted, published } = await lateCommitter(p, server().url, topic, reader);
        assert.equal(published, 31);
        assert.equal(counted, 31, `${reader}: every message counted once`);
        await assertCountedOnce(p, topic);
        const position = await selectPgPosition(pgExecutorOf(p), topic, GROUP);
        assert.ok(position !== undefined && position.transactionId !== '0');
      }
    } finally {
      await p.end();
    }
  });

  test('control: the same reader without the xmin rule steps over the late committer for good', async () => {
    const p = pool();
    try {
      const { counted, published } = await lateCommitter(p, server().url, 'late_control', 'without xmin rule');
      assert.equal(published, 31);
      assert.equal(counted, 30, 'the late message is lost: its transaction id lies below the acked position');
      const counters = await selectAllPgCounters(pgExecutorOf(p));
      assert.equal(counters.get('late'), undefined);
    } finally {
      await p.end();
    }
  });

  test('16 raw publishers of single-row INSERTs plus one slow transaction: every message counted once', async () => {
    const p = pool();
    const topic = 'raw16';
    try {
      await setUpTopic(p, topic);
      const slow = new pg.Client({ connectionString: server().url });
      await slow.connect();
      await slow.query('BEGIN');
      await slow.query(`INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") VALUES ($1, $2, '{}')`, [randomUUID(), JSON.stringify({ counter_uuid: 'slow' })]);
      let done = false;
      const consumer = consumeLoop(p, topic, 'xmin rule', 10, () => done);
      const publishers = Array.from({ length: 16 }, async (_, w) => {
        const client = new pg.Client({ connectionString: server().url });
        await client.connect();
        try {
          for (let i = 0; i < 60; i += 1) {
            // A raw INSERT that names no transaction_id, as any other program would write it.
            await client.query(`INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") VALUES ($1, $2, '{}')`, [
              randomUUID(),
              JSON.stringify({ counter_uuid: `c${(w * 7 + i) % 20}` }),
            ]);
          }
        } finally {
          await client.end();
        }
      });
      await Promise.all(publishers);
      await sleep(2_000);
      await slow.query('COMMIT');
      await slow.end();
      await sleep(1_000);
      done = true;
      const stats = await consumer;
      const { messages, counted } = await assertCountedOnce(p, topic);
      assert.equal(messages, 16 * 60 + 1);
      assert.equal(counted, messages);
      console.log(`# ${messages} messages from 16 raw publishers + 1 slow transaction, ${stats.batches} batches, all counted once`);
    } finally {
      await p.end();
    }
  });

  test('server SIGKILL + restart mid-consume: counters equal messages', async () => {
    const p = pool();
    const topic = 'crash';
    try {
      await setUpTopic(p, topic);
      const counters = Array.from({ length: 10 }, (_, i) => `k${i}`);
      for (let b = 0; b < 30; b += 1) await insertPgMessages(pgExecutorOf(p), topic, Array.from({ length: 100 }, (_, i) => message(counters[i % 10] as string)));
      let done = false;
      // Batches of 5: some 600 commits, each waiting for its WAL flush, so the kill lands while it works.
      const consumer = consumeLoop(p, topic, 'xmin rule', 5, () => done);
      let before = 0;
      while (before === 0) {
        await sleep(20);
        before = await sumPgCounters(pgExecutorOf(p));
      }
      await server().kill('SIGKILL');
      await sleep(200);
      await server().start();
      done = true;
      const stats = await consumer;
      const { messages, counted } = await assertCountedOnce(p, topic);
      assert.equal(messages, 3_000);
      assert.equal(counted, 3_000);
      assert.ok(before < 3_000, `the kill came mid-consume (${before} counted before it)`);
      assert.ok(stats.retries > 0, 'the consumer met the crash and retried');
      console.log(`# crash after ${before} of 3000 counted; ${stats.retries} retries; all 3000 counted once`);
    } finally {
      await p.end();
    }
  });
});
