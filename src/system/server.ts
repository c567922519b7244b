// The HTTP counter service (DESIGN 4.4), on node:http with no framework.
//
//   POST /count/{counterUuid}  publishes one increment message; 204 only after its INSERT committed
//   GET  /count/{counterUuid}  {"counter_uuid", "value"} (0 for a counter never incremented)
//   GET  /healthz              200 when the database answers `SELECT 1`, else 503
//   POST /noop/{counterUuid}   the same parsing and validation as POST /count, then 204 with no database work:
//                              the HTTP ceiling of this server and the load generator on this machine
//
// Every answer is JSON or empty; errors are {"error": "..."}. X-Request-Id is taken from the request (generated
// when absent) and echoed on every POST answer. A POST that did not publish is never answered 2xx, and its
// 5xx says which case it is in:
//   503 + Retry-After, {"outcome": "not-published"}: nothing was committed and nothing can commit later (the
//       queue was full, the request's time ran out while it was still queued, no connection, or the database
//       refused the statement): safe to retry even without de-duplication;
//   504, {"outcome": "unknown"}: the INSERT (or COMMIT) was sent and no answer came in time: it may have
//       committed, or may still commit; retry only with de-duplication (the same X-Request-Id).
// With de-duplication, an X-Request-Id already used for another counter answers 409 and publishes nothing.
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createPool, executorOf } from './db/pool.ts';
import type { Pool } from './db/pool.ts';
import { describeError } from './db/errors.ts';
import { MysqlPublisher } from './pubsub/mysqlPublisher.ts';
import type { TopicSchema } from './pubsub/mysqlPublisher.ts';
import { assertTopicName } from './sql/identifiers.ts';
import { selectCounterValue } from './sql/counterTable.ts';
import { MAX_DEDUP_REQUEST_ID_LENGTH } from './sql/publishDedupTable.ts';
import { NotSentError, PublishCoalescer, QueueFullError } from './publishCoalescer.ts';
import type { CoalescerStats } from './publishCoalescer.ts';
import { PublishError, publishIncrements, publishIncrementsOnce } from './counterPublish.ts';
import type { IncrementRequest, PublishOutcome } from './counterPublish.ts';
import { intInRange, nonEmptyString, oneOf, OptionsError } from '../validate.ts';

export interface ServerOptions {
  mysqlUrl: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  topic: string;
  topicSchema: TopicSchema;
  /** Gather concurrent publishes into one multi-row INSERT (see publishCoalescer.ts). */
  coalesce: boolean;
  coalesceMaxBatch: number;
  coalesceLingerMs: number;
  /** Publish de-duplication on X-Request-Id (eob_publish_dedup_<topic>): retries with the same id are safe. */
  dedup: boolean;
  /** Database connections; also the bound on coalesced flushes in flight. */
  poolSize: number;
  /**
   * Requests waiting for a flush at most (beyond the poolSize x coalesceMaxBatch in flight); more answer 503
   * + Retry-After at once.
   */
  maxQueuedPublishes: number;
  /** mysql2's per-statement timeout on the server's pool; a publish statement past it answers 504. */
  queryTimeoutMs: number;
  /** innodb_lock_wait_timeout of the server's sessions: how long a contested dedup id may wait (seconds). */
  lockWaitTimeoutSeconds: number;
  /** Callers (GET /count, /healthz) that may wait for a read connection; more answer 503 at once. */
  poolQueueLimit: number;
  /** Requests carry no body; anything above this answers 413. */
  maxBodyBytes: number;
  /**
   * A publish not answered by then: 503 if it was still queued (it leaves the queue, never sent), 504 if its
   * batch was already sent (outcome unknown; the row may still commit later).
   */
  publishTimeoutMs: number;
  healthTimeoutMs: number;
  connectTimeoutMs: number;
  /** node:http limits, see DEFAULT_HTTP_LIMITS for what each one bounds and why its value. */
  http: HttpLimits;
}

