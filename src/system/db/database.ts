// The one way the system talks to a database of either engine: a Database (a pool plus its engine's SQL and
// error rules) hands out executors, sessions (one connection held for a consume loop or a publish) and
// transactions at an isolation level. The pub/sub, the server's publish path, the worker and retention use only
// this interface, so they do not know which driver runs underneath. mariadb/database.ts and
// postgres/database.ts implement it; openDatabase picks one from the URL's scheme.
import type { IsolationLevel, SqlExecutor, Statement } from '../types.ts';
import type { SqlEngine } from '../sql/engine.ts';

/** What kind of failure a database error is; one retry policy serves both engines (each classifies its own). */
export type ErrorClass = 'deadlock' | 'lock-wait-timeout' | 'connection' | 'server-restarting' | 'not-ready' | 'fatal';

/**
 * An error as a log line shows it, for either driver: `code (errno): message` for a mysql2 error, `SQLSTATE:
 * message` for a node-postgres one, the message alone for any other.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const e = error as Error & { code?: string; errno?: number };
    return e.code === undefined ? e.message : `${e.code}${e.errno === undefined ? '' : ` (${e.errno})`}: ${e.message}`;
  }
  return String(error);
}

/** One connection held by its user until release() or destroy(). */
export interface DbSession extends SqlExecutor {
  /**
   * Runs statements in order and returns each one's result (rows). On a MariaDB pool made with
   * multipleStatements they travel in one round trip; on PostgreSQL (node-postgres sends one statement per
   * query when values are bound) one after another. Either way the first failing statement raises.
   */
  run(statements: readonly Statement[]): Promise<unknown[]>;
  /** An executor on this connection whose statements fail after `queryTimeoutMs` without an answer. */
  executor(queryTimeoutMs?: number): SqlExecutor;
  /** The isolation level of every later transaction of this session. */
  setIsolation(level: IsolationLevel): Promise<void>;
  /** Starts a transaction at `level` (one transaction only). */
  begin(level: IsolationLevel, queryTimeoutMs?: number): Promise<void>;
  /** Closes the connection (it may be in an unknown state); the server rolls back what it had open. */
  destroy(): void;
  /** Returns a healthy connection to the pool. */
  release(): void;
}

export interface Database {
  readonly engine: SqlEngine;
  /** Statements on any free connection; `queryTimeoutMs` bounds each. */
  executor(queryTimeoutMs?: number): SqlExecutor;
  /** A connection of its own; fails if none comes within `acquireTimeoutMs` (when given). */
  session(acquireTimeoutMs?: number): Promise<DbSession>;
  /** `work` in one transaction at `isolation` on a connection of its own: COMMIT on success, ROLLBACK on error. */
  transaction<T>(isolation: IsolationLevel, work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** What kind of failure an error is (the retry policy is the same for every engine). */
  classify(error: unknown): ErrorClass;
  /** The error came from the database or the driver (not from a handler's own code). */
  isDatabaseError(error: unknown): boolean;
  /**
   * The server answered the statement with an error and the session lives on: the statement took no effect.
   * Errors that can arrive after the work was done (shutdown, a killed connection) are not refusals.
   */
  refused(error: unknown): boolean;
  describe(error: unknown): string;
  /**
   * The same credentials and settings on another server (`host:port`), one connection: how a cluster-wide gap
   * proof reaches the other members of a cluster. Absent where the handle was not opened from a URL.
   */
  peer?(address: string): Database;
  /** Listens for errors of idle connections (a restart, a killed session), which would otherwise be thrown. */
  onIdleError(listener: (error: unknown) => void): void;
  end(): Promise<void>;
}

/** Waits for a connection at most `timeoutMs`; one that arrives later goes back to the pool unused. */
export async function acquireWithin<C>(pending: Promise<C>, timeoutMs: number | undefined, giveBack: (late: C) => void): Promise<C> {
  if (timeoutMs === undefined) return pending;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no database connection within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } catch (error) {
    pending.then(giveBack, () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
