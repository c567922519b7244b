// The chaos load's raw SQL publishers: clients that bypass the HTTP server and INSERT into the topic table
// themselves, one row per autocommit statement (optionally, every Nth in a transaction held open), the way any other program sharing the topic may publish. They
// do not batch, do not cooperate with the worker and hold their connection across faults, which is what the
// offset consumer's gap proof must cope with. Each INSERT is the message the server publishes (payload
// counter_uuid, metadata request_id), with its own request id and counter, and is recorded in the history like
// an HTTP request, so the checker covers both kinds of publisher the same way.
import { classifyError } from '../../system/db/mariadb/errors.ts';
import { openDatabase } from '../../system/db/openDatabase.ts';
import { checkDatabaseUrl, redactDatabaseUrl } from '../../system/db/databaseUrl.ts';
import type { DbSession } from '../../system/db/database.ts';
import { incrementMessage } from '../../system/counterPublish.ts';
import type { HistoryPhase, RequestAttempt } from './history.ts';
import type { AttemptResult } from './historyLoad.ts';
import { CASE_NAME, CASE_NAME_WHAT, counterUuidFor } from './historyLoad.ts';
import { intInRange, matches, nonEmptyString, numberAtLeast, oneOf } from '../../validate.ts';
import { TOPIC_MODES } from '../../system/pubsub/types.ts';

export interface RawPublishLoadOptions {
  /** The database itself (not the workers' proxy): mysql:// or postgres://user@127.0.0.1:<port>/<db>. */
  mysqlUrl: string;
  /**
   * More servers to publish through, each with the same credentials (the other nodes of a cluster): INSERT n
   * goes to [mysqlUrl, ...alsoUrls][n % count], so every node allocates offsets. Absent: mysqlUrl alone.
   */
  alsoUrls?: readonly string[];
  mode: 'offset' | 'queue';
  topic: string;
  /** Request ids are `<caseName>-raw-<n>`, counters are those of case `<caseName>-raw`: none collides with HTTP's. */
  caseName: string;
  requests: number;
  /** Connections, each doing one INSERT at a time. */
  publishers: number;
  /** Offered rate over all publishers; 0 = as fast as they go. */
  ratePerSecond: number;
  /** 0: one counter per request, so the checker names the exact message of any violation. */
  counters: number;
  /**
   * Every holdEvery-th INSERT (0: none) runs in an explicit transaction held open holdMs before its COMMIT,
   * as a slow application transaction publishing into the topic would: its offset stays uncommitted while
   * later ones commit, which is the out-of-order commit every offset reader must wait for.
   */
  holdEvery: number;
  holdMs: number;
  /** An INSERT with no answer after this is `unknown` (ms). */
  queryTimeoutMs: number;
  connectTimeoutMs: number;
  phase: HistoryPhase;
  /** The clock of the case: attempt times are `now() - t0` (ms). */
  t0: number;
  onAttempt?: (attempt: RequestAttempt) => void;
  /** Stops sending new INSERTs (those in flight finish). */
  signal?: AbortSignal;
}

export const DEFAULT_RAW_PUBLISH_LOAD_OPTIONS: Omit<RawPublishLoadOptions, 'mysqlUrl' | 'caseName' | 't0'> = {
  mode: 'offset',
  topic: 'counter',
  requests: 1_000,
  // 16: the number of raw `mariadb` clients with which a 300 ms stall after allocation lost 16-17 of 2,400
  // messages under the INNODB_TRX-only gap rule.
  publishers: 16,
  ratePerSecond: 0,
  counters: 0,
  holdEvery: 0,
  holdMs: 0,
  // The same limit as the HTTP load's: an INSERT into a database that is being restarted fails or answers
  // well within it; longer means a hung connection, and its outcome is unknown either way.
  queryTimeoutMs: 10_000,
  connectTimeoutMs: 5_000,
  phase: 'load',
};

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function validateRawPublishLoadOptions(o: RawPublishLoadOptions): RawPublishLoadOptions {
  const c = 'raw publish load';
  nonEmptyString(c, 'mysqlUrl', o.mysqlUrl);
  checkDatabaseUrl(o.mysqlUrl);
  const url = new URL(o.mysqlUrl);
  const socket = url.searchParams.has('socketPath') || url.searchParams.has('socket');
  if (!socket && !LOOPBACK.has(url.hostname.replace(/^\[|\]$/g, ''))) {
    throw new Error(`${c}: mysqlUrl must name a database on this machine (127.0.0.1, localhost or ::1; got ${redactDatabaseUrl(o.mysqlUrl)})`);
  }
  oneOf(c, 'mode', o.mode, TOPIC_MODES);
  nonEmptyString(c, 'topic', o.topic);
  matches(c, 'caseName', o.caseName, CASE_NAME, CASE_NAME_WHAT);
  intInRange(c, 'requests', o.requests, 0, 10_000_000);
  intInRange(c, 'publishers', o.publishers, 1, 256);
  numberAtLeast(c, 'ratePerSecond', o.ratePerSecond, 0);
  intInRange(c, 'counters', o.counters, 0, 10_000_000);
  intInRange(c, 'holdEvery', o.holdEvery, 0, 10_000_000);
  intInRange(c, 'holdMs', o.holdMs, 0, 60_000);
  intInRange(c, 'queryTimeoutMs', o.queryTimeoutMs, 100, 600_000);
  intInRange(c, 'connectTimeoutMs', o.connectTimeoutMs, 100, 600_000);
  return o;
}

/** The request id of raw INSERT number `n` of a case. */
export function rawRequestId(caseName: string, n: number): string {
  return `${caseName}-raw-${n}`;
}

