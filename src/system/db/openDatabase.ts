// Opens the Database a URL names (mysql:// or postgres://) with one set of pool options, creates its database
// when missing, and wraps a mysql2 pool a caller already holds (the tests and the harness pass those).
import { createPool, ensureDatabase, type Pool, type PoolOptions } from './mariadb/pool.ts';
import { createPgPool, ensurePgDatabase } from './postgres/pool.ts';
import { mariadbDatabase } from './mariadb/database.ts';
import { postgresDatabase } from './postgres/database.ts';
import { databaseUrlOf, type DatabaseUrl } from './databaseUrl.ts';
import { withAddress } from './mariadb/mysqlUrl.ts';
import type { Database } from './database.ts';

/**
 * The same options as a mysql2 pool's, for either engine. PostgreSQL honours url, connectionLimit,
 * connectTimeoutMs, role (application_name `eob-<role>`), lockWaitTimeoutSeconds (lock_timeout) and queueLimit
 * (checked by postgresDatabase: node-postgres has none); it sends one statement at a time and has no default
 * per-statement timeout.
 */
export type DatabaseOptions = Omit<PoolOptions, 'url'> & { url: string | DatabaseUrl };

export function openDatabase(o: DatabaseOptions): Database {
  const target = databaseUrlOf(o.url);
  if (target.engine === 'postgres') {
    return postgresDatabase(
      createPgPool({
        url: target.url,
        connectionLimit: o.connectionLimit,
        connectTimeoutMs: o.connectTimeoutMs,
        ...(o.role === undefined ? {} : { role: o.role }),
        ...(o.lockWaitTimeoutSeconds === undefined ? {} : { lockTimeoutMs: o.lockWaitTimeoutSeconds * 1000 }),
      }),
      o.queueLimit ?? 0,
    );
  }
  return { ...mariadbDatabase(createPool({ ...o, url: target })), peer: (address) => openDatabase({ ...o, url: withAddress(target.url, address), connectionLimit: 1, multipleStatements: false }) };
}

/** Creates the database the URL names if it does not exist; `sent` is told each statement before it goes. */
export async function ensureDatabaseExists(url: string | DatabaseUrl, connectTimeoutMs?: number, sent?: (sql: string) => void): Promise<void> {
  const target = databaseUrlOf(url);
  if (target.engine === 'postgres') await ensurePgDatabase(target.url, connectTimeoutMs, sent);
  else await ensureDatabase(target, connectTimeoutMs, sent);
}

/**
 * What the pub/sub, the publish path and retention accept: a Database, or a mysql2 pool a caller already holds
 * (the tests and the harness), which databaseOf wraps as MariaDB. They name this type, not the driver's.
 */
export type DatabaseTarget = Database | Pool;

function isDatabase(target: DatabaseTarget): target is Database {
  return typeof (target as Partial<Database>).session === 'function' && (target as Partial<Database>).engine !== undefined;
}

/** A Database as it is, or a mysql2 pool as a MariaDB Database. */
export function databaseOf(target: DatabaseTarget): Database {
  return isDatabase(target) ? target : mariadbDatabase(target);
}