export interface HttpLimits {
  /** Time to receive a request's headers (slowloris). */
  headersTimeoutMs: number;
  /** Time to receive a whole request. */
  requestTimeoutMs: number;
  /** How often node checks the two above (node's default, 30 s, lets a slow client hold on 3x longer). */
  connectionsCheckingIntervalMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Requests on one connection before it is closed (Connection: close); 0 = no limit. */
  maxRequestsPerSocket: number;
  /** Bytes of request line + headers; more answers 431. */
  maxHeaderSize: number;
  /** Open connections at most; further ones are closed as soon as they are accepted. */
  maxConnections: number;
  /** A socket with no traffic for this long is closed whatever its state: a backstop behind the other timeouts. */
  socketIdleTimeoutMs: number;
  /** Connections the kernel holds for accept() (capped by net.core.somaxconn). */
  listenBacklog: number;
}

/**
 * Coalescing defaults, measured on this 2-core machine (MariaDB 10.11 at 127.0.0.1:3306, durable settings;
 * autocannon 100 connections on the same machine, POST /count over 1,000 counters, 8-10 s per point, points
 * interleaved, 2-3 repetitions; req/s, rows per INSERT):
 *
 * End to end, `eob worker --batch-size 1000` consuming at the same time (load average 3-6; the worker kept
 * up: every row was counted when the load stopped):
 *   no coalescing (one INSERT per request), pool 16      5,500-5,600   1 row    p99 46-56 ms
 *   maxBatch 100, linger 0 ms, pool 16                  17,800-18,100  ~27      p99 15 ms
 *   maxBatch 100, linger 1 ms, pool 16                  18,800-19,000  ~68      p99 13-14 ms
 *   maxBatch 100, linger 1 ms, pool 8                   18,500-19,100  ~67      p99 13 ms
 * Publish only (no worker, load average 2-4): every coalescing setting 22,600-24,700 req/s (pool 4/8/16,
 * linger 0/1 alike: the cores, shared with autocannon and the database, are the limit; the server process
 * was ~50% idle in a --cpu-prof); POST /noop (no database, the HTTP + load-generator ceiling) 40,000-48,000.
 * Earlier, noisier runs (load 6-10): maxBatch 20 and 250/1000 no better than 100 (batches never exceed the
 * 100 client connections anyway), linger 2 ms clearly worse (7,600-13,700).
 *
 * So: linger 1 ms, which halves the INSERTs (commits) for the same throughput and leaves the database more
 * room for the worker, at the price of at most 1 ms added latency when the server is idle; maxBatch 100;
 * pool 16. With --dedup (one transaction per batch: claim ids, INSERT, COMMIT), same defaults: 17,300 req/s
 * publish only, 13,800 end to end (one run each, load ~5).
 */
