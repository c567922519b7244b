// What the PostgreSQL driver costs on the two operations this project runs all the time, against a private
// PostgreSQL (never the machine's own service). It chose node-postgres over postgres.js (figures beside
// src/system/db/postgres/pool.ts); postgres.js was removed afterwards, so it measures node-postgres alone now
// (the commit that added this script has the two-driver version):
//
//   node --import tsx scripts/pgDriverCost.ts [seconds-per-point]
//
// - publish: 8 connections, each looping one autocommit multi-row INSERT of 1 or 100 rows (what the server's
//   coalescer sends), rows/s;
// - consume: one connection running the offset consume transaction (BEGIN REPEATABLE READ; lock the group's
//   offsets row FOR UPDATE; read a batch under the xmin rule; one aggregated counter upsert; write the ack;
//   COMMIT) at batch 100 and 1000 over a pre-filled topic, msgs/s.
// One statement after another (no pipelining). A benchmark, not a test.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import pg from 'pg';
import { PrivatePostgres } from '../src/harness/postgres/privatePostgres.ts';
import { findFreePort } from '../src/harness/ports.ts';

const SECONDS = Number(process.argv[2] ?? 4);
const PUBLISHERS = 8;
const COUNTERS = 100;
const BACKLOG = 400_000;

/** The one thing each driver must do: run a statement with $n values on one connection, return its rows. */
interface Conn {
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]>;
  release(): Promise<void>;
}
interface Driver {
  name: string;
  connect(): Promise<Conn>;
  end(): Promise<void>;
}

function nodePostgres(url: string): Driver {
  const pool = new pg.Pool({ connectionString: url, max: PUBLISHERS + 2 });
  return {
    name: 'pg',
    async connect() {
      const client = await pool.connect();
      return {
        query: async (sql, values) => (await client.query(sql, values)).rows as Record<string, unknown>[],
        release: async () => client.release(),
      };
    },
    end: () => pool.end(),
  };
}

const counterIds = Array.from({ length: COUNTERS }, () => randomUUID());

function insertSql(rows: number): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (let i = 0; i < rows; i += 1) {
    const n = values.length;
    tuples.push(`($${n + 1}, $${n + 2}, $${n + 3})`);
    values.push(randomUUID(), JSON.stringify({ counter_uuid: counterIds[i % COUNTERS] }), '{}');
  }
  return { sql: `INSERT INTO watermill_bench (uuid, payload, metadata) VALUES ${tuples.join(', ')}`, values };
}

async function resetTables(conn: Conn): Promise<void> {
  await conn.query('DROP TABLE IF EXISTS watermill_bench, watermill_offsets_bench, counter');
  await conn.query(`CREATE TABLE watermill_bench (
    "offset" BIGSERIAL, uuid VARCHAR(36) NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    payload JSON DEFAULT NULL, metadata JSON DEFAULT NULL,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(), PRIMARY KEY (transaction_id, "offset"))`);
  await conn.query(`CREATE TABLE watermill_offsets_bench (consumer_group VARCHAR(255) NOT NULL PRIMARY KEY,
    offset_acked BIGINT, last_processed_transaction_id xid8 NOT NULL)`);
  await conn.query(`CREATE TABLE counter (id VARCHAR(36) COLLATE "C" NOT NULL PRIMARY KEY, value BIGINT NOT NULL)`);
  await conn.query(`INSERT INTO watermill_offsets_bench VALUES ('g', 0, '0')`);
}

async function publish(driver: Driver, rowsPerInsert: number): Promise<number> {
  const setup = await driver.connect();
  await resetTables(setup);
  await setup.release();
  const deadline = performance.now() + SECONDS * 1000;
  let rows = 0;
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async () => {
      const conn = await driver.connect();
      while (performance.now() < deadline) {
        const { sql, values } = insertSql(rowsPerInsert);
        await conn.query(sql, values);
        rows += rowsPerInsert;
      }
      await conn.release();
    }),
  );
  return rows / SECONDS;
}

