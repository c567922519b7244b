// The HTTP counter service (DESIGN 4.4), on node:http with no framework.
//
//   POST /count/{counterUuid}  publishes one increment message; 204 only after its INSERT committed
//   GET  /count/{counterUuid}  {"counter_uuid", "value"} (0 for a counter never incremented)
//   GET  /healthz              200 when the database answers `SELECT 1`, else 503
//   POST /noop/{counterUuid}   the same parsing and validation as POST /count, then 204 with no database work:
//                              the HTTP ceiling of this server and the load generator on this machine
//
// Every answer is JSON or empty; errors are {"error": "..."}. X-Request-Id is taken from the request (generated
// when absent) and echoed on every POST answer. A database failure answers 503 (outcome unknown to the client:
// the row may or may not have committed), never 2xx.
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createPool, executorOf } from './db/pool.ts';
import type { Pool } from './db/pool.ts';
import { describeError } from './db/errors.ts';
import { MysqlPublisher } from './pubsub/mysqlPublisher.ts';
import { assertTopicName } from './sql/mariadb/identifiers.ts';
import { selectCounterValue } from './sql/mariadb/counterTable.ts';
import { MAX_DEDUP_REQUEST_ID_LENGTH } from './sql/mariadb/publishDedupTable.ts';
import { PublishCoalescer } from './publishCoalescer.ts';
import type { CoalescerStats } from './publishCoalescer.ts';
import { publishIncrements, publishIncrementsOnce } from './counterPublish.ts';
import type { IncrementRequest, PublishOutcome } from './counterPublish.ts';
import { intInRange, nonEmptyString, oneOf, OptionsError } from '../validate.ts';
import type { TopicMode } from './pubsub/types.ts';

export interface ServerOptions {
  mysqlUrl: string;
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
  /** Requests carry no body; anything above this answers 413. */
  maxBodyBytes: number;
  /** A publish not committed by then answers 503 (outcome unknown); the row may still commit later. */
  publishTimeoutMs: number;
  healthTimeoutMs: number;
  connectTimeoutMs: number;
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
  maxBodyBytes: 1024,
  publishTimeoutMs: 10_000,
  healthTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
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
  publishFailures: number;
  coalescer: CoalescerStats | undefined;
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
  const pool: Pool = createPool({
    url: options.mysqlUrl,
    connectionLimit: options.poolSize,
    connectTimeoutMs: options.connectTimeoutMs,
    role: 'server',
  });
  // mysql2 pools emit 'error' for connections that die while idle; without a listener that would crash.
  (pool as unknown as NodeJS.EventEmitter).on?.('error', (error: unknown) => logError(`server: pool: ${describeError(error)}`));
  const db = executorOf(pool);
  const publisher = new MysqlPublisher(db, options.topicSchema);

  const flushBatch = (requests: readonly IncrementRequest[]): Promise<PublishOutcome[]> =>
    options.dedup
      ? publishIncrementsOnce(pool, publisher, options.topic, requests)
      : publishIncrements(publisher, options.topic, requests);
  const coalescer = options.coalesce
    ? new PublishCoalescer<IncrementRequest, PublishOutcome>(
        { maxBatch: options.coalesceMaxBatch, lingerMs: options.coalesceLingerMs, maxInFlight: options.poolSize },
        flushBatch,
      )
    : undefined;
  const publishOne = (request: IncrementRequest): Promise<PublishOutcome> =>
    coalescer !== undefined
      ? coalescer.submit(request)
      : flushBatch([request]).then((outcomes) => outcomes[0] as PublishOutcome);

  const stats: ServerStats = { published: 0, duplicates: 0, publishFailures: 0, coalescer: coalescer?.stats };
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
    const request: IncrementRequest = { counterUuid: id.toLowerCase(), requestId };
    inFlight += 1;
    withTimeout(publishOne(request), options.publishTimeoutMs, 'publish')
      .then(
        (outcome) => {
          if (outcome.duplicate) stats.duplicates += 1;
          else stats.published += 1;
          sendEmpty(res, 204, outcome.duplicate ? { 'X-Request-Id': requestId, 'X-Publish-Duplicate': '1' } : { 'X-Request-Id': requestId });
        },
        (error: unknown) => {
          stats.publishFailures += 1;
          logError(`server: publish failed: ${describeError(error)}`);
          sendJson(
            res,
            503,
            { error: `publish failed, the increment may or may not have been recorded: ${describeError(error)}`, outcome: 'unknown' },
            { 'X-Request-Id': requestId, 'Retry-After': '1' },
          );
        },
      )
      .finally(() => {
        inFlight -= 1;
      });
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

  const handleHealth = (res: ServerResponse): void => {
    inFlight += 1;
    withTimeout(db.query('SELECT 1'), options.healthTimeoutMs, 'database ping')
      .then(
        () => sendJson(res, closing ? 503 : 200, { status: closing ? 'closing' : 'ok' }),
        (error: unknown) => sendJson(res, 503, { status: 'unavailable', error: describeError(error) }),
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

  const httpServer = http.createServer((req, res) => {
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

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      void pool.end().catch(() => undefined);
      if (error.code === 'EADDRINUSE') {
        reject(new Error(`port ${options.port} on ${options.host} is already in use; stop what listens there or pass another --port`));
      } else if (error.code === 'EADDRNOTAVAIL') {
        reject(new Error(`cannot listen on ${options.host}: no such local address; pass --host 127.0.0.1`));
      } else reject(error);
    };
    httpServer.once('error', onError);
    httpServer.listen(options.port, options.host, () => {
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
      await untilDeadline(coalescer?.close() ?? Promise.resolve());
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      httpServer.closeIdleConnections();
      const force = setTimeout(() => httpServer.closeAllConnections(), Math.max(0, deadline - Date.now()));
      await serverClosed;
      clearTimeout(force);
      await untilDeadline(pool.end().catch(() => undefined));
    })();
    return closed;
  };

  return { url: `http://${hostForUrl}:${address.port}`, port: address.port, stats, close };
}
