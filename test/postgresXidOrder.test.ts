// The consume read must walk the topic in xid8 order of transaction_id, also where the ids gain a decimal digit
// (999 -> 1000, 9999 -> 10000, ...). A read that sorted the ids as text would take '1000' before '999', ack it,
// and never come back for 999: a loss no concurrency is needed for. A fresh cluster's ids start near 730, so the
// first such boundary is a few hundred transactions in; this test walks the server to just below one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { createPgPool, inPgTransaction, pgExecutorOf, type PgPool } from '../src/system/db/postgres/pool.ts';
import { createPgMessagesTable, lockAndSelectPgMessages, positionOf, selectPgMessagesAfter, type PgMessage } from '../src/system/sql/postgres/messagesTable.ts';
import { createPgOffsetsTable, ensurePgGroupRow, lockPgPosition, writePgPosition } from '../src/system/sql/postgres/offsetsTable.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';

const GROUP = 'g';
const ROWS = 6;

/** Ends transactions (one id each) until the next id is 3 below a power of ten; returns that power. */
async function walkToDigitBoundary(url: string): Promise<bigint> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const next = BigInt((await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x) + 1n;
    let boundary = 10n;
    while (boundary - 3n < next) boundary *= 10n;
    const burn = boundary - 3n - next;
    assert.ok(burn < 200_000n, `the next digit boundary ${boundary} is ${burn} transactions away`);
    // A DO block may COMMIT between iterations (outside a transaction block): one id per iteration, one round trip.
    if (burn > 0n) await client.query(`DO $$ BEGIN FOR i IN 1..${burn} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`);
    return boundary;
  } finally {
    await client.end();
  }
}

/** One row per transaction, straddling the boundary; returns their transaction ids. */
async function publishAcrossBoundary(pool: PgPool, topic: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < ROWS; i += 1) {
    const r = await pool.query<{ tx: string }>(
      `INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") VALUES ($1, '{}', '{}') RETURNING "transaction_id"::text AS "tx"`,
      [randomUUID()],
    );
    ids.push(r.rows[0]!.tx);
  }
  return ids;
}

type Reader = 'two statements (selectPgMessagesAfter)' | 'one statement (lockAndSelectPgMessages, the worker)';

/** Consumes in batches of 2 until a read comes back empty; returns the transaction ids read, in order. */
async function consumeAll(pool: PgPool, topic: string, reader: Reader): Promise<string[]> {
  const read: string[] = [];
  for (let batches = 0; batches < 20; batches += 1) {
    const n = await inPgTransaction(pool, 'READ COMMITTED', async (tx: SqlExecutor) => {
      const batch: PgMessage[] = reader.startsWith('two')
        ? await selectPgMessagesAfter(tx, topic, await lockPgPosition(tx, topic, GROUP), 2)
        : await lockAndSelectPgMessages(tx, topic, GROUP, 2);
      const last = batch.at(-1);
      if (last !== undefined) await writePgPosition(tx, topic, GROUP, positionOf(last));
      read.push(...batch.map((m) => m.transactionId));
      return batch.length;
    });
    if (n === 0) return read;
  }
  throw new Error('did not drain in 20 batches');
}

describe('PostgreSQL read order across a decimal digit boundary of transaction ids', () => {
  const server = usePrivatePostgres();

  for (const reader of ['two statements (selectPgMessagesAfter)', 'one statement (lockAndSelectPgMessages, the worker)'] as const) {
    test(`${reader}: rows from ids on both sides of 10^k are all read, in numeric order`, async () => {
      const pool = createPgPool({ url: server().url, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'test' });
      const topic = reader.startsWith('two') ? 'order_two' : 'order_one';
      try {
        const db = pgExecutorOf(pool);
        await createPgMessagesTable(db, topic);
        await createPgOffsetsTable(db, topic);
        await ensurePgGroupRow(db, topic, GROUP);
        const boundary = await walkToDigitBoundary(server().url);
        const published = await publishAcrossBoundary(pool, topic);
        assert.ok(published.some((x) => BigInt(x) < boundary) && published.some((x) => BigInt(x) >= boundary), `ids ${published.join(', ')} straddle ${boundary}`);
        const read = await consumeAll(pool, topic, reader);
        assert.deepEqual(read, published, `published ids ${published.join(', ')}; read ${read.join(', ')}`);
      } finally {
        await pool.end();
      }
    });
  }
});
