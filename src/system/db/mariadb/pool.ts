// mysql2 pools and the one way this project sends SQL: `SqlExecutor.query` returns the rows (or the result
// header for writes), never the [rows, fields] pair, so SQL modules do not depend on the driver's shape.
import type { Statement } from '../../types.ts';
import type { IsolationLevel, SqlExecutor } from '../../types.ts';
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection } from 'mysql2/promise';
import { parseMysqlUrl, type MysqlUrl } from './mysqlUrl.ts';
import type { DatabaseUrl } from '../databaseUrl.ts';

export type { Pool, PoolConnection };
// URL parsing lives in mysqlUrl.ts; re-exported for the callers that open pools.
export { parseMysqlUrl, type MysqlUrl };

export interface PoolOptions {
  /** A mysql:// URL, or one parsed already (the command's, handed down): then it is not parsed again. */
  url: string | DatabaseUrl;
  /** Connections kept open; the server's coalescer and each consumer hold one each while they work. */
  connectionLimit: number;
  /** How long a connect may take before the caller sees an error (ms). */
  connectTimeoutMs: number;
  /**
   * Sent as the connection attribute program_name `eob-<role>` with the pid, so a fault injector can find a
   * process's sessions in performance_schema.session_connect_attrs.
   */
  role?: string;
  /**
   * Lets one query carry several statements separated by `;`, so a consume transaction takes 3 round trips
   * instead of 6 (see runStatements). Every value still goes through placeholders.
   */
  multipleStatements?: boolean;
  /**
   * Callers waiting for a free connection at most; one more fails at once ("Queue limit reached") instead of
   * queueing without bound while the database hangs. 0 = no bound (mysql2's default).
   */
  queueLimit?: number;
  /**
   * innodb_lock_wait_timeout (whole seconds) of every session of the pool, set when the connection is made. A
   * publisher whose row lock is contested then fails that statement quickly instead of waiting the server's
   * default 50 s while its callers time out.
   */
  lockWaitTimeoutSeconds?: number;
  /**
   * Default per-statement timeout of `executorOf(pool)` (DEFAULT_QUERY_TIMEOUT_MS when absent): a statement with
   * no answer by then fails (PROTOCOL_SEQUENCE_TIMEOUT) instead of waiting forever on a hung database; its
   * connection goes back to the pool when the late answer arrives.
   */
  queryTimeoutMs?: number;
}

/**
 * Statements of this project answer in milliseconds to seconds on a healthy database; two minutes without an
 * answer means a hung one. Pools that need a tighter bound (the server's) set their own.
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 120_000;

const poolQueryTimeouts = new WeakMap<Pool, number>();

/** What mysql2's execute() takes as values (its typings do not export the name). */
type ExecuteParameters = Parameters<Pool['execute']>[1];

export const DEFAULT_POOL_OPTIONS: Omit<PoolOptions, 'url'> = { connectionLimit: 16, connectTimeoutMs: 5_000 };

function connectionConfig(url: MysqlUrl, connectTimeoutMs: number) {
  return {
    host: url.host,
    port: url.port,
    user: url.user,
    password: url.password,
    ...(url.socketPath === undefined ? {} : { socketPath: url.socketPath }),
    connectTimeout: connectTimeoutMs,
    // Offsets are BIGINT: numbers are exact up to 2^53, far beyond any run of this tool.
    supportBigNumbers: true,
    bigNumberStrings: false,
    // TIMESTAMPs (created_at) travel as UTC text: the pool's sessions are set to UTC (createPool).
    timezone: 'Z',
    // mysql2's promise API captures a stack trace per query (for errors' stacks) unless this is off: measured
    // as ~2% of the server's CPU under POST /count load; errors keep the driver's message, code and errno.
    trace: false,
    // mysql2's typings declare the hook's result void; its code sends the text the hook returns.
    queryFormat: formatQuery as (query: string, values: unknown) => void,
  };
}

/**
 * mysql2 formats every query, and with no values still scans the whole text for placeholders: the worker's
 * counter upsert carries its values in the text (sql/mariadb/literal.ts), and in a --cpu-prof of the server
 * under POST /count load, when its multi-row INSERT still did too, that scan was 2.3 % of its CPU. A query with
 * no values is sent as written (what the scan would have produced); any other is formatted as mysql2 itself
 * would (stringifyObjects off, the connection's timezone).
 */
export function formatQuery(sql: string, values: unknown, timezone?: string): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return formatWithValues(sql, values, false, timezone);
}
const formatWithValues = mysql.format as unknown as (sql: string, values: unknown, stringifyObjects: boolean, timezone: string | undefined) => string;

/**
 * Creates the database named in the URL if it does not exist (a fresh private server has only `test`). `sent`
 * is told the statement before it goes, so a start-up failure can name it. Concurrent creators need nothing
 * more: a metadata lock on the name serializes them, and each later one finds the database (8 released at once
 * from FLUSH TABLES WITH READ LOCK never failed; test/startupRace.test.ts).
 */
export async function ensureDatabase(url: string | DatabaseUrl, connectTimeoutMs = DEFAULT_POOL_OPTIONS.connectTimeoutMs, sent: (sql: string) => void = () => undefined): Promise<void> {
  const parsed = mysqlConnectionOf(url);
  const conn = await mysql.createConnection(connectionConfig(parsed, connectTimeoutMs));
  try {
    const sql = `CREATE DATABASE IF NOT EXISTS \`${parsed.database}\``;
    sent(sql);
    await conn.query(sql);
  } finally {
    await conn.end().catch(() => undefined);
  }
}

