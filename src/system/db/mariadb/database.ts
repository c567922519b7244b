// The Database of a mysql2 pool (MariaDB, MySQL): sessions on pool connections, statements merged into one
// round trip where the pool allows several statements per query, and mysql2's error codes.
import type { IsolationLevel, SqlExecutor } from '../../types.ts';
import type { Pool, PoolConnection } from './pool.ts';
import { beginTransaction, executorOf, runStatements } from './pool.ts';
import { classifyError, isDatabaseError } from './errors.ts';
import { acquireWithin, describeError, type Database, type DbSession } from '../database.ts';
import { mariadbEngine } from '../../sql/mariadb/engine.ts';

interface DriverError {
  errno?: unknown;
  sqlState?: unknown;
  fatal?: unknown;
}

/**
 * The server itself answered the statement with an error (it carries an SQLSTATE and the session lives on):
 * the statement did not take effect. Shutdown and killed-connection errors are excluded: they can arrive
 * after the work was done.
 */
function serverRefused(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as DriverError;
  if (typeof e.errno !== 'number' || typeof e.sqlState !== 'string' || e.fatal === true) return false;
  const kind = classifyError(error);
  return kind === 'fatal' || kind === 'deadlock' || kind === 'lock-wait-timeout' || kind === 'not-ready';
}

function mariadbSession(pool: Pool, conn: PoolConnection): DbSession {
  const plain = executorOf(conn);
  return {
    query: plain.query,
    run: (statements) => runStatements(pool, conn, statements),
    executor: (queryTimeoutMs) => executorOf(conn, queryTimeoutMs),
    async setIsolation(level: IsolationLevel) {
      // Session-wide, so each batch's START TRANSACTION needs no extra round trip to set it.
      await conn.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${level}`);
    },
    begin: (level, queryTimeoutMs) => beginTransaction(conn, level, queryTimeoutMs),
    destroy: () => conn.destroy(),
    release: () => conn.release(),
  };
}

export function mariadbDatabase(pool: Pool): Database {
  return {
    engine: mariadbEngine,
    executor: (queryTimeoutMs) => executorOf(pool, queryTimeoutMs),
    async session(acquireTimeoutMs) {
      const conn = await acquireWithin(pool.getConnection(), acquireTimeoutMs, (late) => late.release());
      return mariadbSession(pool, conn);
    },
    async transaction<T>(isolation: IsolationLevel, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const conn = await pool.getConnection();
      let broken = false;
      try {
        await beginTransaction(conn, isolation);
        const result = await work(executorOf(conn));
        await conn.query('COMMIT');
        return result;
      } catch (error) {
        // A connection whose ROLLBACK fails is in an unknown state: closing it makes the server roll back.
        await conn.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        if (broken) conn.destroy();
        else conn.release();
      }
    },
    classify: classifyError,
    isDatabaseError,
    refused: serverRefused,
    describe: describeError,
    onIdleError(listener) {
      (pool as unknown as NodeJS.EventEmitter).on?.('error', listener);
    },
    end: () => pool.end(),
  };
}
