// The HTTP server's options: what each means, the defaults with the measurements that chose them, the
// validation that names a bad field, and the server's public types (stats, the running server, hooks).
import type { TopicMode } from '../types.ts';
import { assertTopicName } from '../sql/topicName.ts';
import { databaseUrlOf, type DatabaseUrl } from '../db/databaseUrl.ts';
import type { CoalescerStats } from '../publishCoalescer.ts';
import { intInRange, nonEmptyString, oneOf, OptionsError } from '../../validate.ts';

export interface ServerOptions {
  /**
   * The database: mysql:// (MariaDB, MySQL) or postgres:// (PostgreSQL); the scheme picks the engine. The
   * command passes the URL it parsed at its start; a string is parsed once, by validateServerOptions.
   */
  databaseUrl: string | DatabaseUrl;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  topic: string;
  topicSchema: TopicMode;
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
  /**
   * Publishes one connection may have unanswered (queued or in flight) at once; more on that connection answer
   * 503 + Retry-After at once, so a client pipelining thousands of requests on one socket fills its own share
   * of the queue, not everyone's. A client that waits for each answer (HTTP/1.1 without pipelining) holds one.
   */
  maxPublishesPerConnection: number;
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
  /** GET /metrics (Prometheus text); off, the request path skips its clock readings and observations. */
  metrics: boolean;
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
 * That chose linger 1 ms and pool 16. Measured again on a quiet machine (load average under 3, the same
 * 2-core machine, private MariaDB 10.11 with durable settings), the worker consuming, points interleaved with
 * the order rotated, msgs/s median (range), rows per INSERT:
 *   wrk 64 connections x 8 s, 4 runs:   pool 16, linger 1 ms   17,579 (15,016-19,953)  28 rows  72.4 us/msg
 *                                        pool 2, linger 0       19,307 (18,066-20,410)  19 rows  71.6 us/msg
 *                                        pool 2, linger 1 ms    17,680 (17,484-18,981)  28 rows
 *                                        pool 3, linger 0       18,752 (18,602-19,168)  16 rows
 *   autocannon 50 connections, 3 runs, end to end / POST /noop of the same run: pool 16 linger 1 ms 0.42
 *   (0.38-0.45), pool 2 linger 0 0.48 (0.42-0.49)
 *   publish only, wrk, 2 runs: pool 16 linger 1 ms 22,499 and 21,880 req/s; pool 2 linger 0 24,966 and 29,518
 *   publish only with --dedup: pool 16 linger 1 ms 12,660 and 11,744; pool 2 linger 0 10,765 and 12,980;
 *   pool 4 linger 0 13,456 and 14,571
 * With 16 slots nearly always free, every batch waited out its linger: in a closed loop of 50-64 clients that
 * is 1 ms added to every request's turn, with the cores idle meanwhile (a system-wide profile of the pool-16
 * default showed them 22 % idle at full load). With 2 slots and no linger a batch leaves at once when a slot is
 * free, and while both are busy the next batch grows behind them: the database's round trip is the linger.
 * So: pool 2, linger 0 (with --dedup, whose batches take three round trips, --pool-size 4 did better in the
 * two runs above); maxBatch 100.
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
 * of headers (a request of this API needs under 1 KiB; 431 above); no limit of requests per socket (node's
 * default; 1,000 was tried and dropped: in `eob bench --profile quick`, three runs interleaved with the commit
 * before the limits, autocannon's 50 keep-alive connections got 80,581 non-2xx answers (node's 503 past the
 * limit) in one 8 s end-to-end point, which published 9,980 req/s against 14,625-15,140 before, and the HTTP
 * ceiling fell from 38,813-43,569 to 16,611 req/s; without it a pipelining client is served in order on its
 * one socket: with all of node's defaults the 20,000-request pipeline above was answered in full while the
 * ordinary POSTs still got 100/100; `--max-requests-per-socket` sets a limit where clients are known to
 * reconnect cleanly); 10,000 connections; a socket with no traffic closes
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
  maxRequestsPerSocket: 0,
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

/**
 * Publishes one connection may hold (see ServerOptions.maxPublishesPerConnection). Measured in one process
 * with the other defaults (pool 2, 100 rows per INSERT, queue 2,000) on a private MariaDB, load average 15-17
 * from other work: one socket pipelines 20,000 POST /count while 100 ordinary POSTs (20 at a time, one per
 * connection) are sent; two runs per bound:
 *
 *   bound    ordinary POSTs           ordinary p50 / max      pipeline answered 204 (the rest 503)
 *   10       100 x 204, 100 x 204     84 / 1,001, 119 / 232   360, 360
 *   100      100 x 204, 100 x 204     54 / 155, 134 / 318     3,600, 3,600
 *   500      100 x 204, 100 x 204     72 / 124, 43 / 68       10,099, 12,602
 *   2,200    95 x 204 + 5 x 503 both  333 / 437, 384 / 482    16,812, 17,017   (no bound: queue + in flight)
 *
 * Every bound up to 500 kept the ordinary clients whole; the bound is then about how many pipelining clients
 * it takes to fill the shared queue: at 100 (one full INSERT's worth) it takes 20, at 500 only 4. Clients that
 * wait for each answer (the bench's autocannon and wrk connections) hold one publish and never reach it.
 */
export const DEFAULT_MAX_PUBLISHES_PER_CONNECTION = 100;

export const DEFAULT_SERVER_OPTIONS: Omit<ServerOptions, 'databaseUrl'> = {
  host: '127.0.0.1',
  port: 8080,
  topic: 'counter',
  topicSchema: 'offset',
  coalesce: true,
  coalesceMaxBatch: 100,
  coalesceLingerMs: 0,
  dedup: false,
  poolSize: 2,
  maxQueuedPublishes: DEFAULT_MAX_QUEUED_PUBLISHES,
  maxPublishesPerConnection: DEFAULT_MAX_PUBLISHES_PER_CONNECTION,
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
  metrics: true,
  http: DEFAULT_HTTP_LIMITS,
};

export function validateServerOptions(options: ServerOptions): ServerOptions & { databaseUrl: DatabaseUrl } {
  const c = 'server';
  if (typeof options.databaseUrl === 'string') nonEmptyString(c, 'databaseUrl', options.databaseUrl);
  const databaseUrl = databaseUrlOf(options.databaseUrl);
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
  intInRange(c, 'maxPublishesPerConnection', options.maxPublishesPerConnection, 1, 10_000_000);
  if (options.maxPublishesPerConnection > options.maxQueuedPublishes + options.poolSize * options.coalesceMaxBatch) {
    throw new OptionsError(
      `${c}: maxPublishesPerConnection (${options.maxPublishesPerConnection}) must not exceed what the queue and the flushes in flight hold (maxQueuedPublishes + poolSize x coalesceMaxBatch = ${options.maxQueuedPublishes + options.poolSize * options.coalesceMaxBatch}): one connection could then fill the queue by itself`,
    );
  }
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
  for (const field of ['coalesce', 'dedup', 'metrics'] as const) {
    if (typeof options[field] !== 'boolean') {
      throw new OptionsError(`${c}: ${field} must be true or false (got ${JSON.stringify(options[field])})`);
    }
  }
  return { ...options, databaseUrl };
}

export interface ServerStats {
  published: number;
  duplicates: number;
  /** 409: the request id was bound to another counter. */
  conflicts: number;
  /** 503 not-published (queue full included). */
  notPublished: number;
  /** 503 because the request's connection already had maxPublishesPerConnection unanswered publishes. */
  connectionShed: number;
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