const multiStatementPools = new WeakSet<Pool>();

/**
 * Prepared statements a connection keeps (executorOf's execute). The server's coalesced INSERT is one statement
 * per batch size, 1 to --coalesce-max-batch rows (100 by default), so 128 keeps every size of the defaults;
 * with more sizes the driver closes the least recently used on the server. That bounds what one connection
 * takes of the server's max_prepared_stmt_count (16,382 by default, for all sessions together); mysql2's own
 * default is 16,000 per connection.
 */
export const MAX_PREPARED_STATEMENTS_PER_CONNECTION = 128;

/** What mysql2 connects with: from a parsed URL as it is, from a string by parsing it. */
function mysqlConnectionOf(url: string | DatabaseUrl): MysqlUrl {
  if (typeof url === 'string') return parseMysqlUrl(url);
  if (url.engine !== 'mariadb') throw new Error(`a MariaDB pool cannot open ${url.redacted}: it is a ${url.engine} URL`);
  return url.connection;
}

export function createPool(options: PoolOptions): Pool {
  const parsed = mysqlConnectionOf(options.url);
  const pool = mysql.createPool({
    ...connectionConfig(parsed, options.connectTimeoutMs),
    database: parsed.database,
    connectionLimit: options.connectionLimit,
    connectAttributes: { program_name: `eob-${options.role ?? 'client'}`, eob_pid: String(process.pid) },
    waitForConnections: true,
    queueLimit: options.queueLimit ?? 0,
    enableKeepAlive: true,
    multipleStatements: options.multipleStatements === true,
    maxPreparedStatements: MAX_PREPARED_STATEMENTS_PER_CONNECTION,
  });
  // Every session reads and writes TIMESTAMPs in UTC, the zone the driver assumes (`timezone: 'Z'`): in the
  // server's default zone (SYSTEM), a server whose machine runs at +09:00 handed back created_at nine hours
  // ahead of the instant it holds. The SET travels once per connection; mysql2 runs a connection's commands in
  // order, so it precedes the first query of any caller.
  const lockWait = options.lockWaitTimeoutSeconds === undefined ? '' : `, innodb_lock_wait_timeout = ${Math.max(1, Math.floor(options.lockWaitTimeoutSeconds))}`;
  const sessionSettings = `SET SESSION time_zone = '+00:00'${lockWait}`;
  pool.pool.on('connection', (conn) => {
    conn.query(sessionSettings, () => undefined);
  });
  if (options.multipleStatements === true) multiStatementPools.add(pool);
  poolQueryTimeouts.set(pool, options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
  return pool;
}

/**
 * Runs statements in order and returns each one's result. On a pool made with multipleStatements they travel
 * in one round trip; elsewhere one after another. Either way the first failing statement raises, and the ones
 * after it do not run.
 */
export async function runStatements(pool: Pool, conn: PoolConnection, statements: readonly Statement[]): Promise<unknown[]> {
  if (statements.length === 1 || !multiStatementPools.has(pool)) {
    const results: unknown[] = [];
    for (const s of statements) results.push((await conn.query(s.sql, s.values))[0]);
    return results;
  }
  const [results] = await conn.query(
    statements.map((s) => s.sql).join(';\n'),
    statements.flatMap((s) => s.values),
  );
  return results as unknown[];
}

/**
 * Wraps a pool or connection so that `query` and `execute` return rows (or the write result header) only. With
 * `queryTimeoutMs`, a statement with no answer by then fails with PROTOCOL_SEQUENCE_TIMEOUT (class
 * `connection`): mysql2 does not cancel it and its connection stays busy with it. On a pool, mysql2 returns
 * that connection when the late answer arrives (every pool made by createPool has a default timeout); on a
 * connection the caller must destroy it rather than release it.
 */
export function executorOf(target: Pool | PoolConnection, queryTimeoutMs?: number): SqlExecutor {
  // A pool's own default; a connection gets none unless given, since its caller decides what to do with it.
  queryTimeoutMs ??= poolQueryTimeouts.get(target as Pool);
  return {
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      // No values: the driver then sends the text as it is, without scanning it for placeholders.
      if (values !== undefined && values.length === 0) values = undefined;
      const [rows] = queryTimeoutMs === undefined ? await target.query(sql, values) : await target.query({ sql, timeout: queryTimeoutMs }, values);
      return rows as T;
    },
    async execute<T>(sql: string, values: unknown[]): Promise<T> {
      // The driver checks each value's type when it binds it; its typings list those types.
      const bound = values as ExecuteParameters;
      const [rows] = queryTimeoutMs === undefined ? await target.execute(sql, bound) : await target.execute({ sql, timeout: queryTimeoutMs }, bound);
      return rows as T;
    },
  };
}

/** `SET TRANSACTION ISOLATION LEVEL` applies to the next transaction on this session only. */
export async function beginTransaction(conn: PoolConnection, isolation: IsolationLevel, queryTimeoutMs?: number): Promise<void> {
  const run = executorOf(conn, queryTimeoutMs);
  await run.query(`SET TRANSACTION ISOLATION LEVEL ${isolation}`);
  await run.query('START TRANSACTION');
}