async function consume(driver: Driver, batch: number): Promise<number> {
  const conn = await driver.connect();
  await resetTables(conn);
  // Filled in one statement: one transaction id for the whole backlog, which the read orders by offset.
  await conn.query(
    `INSERT INTO watermill_bench (uuid, payload, metadata)
     SELECT gen_random_uuid()::text, json_build_object('counter_uuid', (ARRAY[${counterIds.map((id) => `'${id}'`).join(',')}])[1 + g % ${COUNTERS}]), '{}'
     FROM generate_series(1, ${BACKLOG}) g`,
  );
  await conn.query('VACUUM ANALYZE watermill_bench');
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  let consumed = 0;
  while (performance.now() < deadline) {
    await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const [position] = await conn.query(
      `SELECT offset_acked, last_processed_transaction_id::text AS tx FROM watermill_offsets_bench WHERE consumer_group = $1 FOR UPDATE`,
      ['g'],
    );
    const rows = await conn.query(
      `SELECT "offset", uuid, created_at, payload, metadata, transaction_id::text AS tx FROM watermill_bench
       WHERE ((transaction_id = $1::xid8 AND "offset" > $2) OR transaction_id > $1::xid8)
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY transaction_id, "offset" LIMIT $3`,
      [position?.tx, position?.offset_acked, batch],
    );
    if (rows.length === 0) {
      await conn.query('COMMIT');
      break;
    }
    const increments = new Map<string, number>();
    for (const row of rows) {
      const payload = (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as { counter_uuid: string };
      increments.set(payload.counter_uuid, (increments.get(payload.counter_uuid) ?? 0) + 1);
    }
    const ids = [...increments.keys()].sort();
    await conn.query(
      `INSERT INTO counter (id, value) VALUES ${ids.map((_, i) => `($${2 * i + 1}, $${2 * i + 2}::bigint)`).join(', ')}
       ON CONFLICT (id) DO UPDATE SET value = counter.value + EXCLUDED.value`,
      ids.flatMap((id) => [id, increments.get(id)]),
    );
    const last = rows[rows.length - 1] as Record<string, unknown>;
    await conn.query(
      `UPDATE watermill_offsets_bench SET offset_acked = $1, last_processed_transaction_id = $2::xid8 WHERE consumer_group = $3`,
      [last.offset, last.tx, 'g'],
    );
    await conn.query('COMMIT');
    consumed += rows.length;
  }
  const seconds = (performance.now() - started) / 1000;
  await conn.release();
  return consumed / seconds;
}

async function main(): Promise<void> {
  const datadir = await mkdtemp(path.join(os.tmpdir(), 'eob-pg-driver-'));
  const server = await PrivatePostgres.create({ port: await findFreePort(), datadir, log: () => undefined });
  try {
    const info = await server.info();
    console.log(`PostgreSQL ${info.version}, fsync=${info.fsync}, synchronous_commit=${info.synchronousCommit}; ${SECONDS} s per point, load ${os.loadavg()[0]?.toFixed(1)}`);
    const points: [string, (d: Driver) => Promise<number>][] = [
      ['publish 1 row/INSERT x8 conns rows/s', (d) => publish(d, 1)],
      ['publish 100 rows/INSERT x8 conns rows/s', (d) => publish(d, 100)],
      ['consume batch 100 msgs/s', (d) => consume(d, 100)],
      ['consume batch 1000 msgs/s', (d) => consume(d, 1000)],
    ];
    for (const [label, run] of points) {
      const figures: string[] = [];
      for (let round = 0; round < 2; round += 1) {
        const driver = nodePostgres(server.url);
        try {
          figures.push(`${driver.name} ${Math.round(await run(driver))}`);
        } finally {
          await driver.end();
        }
      }
      console.log(`${label}: ${figures.join(', ')}`);
    }
  } finally {
    await server.remove();
    await rm(datadir, { recursive: true, force: true });
  }
}

await main();