/**
 * node:http limits (node's defaults: headers 60 s, request 300 s checked every 30 s, keep-alive 5 s, no limit
 * on requests per socket or connections, 16 KiB of headers, and a connection that never sends a byte is never
 * closed). Measured on this 2-core machine (load average 8-9 from other work, so throughput figures are +-30%),
 * `eob server` as its own process on a private MariaDB, clients in another process on 127.0.0.1:
 *
 *   slowloris 3,000 half-sent requests + a 20,000-request pipeline on one socket, 100 ordinary POSTs meanwhile:
 *     these limits   100/100 answered 204, p99 702 ms, RSS 184 -> 239 MB; the pipeline got 1,000 x 204 then
 *                    19,000 x 503 (node's answer past maxRequestsPerSocket: not published)
 *     node defaults  100/100 answered 204, p99 1,422 ms, RSS 175 -> 275 MB; the pipeline got 20,000 x 204
 *   slowloris connections: all 2,000 answered 408 and closed 2-4 s after a 2 s headers timeout (1 s checks)
 *   an idle open connection costs ~13 KB of RSS (2,000 idle: +27 MB), so the 10,000 cap bounds connections
 *     at ~130 MB, under the 20,000 open files of this machine; a connection that never sends a byte gets 408
 *     and is closed at the request timeout (node 20: after 3.0 s with a 3 s one; 2,000 such connections all
 *     closed within 3.7 s)
 *   publish only, autocannon 50 connections x 6 s, interleaved: these limits 5,805 / 4,467 / 6,043 req/s,
 *     node defaults 5,005 / 4,310 / 7,659 (with --dedup 3,463 / 3,718 against 3,294 / 3,745): no difference
 *     beyond the noise; autocannon reconnects after each 1,000 requests with no error or non-2xx.
 *
 * So: headers 10 s and a whole request 15 s (this API's requests are a line and a few headers: a client that
 * needs longer is hostile or broken), checked every second so a slow client cannot hold on 30 s longer; 8 KiB
 * of headers (a request of this API needs under 1 KiB; 431 above); 1,000 requests per socket (a pipelining
 * client cannot hold the server with one connection; ordinary keep-alive clients reconnect every 1,000
 * requests, ~2.5 s at 20,000 req/s over 50 connections); 10,000 connections; a socket with no traffic closes
 * after 20 s whatever its state, a backstop behind the timeouts above (more than publishTimeoutMs, during
 * which a connection waiting for its answer is silent too); the listen
 * backlog at net.core.somaxconn's usual 4,096 so a burst of connections waits in the kernel, not in SYN
 * retries.
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  connectionsCheckingIntervalMs: 1_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxHeaderSize: 8_192,
  maxConnections: 10_000,
  socketIdleTimeoutMs: 20_000,
  listenBacklog: 4_096,
};

/**
 * Requests waiting for a flush (the queue bound). Measured with the same setup, 6,000 concurrent POSTs:
 *
 *   bound     database frozen (SIGSTOP)                                   healthy database
 *             RSS peak  answers                                          answers
 *   none      268 MB    6,000 x 503 after 10-12 s (before this bound)
 *   500       230 MB    5,982 x 503, 18 x 504                             4,500 x 204, 1,500 shed (503)
 *   2,000     235-246   5,500-5,573 x 503, 427-500 x 504                  5,974 x 204, 26 shed
 *   5,000     260 MB    4,279 x 503, 1,721 x 504
 *   20,000    261 MB    4,031 x 503, 1,969 x 504
 *   2,000, requests of a batch still waiting for its connection answered 503 (final):
 *             239 MB    5,989 x 503 (2,772 within 1 s of connecting), 11 x 504; with --dedup 244 MB, 6,000 x 503
 *
 * (RSS idle: ~175 MB, most of it the TypeScript loader.) Each queued request costs little beside its
 * connection, so the bound is chosen for latency and for how many requests a hang turns into "unknown": 2,000
 * waiting requests leave in ~0.1 s at the measured 18,000 req/s, are 40 times the bench's 50 connections, and
 * shed almost nothing of a 6,000-request burst on a healthy database. A frozen database fills the queue, the
 * rest is answered 503 at once; the queued ones leave the queue with 503 at publishTimeoutMs, and only requests
 * whose batch was already sent (at most poolSize x coalesceMaxBatch) get 504.
 */
export const DEFAULT_MAX_QUEUED_PUBLISHES = 2_000;

export const DEFAULT_SERVER_OPTIONS: Omit<ServerOptions, 'mysqlUrl'> = {
  host: '127.0.0.1',
  port: 8080,
  topic: 'counter',
  topicSchema: 'offset',
  coalesce: true,
  coalesceMaxBatch: 100,
  coalesceLingerMs: 1,
  dedup: false,
  poolSize: 16,
  maxQueuedPublishes: DEFAULT_MAX_QUEUED_PUBLISHES,
  // Statements of this server take milliseconds (p99 15 ms at 18,000 req/s); 5 s is only ever reached by a
  // hung or overloaded database, and stays under publishTimeoutMs so a hung flush frees its connection.
  queryTimeoutMs: 5_000,
  // A claim normally waits only for another batch's commit (milliseconds); 1 s is the smallest non-zero value
  // (whole seconds) and keeps a contested id from holding its batch for InnoDB's default 50 s.
  lockWaitTimeoutSeconds: 1,
  poolQueueLimit: 1_000,
  maxBodyBytes: 1024,
  publishTimeoutMs: 10_000,
  healthTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  http: DEFAULT_HTTP_LIMITS,
};

