// Start-up of a process whose database may be restarting (a chaos fault, a compose service still booting) or
// being set up by other processes at the same moment (server and workers started together): creates the
// database and the schema the process needs, retrying connection failures and races with those other processes
// for a bounded time; any other error fails at once. Each message says which of these it was (startupFailure.ts).
import type { SqlExecutor } from '../types.ts';
import { ensureDatabaseExists, openDatabase } from './openDatabase.ts';
import { databaseUrlOf, type DatabaseUrl } from './databaseUrl.ts';
import { describeStartupError, failedStatement, sqlStateOf, startupFailureKind, startupFailureMessage } from './startupFailure.ts';
import type { Database } from './database.ts';
import type { SqlEngine } from '../sql/engine.ts';
import { Backoff } from '../backoff.ts';

/** What a process creates at start, on a connection of its own, before it serves. */
export interface StartupSchema {
  /** The set-up session's application name is `eob-<role>`, so a fault injector and pg_stat_activity see whose it is. */
  role: string;
  /** Creates what the process needs, idempotently: run again after a failure, it finishes what is missing. */
  create(db: SqlExecutor, engine: SqlEngine): Promise<void>;
}

/** An executor that tells `sent` each statement before it goes, so a failure can name the statement. */
function naming(db: SqlExecutor, sent: (sql: string) => void): SqlExecutor {
  return {
    query<T>(sql: string, values?: unknown[]): Promise<T> {
      sent(sql);
      return db.query<T>(sql, values);
    },
  };
}

export async function waitForDatabase(given: string | DatabaseUrl, timeoutMs: number, log: (line: string) => void, schema?: StartupSchema): Promise<void> {
  const url = databaseUrlOf(given);
  const engine = url.engine;
  const deadline = Date.now() + timeoutMs;
  const backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
  for (;;) {
    let sent: string | undefined;
    const tell = (sql: string): void => {
      sent = sql;
    };
    let db: Database | undefined;
    try {
      await ensureDatabaseExists(url, undefined, tell);
      if (schema !== undefined) {
        sent = undefined;
        // A lock held by another creator (or anyone) for longer than the start-up has left fails the statement
        // (PostgreSQL's lock_timeout, MariaDB's innodb_lock_wait_timeout), so the deadline below bounds the wait.
        const lockWaitTimeoutSeconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        db = openDatabase({ url, connectionLimit: 1, connectTimeoutMs: 5_000, role: schema.role, lockWaitTimeoutSeconds });
        await schema.create(naming(db.executor(), tell), db.engine);
      }
      return;
    } catch (error) {
      const kind = startupFailureKind(engine, error);
      const failure = { engine, url: url.url, kind, error, sent, gaveUpAfterMs: undefined as number | undefined };
      if (kind === 'refused') throw new Error(startupFailureMessage(failure), { cause: error });
      if (Date.now() >= deadline) throw new Error(startupFailureMessage({ ...failure, gaveUpAfterMs: timeoutMs }), { cause: error });
      const pause = backoff.next();
      const what = describeStartupError(engine, error);
      const statement = failedStatement(error, sent);
      log(
        kind === 'unreachable'
          ? `database not ${sqlStateOf(engine, error) === undefined ? 'reachable' : 'ready'} yet (${what}); retry in ${pause} ms`
          : `database set-up met another process setting up the same objects (${statement === undefined ? '' : `\`${statement}\`: `}${what}); retry in ${pause} ms`,
      );
      await new Promise((r) => setTimeout(r, pause));
    } finally {
      await db?.end().catch(() => undefined);
    }
  }
}
