// Where the visibility rule does not hold: rows whose transaction_id was assigned by ANOTHER cluster. The rule
// compares each row's transaction_id with this server's snapshot xmin, so the id must be this server's own (R1
// and R2 of messages.ts). Logical replication applies the publisher's rows with every column as published,
// transaction_id included (the subscriber's default is not evaluated), in the publisher's commit order. A
// consumer on the subscriber therefore sees ids that say nothing about the subscriber's running transactions: a
// publisher transaction that inserts first and commits last arrives after a later id was read and acked, and
// is never read. The same holds for rows restored by pg_dump into another cluster, or copied with their ids.
// This test shows the loss (it asserts it, as the controls do), so the limit stays documented by a run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startPrivatePostgres, type PrivatePostgres } from './support/privatePostgres.ts';
import { createPgMessagesTable, lockAndSelectPgMessages, positionOf } from '../src/system/sql/postgres/messagesTable.ts';
import { createPgOffsetsTable, ensurePgGroupRow, writePgPosition } from '../src/system/sql/postgres/offsetsTable.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';

const TOPIC = 'replicated';
const GROUP = 'g';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

function executor(c: pg.Client): SqlExecutor {
  return { query: async <T>(sql: string, values?: unknown[]) => (await c.query(sql, values)).rows as T };
}

/** libpq keywords for CREATE SUBSCRIPTION, from a postgres:// URL. */
function conninfo(url: string): string {
  const u = new URL(url);
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `host=${u.hostname} port=${u.port} user=${q(decodeURIComponent(u.username))} password=${q(decodeURIComponent(u.password))} dbname=${q(u.pathname.slice(1))}`;
}

async function waitForTag(c: pg.Client, tag: string): Promise<void> {
  for (let i = 0; i < 300; i += 1) {
    const r = await c.query(`SELECT 1 FROM "watermill_${TOPIC}" WHERE "payload"->>'tag' = $1`, [tag]);
    if (r.rowCount === 1) return;
    await sleep(50);
  }
  throw new Error(`row ${tag} was not replicated within 15 s`);
}

/** One consume transaction on the subscriber (the worker's one-statement read), acking what it read. */
async function consumeOnce(c: pg.Client): Promise<string[]> {
  await c.query('BEGIN ISOLATION LEVEL READ COMMITTED');
  try {
    const batch = await lockAndSelectPgMessages(executor(c), TOPIC, GROUP, 100);
    const last = batch.at(-1);
    if (last !== undefined) await writePgPosition(executor(c), TOPIC, GROUP, positionOf(last));
    await c.query('COMMIT');
    return batch.map((m) => (m.payload as { tag: string }).tag);
  } catch (error) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

describe('PostgreSQL visibility rule: transaction ids from another cluster', () => {
  test('a consumer on a logical-replication subscriber loses the publisher\'s late committer', async () => {
    const servers: PrivatePostgres[] = [];
    const clients: pg.Client[] = [];
    try {
      const publisher = await startPrivatePostgres({ settings: { wal_level: 'logical' } });
      servers.push(publisher);
      const subscriber = await startPrivatePostgres();
      servers.push(subscriber);
      const [pubAdmin, late, early, subAdmin, consumer] = await Promise.all([publisher.url, publisher.url, publisher.url, subscriber.url, subscriber.url].map(connect));
      clients.push(pubAdmin!, late!, early!, subAdmin!, consumer!);
      for (const c of [pubAdmin!, subAdmin!]) await createPgMessagesTable(executor(c), TOPIC);
      await createPgOffsetsTable(executor(subAdmin!), TOPIC);
      await ensurePgGroupRow(executor(subAdmin!), TOPIC, GROUP);
      // The subscriber's own ids run ahead of the publisher's, as on any older or busier cluster: the
      // replicated ids are then all below the subscriber's xmin, i.e. "closed" by the rule's reckoning.
      const pubNext = BigInt((await pubAdmin!.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x);
      const subNext = BigInt((await subAdmin!.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x);
      const burn = pubNext - subNext + 100n;
      if (burn > 0n) await subAdmin!.query(`DO $$ BEGIN FOR i IN 1..${burn} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`);
      await pubAdmin!.query(`CREATE PUBLICATION eob_review FOR TABLE "watermill_${TOPIC}"`);
      await subAdmin!.query(`CREATE SUBSCRIPTION eob_review CONNECTION ${`'${conninfo(publisher.url).replace(/'/g, "''")}'`} PUBLICATION eob_review WITH (copy_data = false)`);

      const insert = (c: pg.Client, tag: string) =>
        c.query<{ tx: string }>(`INSERT INTO "watermill_${TOPIC}" ("uuid", "payload", "metadata") VALUES ($1, $2, '{}') RETURNING "transaction_id"::text AS "tx"`, [
          randomUUID(),
          JSON.stringify({ tag }),
        ]);
      // Give the apply worker its replication connection before the first row.
      await insert(early!, 'warm-up');
      await waitForTag(subAdmin!, 'warm-up');
      await late!.query('BEGIN');
      const lateId = (await insert(late!, 'late')).rows[0]!.tx;
      const earlyId = (await insert(early!, 'early')).rows[0]!.tx;
      assert.ok(BigInt(lateId) < BigInt(earlyId));
      await waitForTag(subAdmin!, 'early');
      const first = await consumeOnce(consumer!);
      assert.deepEqual(first, ['warm-up', 'early'], 'the subscriber\'s xmin is above the publisher\'s ids, so early is read and acked at once');
      await late!.query('COMMIT');
      await waitForTag(subAdmin!, 'late');
      const rows = (await subAdmin!.query<{ tag: string; tx: string }>(`SELECT "payload"->>'tag' AS "tag", "transaction_id"::text AS "tx" FROM "watermill_${TOPIC}" WHERE "payload"->>'tag' = 'late'`)).rows;
      assert.deepEqual(rows, [{ tag: 'late', tx: lateId }], 'the replicated row carries the PUBLISHER\'s transaction id');
      const second = await consumeOnce(consumer!);
      assert.deepEqual(second, [], 'late sorts below the acked position (early\'s id): it is never read');
      await subAdmin!.query('DROP SUBSCRIPTION eob_review');
    } finally {
      for (const c of clients) await c.end().catch(() => undefined);
      for (const s of servers.reverse()) await s.remove().catch(() => undefined);
    }
  });
});