export function validateServerOptions(options: ServerOptions): ServerOptions {
  const c = 'server';
  nonEmptyString(c, 'mysqlUrl', options.mysqlUrl);
  nonEmptyString(c, 'host', options.host);
  intInRange(c, 'port', options.port, 0, 65_535);
  try {
    assertTopicName(options.topic);
  } catch (error) {
    throw new OptionsError(`${c}: ${(error as Error).message}`);
  }
  oneOf(c, 'topicSchema', options.topicSchema, ['offset', 'queue'] as const);
  intInRange(c, 'coalesceMaxBatch', options.coalesceMaxBatch, 1, 10_000);
  intInRange(c, 'coalesceLingerMs', options.coalesceLingerMs, 0, 1_000);
  intInRange(c, 'poolSize', options.poolSize, 1, 1_000);
  intInRange(c, 'maxBodyBytes', options.maxBodyBytes, 0, 1 << 20);
  intInRange(c, 'publishTimeoutMs', options.publishTimeoutMs, 1, 600_000);
  intInRange(c, 'healthTimeoutMs', options.healthTimeoutMs, 1, 600_000);
  intInRange(c, 'connectTimeoutMs', options.connectTimeoutMs, 1, 600_000);
  intInRange(c, 'maxQueuedPublishes', options.maxQueuedPublishes, 1, 10_000_000);
  intInRange(c, 'queryTimeoutMs', options.queryTimeoutMs, 1, 600_000);
  intInRange(c, 'lockWaitTimeoutSeconds', options.lockWaitTimeoutSeconds, 1, 3_600);
  intInRange(c, 'poolQueueLimit', options.poolQueueLimit, 0, 10_000_000);
  const h = options.http;
  if (typeof h !== 'object' || h === null) throw new OptionsError(`${c}: http must be an object of HTTP limits`);
  intInRange(c, 'http.headersTimeoutMs', h.headersTimeoutMs, 1, 3_600_000);
  intInRange(c, 'http.requestTimeoutMs', h.requestTimeoutMs, 1, 3_600_000);
  if (h.headersTimeoutMs > h.requestTimeoutMs) {
    throw new OptionsError(`${c}: http.headersTimeoutMs (${h.headersTimeoutMs}) must not exceed http.requestTimeoutMs (${h.requestTimeoutMs})`);
  }
  intInRange(c, 'http.connectionsCheckingIntervalMs', h.connectionsCheckingIntervalMs, 1, 3_600_000);
  intInRange(c, 'http.keepAliveTimeoutMs', h.keepAliveTimeoutMs, 1, 3_600_000);
  intInRange(c, 'http.maxRequestsPerSocket', h.maxRequestsPerSocket, 0, 1_000_000_000);
  intInRange(c, 'http.maxHeaderSize', h.maxHeaderSize, 1_024, 1 << 20);
  intInRange(c, 'http.maxConnections', h.maxConnections, 1, 10_000_000);
  intInRange(c, 'http.socketIdleTimeoutMs', h.socketIdleTimeoutMs, 1, 3_600_000);
  intInRange(c, 'http.listenBacklog', h.listenBacklog, 1, 1_000_000);
  if (h.socketIdleTimeoutMs <= options.publishTimeoutMs) {
    throw new OptionsError(
      `${c}: http.socketIdleTimeoutMs (${h.socketIdleTimeoutMs}) must exceed publishTimeoutMs (${options.publishTimeoutMs}): a connection waiting for its answer is idle meanwhile`,
    );
  }
  for (const field of ['coalesce', 'dedup'] as const) {
    if (typeof options[field] !== 'boolean') {
      throw new OptionsError(`${c}: ${field} must be true or false (got ${JSON.stringify(options[field])})`);
    }
  }
  return options;
}