/**
 * Where an attempt failed: before anything that could publish reached the database (connect, START
 * TRANSACTION), at the INSERT, or at the COMMIT of a held transaction.
 */
export type SqlAttemptStage = 'connect' | 'begin' | 'insert' | 'commit';

interface DriverError {
  code?: string;
  errno?: number;
  sqlState?: string;
  fatal?: boolean;
}

/**
 * No error: ok (an autocommit INSERT that returned, or a COMMIT that returned, has committed). A failed
 * connect or START TRANSACTION: fail (no row was sent). After the INSERT was sent, only an error the server
 * answered for the statement itself is definite: a failing statement is rolled back (deadlock, lock wait
 * timeout, a rejected value), and a held transaction whose INSERT failed is never committed (its connection
 * is closed, which rolls it back). A lost connection, a timeout, a killed query or a server shutting down may
 * have come after the commit, and so may any error at COMMIT: unknown.
 */
export function classifySqlAttempt(stage: SqlAttemptStage, error: unknown, refused: (error: unknown) => boolean = mariadbRefused): AttemptResult {
  if (error === undefined) return { outcome: 'ok' };
  const e = (typeof error === 'object' && error !== null ? error : {}) as DriverError;
  const code = e.code ?? (error instanceof Error ? error.message : String(error));
  if (stage === 'connect' || stage === 'begin') return { outcome: 'fail', error: code };
  if (stage === 'commit') return { outcome: 'unknown', error: code };
  return { outcome: refused(error) ? 'fail' : 'unknown', error: code };
}

/** mysql2's shape of "the server answered this statement with an error that undid it" (Database.refused on PostgreSQL). */
function mariadbRefused(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as DriverError;
  const answeredByServer = e.sqlState !== undefined && e.errno !== undefined && e.fatal !== true;
  const kind = classifyError(error);
  return answeredByServer && (kind === 'deadlock' || kind === 'lock-wait-timeout' || kind === 'fatal');
}

export interface RawPublishLoadResult {
  attempts: RequestAttempt[];
  durationMs: number;
}

export async function runRawPublishLoad(options: RawPublishLoadOptions): Promise<RawPublishLoadResult> {
  const o = validateRawPublishLoadOptions(options);
  const counterCase = `${o.caseName}-raw`;
  // Either engine: the INSERT is the engine's publish statement, as any program sharing the topic would send it.
  const urls = [o.mysqlUrl, ...(o.alsoUrls ?? [])];
  for (const url of urls.slice(1)) {
    nonEmptyString('raw publish load', 'alsoUrls', url);
    checkDatabaseUrl(url);
  }
  const databases = urls.map((url) => openDatabase({ url, connectionLimit: Math.ceil(o.publishers / urls.length) + 1, connectTimeoutMs: o.connectTimeoutMs, role: 'raw-publisher' }));
  for (const d of databases) d.onIdleError(() => undefined);
  const database = databases[0]!;
  const refused = database.engine.name === 'mariadb' ? mariadbRefused : (error: unknown) => database.refused(error);
  const attempts: RequestAttempt[] = [];
  const started = performance.now();
  let next = 0;

  const record = (requestId: string, counterUuid: string, startMs: number, result: AttemptResult): void => {
    const a: RequestAttempt = {
      requestId,
      counterUuid,
      attempt: 1,
      ...result,
      via: 'sql',
      phase: o.phase,
      startMs: round(startMs),
      endMs: round(performance.now() - o.t0),
    };
    attempts.push(a);
    o.onAttempt?.(a);
  };

  const publishOne = async (n: number): Promise<void> => {
    const requestId = rawRequestId(o.caseName, n);
    const counterUuid = counterUuidFor(counterCase, o.counters === 0 ? n : n % o.counters);
    const startMs = performance.now() - o.t0;
    const target = databases[n % databases.length]!;
    let conn: DbSession;
    try {
      conn = await target.session();
    } catch (error) {
      record(requestId, counterUuid, startMs, classifySqlAttempt('connect', error, refused));
      return;
    }
    const messages = [incrementMessage({ counterUuid, requestId }, false)];
    const held = o.holdEvery > 0 && (n + 1) % o.holdEvery === 0;
    let stage: SqlAttemptStage = 'begin';
    try {
      // READ COMMITTED: a single INSERT reads nothing, and it takes no gap locks that would block others.
      if (held) await conn.begin('READ COMMITTED');
      stage = 'insert';
      await database.engine.publish(conn.executor(o.queryTimeoutMs), { topic: o.topic, mode: o.mode, messages });
      if (held) {
        await sleep(o.holdMs);
        stage = 'commit';
        await conn.query('COMMIT');
      }
      conn.release();
      record(requestId, counterUuid, startMs, classifySqlAttempt(stage, undefined, refused));
    } catch (error) {
      // A connection in an unknown state is not given back to the pool (closing it rolls back whatever it
      // had not committed): the next INSERT gets a fresh one.
      conn.destroy();
      record(requestId, counterUuid, startMs, classifySqlAttempt(stage, error, refused));
    }
  };

  const publisher = async (): Promise<void> => {
    for (;;) {
      if (o.signal?.aborted === true) return;
      const n = next;
      if (n >= o.requests) return;
      next += 1;
      if (o.ratePerSecond > 0) {
        const wait = started + (n * 1000) / o.ratePerSecond - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await publishOne(n);
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(o.publishers, Math.max(1, o.requests)) }, () => publisher()));
  } finally {
    await Promise.all(databases.map((d) => d.end().catch(() => undefined)));
  }
  return { attempts, durationMs: performance.now() - started };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
