// The Database of a node-postgres pool: sessions on checked-out clients, one statement per round trip (the
// driver sends one statement per query when values are bound, and waits for each answer before the next), and
// PostgreSQL's SQLSTATEs.
//
// Separate round trips, not multi-statement text: a consume transaction here takes 6 (BEGIN, the read, SAVEPOINT,
// the upsert, the ack, COMMIT). Sending BEGIN + read + SAVEPOINT and ack + COMMIT as simple-query text (3 round
// trips, its values inlined as literals) was measured with scripts/pgConsumeRoundTrips.ts (private PostgreSQL
// 15, durable settings, load average 14-17, 3 s alternating samples over a 600,000-message backlog): at batch
// 1,000, 1.04x and 1.07x the msgs/s (65,000 vs 67,667; 73,000 vs 78,333); at batch 1, commit-bound and noisy
// (1.47x and 0.61x, 120-195 msgs/s). A few percent at the worker's default batch does not pay for inlining
// values into SQL text, so every value stays bound and each text is one statement.

import type { IsolationLevel, SqlExecutor } from '../../types.ts';
import type { PoolClient } from 'pg';
import { acquireWithin, type Database, type DbSession } from '../database.ts';
import { postgresEngine } from '../../sql/postgres/engine.ts';
import { inPgTransaction, type PgPool } from './pool.ts';
import { classifyPgError, describePgError } from './errors.ts';

/** A server's own error: node-postgres gives it a severity and a five-character SQLSTATE. */
function fromServer(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; severity?: unknown };
  return typeof e.severity === 'string' && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code);
}

/**
 * Refused: the server answered with an ERROR (not FATAL or PANIC, which end the session) of a class that takes
 * no effect: a failed statement, a deadlock or serialization failure, a lock or statement timeout.
 */
function pgRefused(error: unknown): boolean {
  if (!fromServer(error) || (error as { severity: string }).severity !== 'ERROR') return false;
  const kind = classifyPgError(error);
  return kind === 'fatal' || kind === 'deadlock' || kind === 'lock-wait-timeout';
}

function executorOn(target: PgPool | PoolClient, queryTimeoutMs?: number): SqlExecutor {
  return {
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      // query_timeout is node-postgres's own timer: the caller sees an error, the statement may still run, and
      // the client stays busy until its answer arrives (callers holding a session then destroy it).
      const result = queryTimeoutMs === undefined ? await target.query(sql, values) : await target.query({ text: sql, values, query_timeout: queryTimeoutMs } as never);
      return (result as { rows: unknown }).rows as T;
    },
  };
}

function pgSession(client: PoolClient): DbSession {
  let broken: Error | undefined;
  // A checked-out client whose server goes away emits 'error' besides failing the query in flight; without a
  // listener that is an uncaught exception. The failed query reports it; release() then destroys the client.
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  const plain = executorOn(client);
  const done = (destroy: boolean): void => {
    client.off('error', onError);
    client.release(destroy ? (broken ?? true) : broken);
  };
  return {
    query: plain.query,
    async run(statements) {
      const results: unknown[] = [];
      for (const s of statements) results.push((await client.query(s.sql, s.values)).rows);
      return results;
    },
    executor: (queryTimeoutMs) => executorOn(client, queryTimeoutMs),
    async setIsolation(level: IsolationLevel) {
      await client.query(`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ${level}`);
    },
    async begin(level, queryTimeoutMs) {
      await executorOn(client, queryTimeoutMs).query(`BEGIN ISOLATION LEVEL ${level}`);
    },
    destroy: () => done(true),
    release: () => done(false),
  };
}

/**
 * node-postgres queues every caller waiting for a connection, without bound; mysql2 refuses one beyond its
 * queueLimit with "Queue limit reached.". The same bound here, checked before the pool is asked: with
 * `queueLimit` callers already waiting, the next one fails at once instead of adding to a queue that a hung
 * database never drains (0 = no bound).
 */
function checkQueue(pool: PgPool, queueLimit: number): void {
  if (queueLimit > 0 && pool.waitingCount >= queueLimit) {
    throw new Error(`Queue limit reached: ${pool.waitingCount} callers already wait for one of ${pool.totalCount} PostgreSQL connections`);
  }
}

export function postgresDatabase(pool: PgPool, queueLimit = 0): Database {
  const onPool = executorOn(pool);
  return {
    engine: postgresEngine,
    executor(queryTimeoutMs) {
      const run = queryTimeoutMs === undefined ? onPool : executorOn(pool, queryTimeoutMs);
      if (queueLimit === 0) return run;
      return {
        query<T>(sql: string, values?: unknown[]): Promise<T> {
          checkQueue(pool, queueLimit);
          return run.query<T>(sql, values);
        },
      };
    },
    async session(acquireTimeoutMs) {
      checkQueue(pool, queueLimit);
      const client = await acquireWithin(pool.connect(), acquireTimeoutMs, (late) => late.release());
      return pgSession(client);
    },
    transaction: (isolation, work) => inPgTransaction(pool, isolation, work),
    classify: classifyPgError,
    isDatabaseError: (error) => fromServer(error) || classifyPgError(error) !== 'fatal',
    refused: pgRefused,
    describe: describePgError,
    onIdleError(listener) {
      pool.on('error', listener);
    },
    end: () => pool.end(),
  };
}