export interface ServerStats {
  published: number;
  duplicates: number;
  /** 409: the request id was bound to another counter. */
  conflicts: number;
  /** 503 not-published (queue full included). */
  notPublished: number;
  /** 504 unknown outcome. */
  unknownOutcomes: number;
  coalescer: CoalescerStats;
}

export interface CounterServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly stats: ServerStats;
  /** Stops accepting, answers the requests in hand (flushing the coalescer), then closes the pool. */
  close(): Promise<void>;
}

export interface ServerHooks {
  /** One-line logs (errors, throttled); defaults to stderr. */
  log?: (line: string) => void;
}

const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Visible ASCII only: the id goes into JSON metadata and logs, and, with dedup, into a VARCHAR key. */
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Grace for keep-alive connections to finish on close before they are cut. */
const CLOSE_GRACE_MS = 5_000;
/** A hung database is usually back (or restarted) within seconds; clients that honour it spread their retries. */
const RETRY_AFTER_SECONDS = '1';
/** Connections for GET /count and /healthz: light statements, and a bound on what a hung database holds. */
const READ_POOL_SIZE = 4;

type Route =
  | { kind: 'count'; id: string }
  | { kind: 'noop'; id: string }
  | { kind: 'healthz' };

const ALLOWED: Record<Route['kind'], string> = { count: 'GET, POST', noop: 'POST', healthz: 'GET' };

function route(rawUrl: string): Route | undefined {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (path === '/healthz') return { kind: 'healthz' };
  for (const kind of ['count', 'noop'] as const) {
    const prefix = `/${kind}/`;
    if (path.startsWith(prefix)) {
      const id = path.slice(prefix.length);
      if (id === '' || id.includes('/')) return undefined;
      return { kind, id };
    }
  }
  return undefined;
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Logs the first error of a kind at once, then at most one summary line per interval. */
function throttledLog(log: (line: string) => void, intervalMs = 5_000): (message: string) => void {
  let lastAt = 0;
  let suppressed = 0;
  return (message) => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed += 1;
      return;
    }
    log(suppressed > 0 ? `${message} (and ${suppressed} more errors since the last line)` : message);
    lastAt = now;
    suppressed = 0;
  };
}

type BodyCheck = 'ok' | 'too-large' | 'aborted';

/** Reads and discards the body, stopping at the first byte over `limit`. */
function checkBody(req: IncomingMessage, limit: number): BodyCheck | Promise<BodyCheck> {
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > limit) return 'too-large';
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return 'ok';
  return new Promise((resolve) => {
    let seen = 0;
    const settle = (result: BodyCheck): void => {
      req.removeAllListeners('data');
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) {
        req.pause();
        settle('too-large');
      }
    });
    req.on('end', () => settle('ok'));
    req.on('error', () => settle('aborted'));
    req.on('aborted', () => settle('aborted'));
  });
}

