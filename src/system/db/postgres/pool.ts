// node-postgres pools and the one way this project sends SQL to PostgreSQL: an executor whose `query` returns
// the rows (writes that need a count use RETURNING), so SQL modules do not depend on the driver's shape.
//
// The driver was chosen by measurement (scripts/pgDriverCost.ts, private PostgreSQL 15.20, durable settings,
// 2 cores at load average 7-9, two runs of two alternating samples, 4 s each; medians of the four):
//   operation                                              pg (node-postgres)   postgres (postgres.js)
//   publish, 1-row INSERT, 8 connections, rows/s             3,700                3,390
//   publish, 100-row INSERT, 8 connections, rows/s          79,700               83,300
//   consume transaction, batch 100, msgs/s                  12,200               11,300
//   consume transaction, batch 1000, msgs/s                 35,600               41,800
// A tie within the noise of the machine (single samples ranged 2x). node-postgres was kept: its
// `query(text, values)` and checked-out client per transaction are the shape the rest of the project already
// uses (the MariaDB pool), errors carry the SQLSTATE in `code`, and it is what graphile-worker and pg-boss run on.
import type { IsolationLevel, SqlExecutor } from '../../types.ts';
import pg from 'pg';
import { pgSchemaLockKey } from '../../sql/postgres/schemaLock.ts';

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

export interface PgPoolOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Connections kept open at most. */
  connectionLimit: number;
  /** How long a connect may take before the caller sees an error (ms). */
  connectTimeoutMs: number;
  /** Sent as application_name `eob-<role>`, so a fault injector finds a process's sessions in pg_stat_activity. */
  role?: string;
  /**
   * lock_timeout of every session (ms): a statement waiting longer for a row lock fails with 55P03 instead of
   * waiting for the holder to end (the server's publish pool: a contested dedup id then fails fast).
   */
  lockTimeoutMs?: number;
}

export const DEFAULT_PG_POOL_OPTIONS: Omit<PgPoolOptions, 'url'> = { connectionLimit: 16, connectTimeoutMs: 5_000 };

// Types parsed the same way on every connection of every pool made here:
// - TIMESTAMP (1114, created_at) is written in the session's time zone, which the pool sets to UTC; read it
//   back as UTC so lag is computed the same way whatever the machine's zone.
// - BIGINT (20) stays a string unless the caller converts: offsets and counters are exact to 2^53 in a number,
//   but a sum over a long run need not be, so the SQL modules convert where they know the range.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === pg.types.builtins.TIMESTAMP) return (value: string) => new Date(`${value.replace(' ', 'T')}Z`);
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

export function createPgPool(options: PgPoolOptions): PgPool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.connectionLimit,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: `eob-${options.role ?? 'client'}`,
    // synchronous_commit=on: a commit is answered only once durable (and, where the primary names a synchronous
    // standby, once the standby has flushed it), whatever an ALTER ROLE / ALTER DATABASE ... SET says; a lower
    // setting there would silently turn a publish's 204 into a single copy a failover can lose. A startup option
    // outranks those (a SET in the session still wins: only the harness's own sessions use one).
    options: `-c TimeZone=UTC -c synchronous_commit=on${options.lockTimeoutMs === undefined ? '' : ` -c lock_timeout=${Math.max(1, Math.floor(options.lockTimeoutMs))}`}`,
    keepAlive: true,
    types,
  });
  // An idle client whose server went away (a restart, pg_terminate_backend) emits 'error' on the pool; the
  // pool drops that client by itself, and the next query meets the failure where it is handled.
  pool.on('error', () => undefined);
  return pool;
}

/** Wraps a pool or a checked-out client so that `query` returns the rows only. */
export function pgExecutorOf(target: PgPool | PgClient): SqlExecutor {
  return {
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      const result = await target.query(sql, values);
      return result.rows as T;
    },
  };
}

/**
 * Starts a transaction at `isolation` on this client. PostgreSQL has no READ UNCOMMITTED of its own (it runs
 * as READ COMMITTED). The offset read is correct at READ COMMITTED and REPEATABLE READ alike (see
 * sql/postgres/messagesTable.ts); REPEATABLE READ makes conflicting counter upserts fail with 40001 (retried).
 */
export async function beginPgTransaction(client: PgClient, isolation: IsolationLevel): Promise<void> {
  await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
}

/**
 * Runs `work` in one transaction on a client of its own: COMMIT on success, ROLLBACK on any error (then
 * rethrown). A client whose connection broke is destroyed instead of returned to the pool.
 */
export async function inPgTransaction<T>(pool: PgPool, isolation: IsolationLevel, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client whose server goes away (a crash, pg_terminate_backend) emits 'error' besides failing
  // the query in flight; with no listener that event is an uncaught exception that ends the process (seen here
  // when the server was SIGKILLed mid-batch). The failed query reports it; the client is then destroyed.
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await beginPgTransaction(client, isolation);
    const result = await work(pgExecutorOf(client));
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/**
 * Creates the database named in the URL if it does not exist (a fresh private server has `postgres` only), by
 * way of the `postgres` maintenance database on the same server. 3D000 = invalid_catalog_name. `sent` is told
 * each statement before it goes, so a start-up failure can name it.
 */
export async function ensurePgDatabase(url: string, connectTimeoutMs = DEFAULT_PG_POOL_OPTIONS.connectTimeoutMs, sent: (sql: string) => void = () => undefined): Promise<void> {
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.end();
    return;
  } catch (error) {
    await probe.end().catch(() => undefined);
    if ((error as { code?: unknown }).code !== '3D000') throw error;
  }
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(database)) throw new Error(`database name must be letters, digits and _ (got "${database}")`);
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString(), connectionTimeoutMillis: connectTimeoutMs });
  admin.on('error', () => undefined);
  const run = (sql: string, values?: unknown[]): Promise<pg.QueryResult> => {
    sent(sql);
    return admin.query(sql, values);
  };
  try {
    await admin.connect();
    // CREATE DATABASE checks the name before it copies the template and only then inserts the catalog row, so
    // concurrent creators all pass the check and all but one fail with 23505 on pg_database_datname_index (7 of
    // 8 did, released together). A session-level advisory lock (CREATE DATABASE cannot run in a transaction, so
    // not a transaction-scoped one; it goes with the session at end()) serializes eob's creators, and each looks
    // again under it. A creator that is not eob can still win: its 42P04 or 23505 means the database exists.
    await run('SELECT pg_advisory_lock($1, $2)', [...pgSchemaLockKey(`database ${database}`)]);
    const found = await run('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await run(`CREATE DATABASE "${database}"`).catch((error: unknown) => {
        const e = error as { code?: unknown; constraint?: unknown };
        if (e.code === '42P04' || (e.code === '23505' && e.constraint === 'pg_database_datname_index')) return;
        throw error;
      });
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}
