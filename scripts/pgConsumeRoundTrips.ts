// What the separate round trips of a PostgreSQL consume transaction cost, against a private PostgreSQL:
//
//   node --import tsx scripts/pgConsumeRoundTrips.ts [seconds-per-sample]
//
// node-postgres sends one statement per query when values are bound, and waits for each answer, so the
// worker's consume transaction on PostgreSQL takes 6 round trips: BEGIN, the read (lock + read in one CTE),
// SAVEPOINT, the counter upsert, the ack, COMMIT. The alternative is multi-statement text through the simple
// query protocol, which carries no bound values: the read's group and limit and the ack's position inlined as
// literals, 3 round trips (BEGIN; read; SAVEPOINT | upsert | ack; COMMIT). Both run here over one backlog, on
// one connection, alternating samples, at batch 1 (round-trip bound) and 1,000 (the worker's default), and the
// worker's own path (createOffsetBatchConsumer on a postgres Database) for reference. A benchmark, not a test.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import pg from 'pg';
import { PrivatePostgres } from '../src/harness/postgres/privatePostgres.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { openDatabase } from '../src/system/db/openDatabase.ts';
import { createOffsetBatchConsumer, DEFAULT_OFFSET_SUBSCRIBER_OPTIONS } from '../src/system/pubsub/offsetSubscriber.ts';
import { counterHandler } from '../src/system/counterHandler.ts';
import { postgresEngine } from '../src/system/sql/postgres/engine.ts';
import { lockAndSelectPgMessagesStatement } from '../src/system/sql/postgres/messagesTable.ts';
import { addToPgCountersStatement } from '../src/system/sql/postgres/counterTable.ts';

const SECONDS = Number(process.argv[2] ?? 3);
const BACKLOG = 600_000;
const COUNTERS = 100;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'eob-pg-rt-'));
  const server = new PrivatePostgres({ port: await findFreePort(), datadir: dir, startTimeoutMs: 60_000 });
  await server.start();
  const db = openDatabase({ url: server.url, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'bench' });
  try {
    const topic = 'rt';
    await postgresEngine.ensureSchema(db.executor(), { topic, mode: 'offset', dedup: false });
    const counters = Array.from({ length: COUNTERS }, () => randomUUID());
    for (let i = 0; i < BACKLOG; i += 20_000) {
      await db.executor().query(
        `INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata")
         SELECT gen_random_uuid()::text, json_build_object('counter_uuid', ($1::text[])[1 + g % ${COUNTERS}]), '{}' FROM generate_series(1, 20000) g`,
        [counters],
      );
    }
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();

    let group = 0;
    const newGroup = async (): Promise<string> => {
      const name = `g${(group += 1)}`;
      await postgresEngine.ensureGroup(db.executor(), { topic, consumerGroup: name });
      return name;
    };
    const increments = (rows: { payload: { counter_uuid: string } }[]): Map<string, number> => {
      const m = new Map<string, number>();
      for (const r of rows) m.set(r.payload.counter_uuid, (m.get(r.payload.counter_uuid) ?? 0) + 1);
      return m;
    };
    type Row = { offset: string; transaction_id: string; payload: { counter_uuid: string } };

    async function separate(g: string, batch: number): Promise<number> {
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      const read = lockAndSelectPgMessagesStatement(topic, g, batch);
      const rows = (await client.query(read.sql, read.values)).rows as Row[];
      await client.query('SAVEPOINT eob_attempt');
      const up = addToPgCountersStatement(increments(rows));
      await client.query(up.sql, up.values);
      const last = rows[rows.length - 1]!;
      await client.query(`UPDATE "watermill_offsets_${topic}" SET "offset_acked" = $1, "last_processed_transaction_id" = $2::xid8 WHERE "consumer_group" = $3`, [last.offset, last.transaction_id, g]);
      await client.query('COMMIT');
      return rows.length;
    }

    async function merged(g: string, batch: number): Promise<number> {
      const read = lockAndSelectPgMessagesStatement(topic, g, batch);
      const inlined = read.sql.replace('$1', client.escapeLiteral(g)).replace('$2', String(Math.floor(batch)));
      const results = (await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED; ${inlined}; SAVEPOINT eob_attempt`)) as unknown as pg.QueryResult[];
      const rows = results[1]!.rows as Row[];
      const up = addToPgCountersStatement(increments(rows));
      await client.query(up.sql, up.values);
      const last = rows[rows.length - 1]!;
      if (!/^\d+$/.test(last.transaction_id) || !/^\d+$/.test(String(last.offset))) throw new Error('unexpected position');
      await client.query(
        `UPDATE "watermill_offsets_${topic}" SET "offset_acked" = ${last.offset}, "last_processed_transaction_id" = '${last.transaction_id}'::xid8 WHERE "consumer_group" = ${client.escapeLiteral(g)}; COMMIT`,
      );
      return rows.length;
    }

    async function sample(name: string, batch: number, once: (g: string, batch: number) => Promise<number>): Promise<number> {
      const g = await newGroup();
      const end = performance.now() + SECONDS * 1000;
      let n = 0;
      while (performance.now() < end) n += await once(g, batch);
      const rate = n / SECONDS;
      process.stdout.write(`${name.padEnd(40)} batch ${String(batch).padStart(4)}: ${Math.round(rate).toLocaleString('en-US')} msgs/s\n`);
      return rate;
    }

    async function worker(g: string, batch: number): Promise<number> {
      const consumer = await createOffsetBatchConsumer(db, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, topic, consumerGroup: g, batchSize: batch, handler: counterHandler('batched', postgresEngine) });
      workers.set(g, consumer);
      return 0;
    }
    const workers = new Map<string, Awaited<ReturnType<typeof createOffsetBatchConsumer>>>();
    async function viaWorker(batch: number): Promise<number> {
      const g = await newGroup();
      await worker(g, batch);
      const consumer = workers.get(g)!;
      const end = performance.now() + SECONDS * 1000;
      let batches = 0;
      while (performance.now() < end) {
        await consumer.consumeOnce();
        batches += 1;
      }
      consumer.release();
      const rate = (batches * batch) / SECONDS;
      process.stdout.write(`${'worker path (6 round trips)'.padEnd(40)} batch ${String(batch).padStart(4)}: ${Math.round(rate).toLocaleString('en-US')} msgs/s\n`);
      return rate;
    }

    for (const batch of [1, 1000]) {
      const ratios: number[] = [];
      for (let round = 0; round < 2; round += 1) {
        const a = await sample('separate statements (6 round trips)', batch, separate);
        const b = await sample('multi-statement text (3 round trips)', batch, merged);
        ratios.push(b / a);
        await viaWorker(batch);
      }
      process.stdout.write(`batch ${batch}: merged / separate = ${ratios.map((r) => r.toFixed(2)).join(', ')}\n`);
    }
    await client.end();
  } finally {
    await db.end();
    await server.remove();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