export async function startCounterServer(options: ServerOptions, hooks: ServerHooks = {}): Promise<CounterServer> {
  validateServerOptions(options);
  const log = hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const logError = throttledLog(log);
  // Publishing has its own pool, used only by flushes (at most poolSize at once), so reads and health checks
  // hung on a frozen database can never take the connections publishing needs.
  const pool: Pool = createPool({
    url: options.mysqlUrl,
    connectionLimit: options.poolSize,
    connectTimeoutMs: options.connectTimeoutMs,
    role: 'server',
    lockWaitTimeoutSeconds: options.lockWaitTimeoutSeconds,
  });
  const readPool: Pool = createPool({
    url: options.mysqlUrl,
    connectionLimit: READ_POOL_SIZE,
    connectTimeoutMs: options.connectTimeoutMs,
    role: 'server',
    queueLimit: options.poolQueueLimit,
  });
  // mysql2 pools emit 'error' for connections that die while idle; without a listener that would crash.
  for (const p of [pool, readPool]) {
    (p as unknown as NodeJS.EventEmitter).on?.('error', (error: unknown) => logError(`server: pool: ${describeError(error)}`));
  }
  // A timed-out read fails its caller; mysql2 keeps the connection busy until the late answer arrives, then
  // returns it to the pool, so a hung database holds at most READ_POOL_SIZE connections here.
  const db = executorOf(readPool, options.queryTimeoutMs);
  const publisher = new MysqlPublisher(executorOf(pool, options.queryTimeoutMs), options.topicSchema);
  const limits = { queryTimeoutMs: options.queryTimeoutMs, acquireTimeoutMs: options.connectTimeoutMs };

  const flushBatch = (requests: readonly IncrementRequest[]): Promise<PublishOutcome[]> =>
    options.dedup
      ? publishIncrementsOnce(pool, publisher, options.topic, requests, limits)
      : publishIncrements(pool, publisher, options.topic, requests, limits);
  // Without coalescing, batches of one: the queue bound and the withdrawal of timed-out requests still apply.
  const coalescer = new PublishCoalescer<IncrementRequest, PublishOutcome>(
    {
      maxBatch: options.coalesce ? options.coalesceMaxBatch : 1,
      lingerMs: options.coalesce ? options.coalesceLingerMs : 0,
      maxInFlight: options.poolSize,
      maxQueued: options.maxQueuedPublishes,
    },
    flushBatch,
  );

  const stats: ServerStats = { published: 0, duplicates: 0, conflicts: 0, notPublished: 0, unknownOutcomes: 0, coalescer: coalescer.stats };
  let closing = false;
  let inFlight = 0;

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      ...(closing ? { Connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  };
  const sendEmpty = (res: ServerResponse, status: number, headers: http.OutgoingHttpHeaders): void => {
    res.writeHead(status, closing ? { ...headers, Connection: 'close' } : headers);
    res.end();
  };

  const handlePost = (res: ServerResponse, req: IncomingMessage, kind: 'count' | 'noop', id: string): void => {
    const header = req.headers['x-request-id'];
    let requestId: string;
    if (header === undefined) requestId = randomUUID();
    else if (typeof header === 'string' && REQUEST_ID_PATTERN.test(header)) requestId = header;
    else {
      sendJson(res, 400, { error: 'X-Request-Id must be 1-128 visible ASCII characters, given once' });
      return;
    }
    if (!UUID_PATTERN.test(id)) {
      sendJson(res, 400, { error: `counter uuid must look like 123e4567-e89b-42d3-a456-426614174000 (got "${id.slice(0, 64)}")` }, { 'X-Request-Id': requestId });
      return;
    }
    if (options.dedup && requestId.length > MAX_DEDUP_REQUEST_ID_LENGTH) {
      sendJson(res, 400, { error: `with publish de-duplication X-Request-Id must be at most ${MAX_DEDUP_REQUEST_ID_LENGTH} characters (it becomes the message uuid); got ${requestId.length}` }, { 'X-Request-Id': requestId });
      return;
    }
    if (kind === 'noop') {
      sendEmpty(res, 204, { 'X-Request-Id': requestId });
      return;
    }
    // Counter ids are stored lower-case, so 'ABC…' and 'abc…' count as the same counter.
    const gate = { sent: false, cancelled: false };
    const request: IncrementRequest = { counterUuid: id.toLowerCase(), requestId, gate };
    const notPublished = (why: string): void => {
      stats.notPublished += 1;
      sendJson(res, 503, { error: `not published: ${why}; nothing was recorded, retrying is safe`, outcome: 'not-published' }, { 'X-Request-Id': requestId, 'Retry-After': RETRY_AFTER_SECONDS });
    };
    const unknown = (why: string): void => {
      stats.unknownOutcomes += 1;
      sendJson(
        res,
        504,
        { error: `outcome unknown: ${why}; the increment may or may not have been recorded (retry with the same X-Request-Id under --dedup)`, outcome: 'unknown' },
        { 'X-Request-Id': requestId },
      );
    };
    const failed = (error: unknown): void => {
      if (error instanceof QueueFullError) {
        // Shedding is the designed answer to overload: counted in the stats, not logged per request.
        notPublished(error.message);
        return;
      }
      logError(`server: publish failed: ${describeError(error)}`);
      if (error instanceof NotSentError) notPublished(error.message);
      else if (error instanceof PublishError && error.outcome === 'not-published') notPublished(`the database refused or could not be reached (${error.message})`);
      else unknown(`the database did not answer (${describeError(error)})`);
    };
    inFlight += 1;
    let answered = false;
    const timer = setTimeout(() => {
      answered = true;
      // Still queued: it leaves the queue. In a batch that has sent nothing yet (waiting for a connection): it is
      // left out of it. Either way it is never sent. Otherwise its batch is at the database.
      if (coalescer.withdraw(request)) notPublished(`not sent to the database within ${options.publishTimeoutMs} ms (database slow or hung)`);
      else if (!gate.sent) {
        gate.cancelled = true;
        notPublished(`no database connection within ${options.publishTimeoutMs} ms (database slow or hung)`);
      } else unknown(`sent to the database, no answer within ${options.publishTimeoutMs} ms`);
      inFlight -= 1;
    }, options.publishTimeoutMs);
    coalescer.submit(request).then(
      (outcome) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        inFlight -= 1;
        switch (outcome.kind) {
          case 'published':
            stats.published += 1;
            sendEmpty(res, 204, { 'X-Request-Id': requestId });
            break;
          case 'duplicate':
            stats.duplicates += 1;
            sendEmpty(res, 204, { 'X-Request-Id': requestId, 'X-Publish-Duplicate': '1' });
            break;
          case 'conflict':
            stats.conflicts += 1;
            sendJson(
              res,
              409,
              { error: `X-Request-Id ${requestId} was already used for counter ${outcome.boundCounterUuid}; a request id names one request, use a new one for another counter`, outcome: 'not-published' },
              { 'X-Request-Id': requestId },
            );
            break;
          case 'failed':
            failed(outcome.error);
            break;
        }
      },
      (error: unknown) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        inFlight -= 1;
        failed(error);
      },
    );
  };

  const handleGetCount = (res: ServerResponse, id: string): void => {
    if (!UUID_PATTERN.test(id)) {
      sendJson(res, 400, { error: `counter uuid must look like 123e4567-e89b-42d3-a456-426614174000 (got "${id.slice(0, 64)}")` });
      return;
    }
    const counterUuid = id.toLowerCase();
    inFlight += 1;
    withTimeout(selectCounterValue(db, counterUuid), options.publishTimeoutMs, 'counter read')
      .then(
        (value) => sendJson(res, 200, { counter_uuid: counterUuid, value: value ?? 0 }),
        (error: unknown) => {
          logError(`server: counter read failed: ${describeError(error)}`);
          sendJson(res, 503, { error: `database unavailable: ${describeError(error)}` }, { 'Retry-After': '1' });
        },
      )
      .finally(() => {
        inFlight -= 1;
      });
  };

  const queueReport = () => ({
    depth: coalescer.queued,
    bound: coalescer.bound,
    inFlight: coalescer.inFlightItems,
    flushesInFlight: coalescer.flushesInFlight,
    shed: coalescer.stats.shed,
    expired: coalescer.stats.withdrawn,
  });

  const handleHealth = (res: ServerResponse): void => {
    inFlight += 1;
    withTimeout(db.query('SELECT 1'), options.healthTimeoutMs, 'database ping')
      .then(
        () => sendJson(res, closing ? 503 : 200, { status: closing ? 'closing' : 'ok', queue: queueReport() }),
        (error: unknown) => sendJson(res, 503, { status: 'unavailable', error: describeError(error), queue: queueReport() }),
      )
      .finally(() => {
        inFlight -= 1;
      });
  };

  const dispatch = (req: IncomingMessage, res: ServerResponse, target: Route): void => {
    const method = req.method ?? 'GET';
    if (target.kind === 'healthz') {
      if (method === 'GET') handleHealth(res);
      else sendJson(res, 405, { error: `${method} is not allowed on /healthz` }, { Allow: ALLOWED.healthz });
    } else if (method === 'POST') {
      handlePost(res, req, target.kind, target.id);
    } else if (method === 'GET' && target.kind === 'count') {
      handleGetCount(res, target.id);
    } else {
      sendJson(res, 405, { error: `${method} is not allowed on /${target.kind}/{counterUuid}` }, { Allow: ALLOWED[target.kind] });
    }
  };

  const httpLimits = options.http;
  const httpServer = http.createServer({
    headersTimeout: httpLimits.headersTimeoutMs,
    requestTimeout: httpLimits.requestTimeoutMs,
    connectionsCheckingInterval: httpLimits.connectionsCheckingIntervalMs,
    keepAliveTimeout: httpLimits.keepAliveTimeoutMs,
    maxHeaderSize: httpLimits.maxHeaderSize,
  }, (req, res) => {
    const target = route(req.url ?? '/');
    if (target === undefined) {
      sendJson(res, 404, { error: `no such path: ${(req.url ?? '').slice(0, 128)} (try POST /count/{counterUuid}, GET /count/{counterUuid}, GET /healthz)` });
      return;
    }
    const body = checkBody(req, options.maxBodyBytes);
    const proceed = (result: BodyCheck): void => {
      if (result === 'ok') dispatch(req, res, target);
      else if (result === 'too-large') {
        // Connection: close, so the unread rest of the body is not parsed as the next request.
        sendJson(res, 413, { error: `request body over ${options.maxBodyBytes} bytes; these endpoints take no body` }, { Connection: 'close' });
      }
      // aborted: the client is gone, nobody to answer.
    };
    if (typeof body === 'string') proceed(body);
    else void body.then(proceed);
  });

  httpServer.maxRequestsPerSocket = httpLimits.maxRequestsPerSocket;
  httpServer.maxConnections = httpLimits.maxConnections;
  httpServer.setTimeout(httpLimits.socketIdleTimeoutMs, (socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      void pool.end().catch(() => undefined);
      void readPool.end().catch(() => undefined);
      if (error.code === 'EADDRINUSE') {
        reject(new Error(`port ${options.port} on ${options.host} is already in use; stop what listens there or pass another --port`));
      } else if (error.code === 'EADDRNOTAVAIL') {
        reject(new Error(`cannot listen on ${options.host}: no such local address; pass --host 127.0.0.1`));
      } else reject(error);
    };
    httpServer.once('error', onError);
    httpServer.listen({ port: options.port, host: options.host, backlog: httpLimits.listenBacklog }, () => {
      httpServer.off('error', onError);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const serverClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      // Requests already queued in the coalescer are flushed and answered; new ones on kept-alive
      // connections are refused by the closed coalescer (503) and their connections closed. Every wait is
      // bounded: a hung database must not make SIGTERM hang (its requests then end without an answer, an
      // outcome the client already treats as unknown).
      const deadline = Date.now() + CLOSE_GRACE_MS;
      const untilDeadline = <T>(p: Promise<T>): Promise<T | undefined> =>
        Promise.race([
          p,
          new Promise<undefined>((r) => {
            setTimeout(() => r(undefined), Math.max(0, deadline - Date.now())).unref();
          }),
        ]);
      await untilDeadline(coalescer.close());
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      httpServer.closeIdleConnections();
      const force = setTimeout(() => httpServer.closeAllConnections(), Math.max(0, deadline - Date.now()));
      await serverClosed;
      clearTimeout(force);
      await untilDeadline(Promise.all([pool.end().catch(() => undefined), readPool.end().catch(() => undefined)]));
    })();
    return closed;
  };

  return { url: `http://${hostForUrl}:${address.port}`, port: address.port, stats, close };
}
