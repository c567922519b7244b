// The HTTP counter service, on node:http with no framework.
//
//   POST /count/{counterUuid}  publishes one increment message; 204 only after its INSERT committed
//   GET  /count/{counterUuid}  {"counter_uuid", "value"} (0 for a counter never incremented)
//   GET  /healthz              200 when the database answers `SELECT 1`, else 503
//   GET  /metrics              Prometheus text format (docs/metrics.md); 404 with --no-metrics
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
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { openDatabase } from '../db/openDatabase.ts';
import type { Database } from '../db/database.ts';
import { SqlPublisher } from '../pubsub/sqlPublisher.ts';
import { NotSentError, PublishCoalescer, QueueFullError, type Settler } from '../publishCoalescer.ts';
import { PublishError, publishIncrements, publishIncrementsOnce } from '../counterPublish.ts';
import type { IncrementRequest, PublishOutcome, SendGate } from '../counterPublish.ts';
import { withTimeout } from '../waiting.ts';
import { UUID_PATTERN } from '../counterHandler.ts';
import { type CounterServer, type ServerHooks, type ServerOptions, type ServerStats, validateServerOptions } from './options.ts';
import { serverMetrics, type ServerMetrics } from '../metrics/serverMetrics.ts';
import { answerMetrics } from '../metrics/metricsListener.ts';
import { ALLOWED, type BodyCheck, type Route, checkBody, route } from './routing.ts';

/** Visible ASCII only: the id goes into JSON metadata and logs, and, with dedup, into a VARCHAR key. */
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Grace for keep-alive connections to finish on close before they are cut. */
const CLOSE_GRACE_MS = 5_000;
/** A hung database is usually back (or restarted) within seconds; clients that honour it spread their retries. */
const RETRY_AFTER_SECONDS = '1';
/** Connections for GET /count and /healthz: light statements, and a bound on what a hung database holds. */
export const READ_POOL_SIZE = 4;

type PostOutcome = PublishOutcome | { kind: 'failed'; error: unknown };

/**
 * One POST /count waiting for its batch: whoever answers first (the outcome or the timeout) sets `answered`.
 * It is its own coalescer settler (methods on the prototype): no promise and no closures per request.
 */
class PendingPost implements Settler<PublishOutcome> {
  answered = false;
  timer: NodeJS.Timeout | undefined = undefined;
  /** performance.now() at arrival, for the latency histogram (0 without metrics). */
  startedAt = 0;
  constructor(
    readonly settle: (post: PendingPost, outcome: PostOutcome) => void,
    readonly res: ServerResponse,
    /** The unanswered publishes of this request's connection, this one included until it is answered. */
    readonly held: ConnectionPublishes,
    readonly requestId: string,
    readonly request: IncrementRequest,
  ) {}
  resolve(outcome: PublishOutcome): void {
    this.settle(this, outcome);
  }
  reject(error: unknown): void {
    this.settle(this, { kind: 'failed', error });
  }
}

/** Publishes of one connection not answered yet (one object per connection, found through a WeakMap). */
interface ConnectionPublishes {
  held: number;
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
export async function startCounterServer(options: ServerOptions, hooks: ServerHooks = {}): Promise<CounterServer> {
  validateServerOptions(options);
  const log = hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const logError = throttledLog(log);
  // Publishing has its own pool, used only by flushes (at most poolSize at once), so reads and health checks
  // hung on a frozen database can never take the connections publishing needs.
  const pool: Database = openDatabase({
    url: options.databaseUrl,
    connectionLimit: options.poolSize,
    connectTimeoutMs: options.connectTimeoutMs,
    role: 'server',
    lockWaitTimeoutSeconds: options.lockWaitTimeoutSeconds,
  });
  const readPool: Database = openDatabase({
    url: options.databaseUrl,
    connectionLimit: READ_POOL_SIZE,
    connectTimeoutMs: options.connectTimeoutMs,
    role: 'server',
    queueLimit: options.poolQueueLimit,
  });
  // Pools emit 'error' for connections that die while idle; without a listener that would crash.
  for (const p of [pool, readPool]) p.onIdleError((error: unknown) => logError(`server: pool: ${p.describe(error)}`));
  const engine = pool.engine;
  // A timed-out read fails its caller; the driver keeps the connection busy until the late answer arrives, then
  // returns it to the pool, so a hung database holds at most READ_POOL_SIZE connections here.
  const db = readPool.executor(options.queryTimeoutMs);
  const publisher = new SqlPublisher(pool.executor(options.queryTimeoutMs), engine, options.topicSchema);
  const MAX_DEDUP_REQUEST_ID_LENGTH = engine.maxDedupRequestIdLength;
  const describeError = (error: unknown): string => pool.describe(error);
  const limits = { queryTimeoutMs: options.queryTimeoutMs, acquireTimeoutMs: options.connectTimeoutMs };

  let metrics: ServerMetrics | undefined;
  /**
   * When the last flush settled: every request of a batch is answered in the same turn right after it, so one
   * clock reading serves the whole batch's latencies.
   */
  let batchSettledAt = 0;
  const noteSettled = <T>(results: T): T => {
    batchSettledAt = performance.now();
    return results;
  };
  const noteDeadlock = (): void => metrics?.deadlockRetried();
  const publishBatch = (requests: readonly IncrementRequest[]): Promise<PublishOutcome[]> =>
    options.dedup
      ? publishIncrementsOnce(pool, publisher, options.topic, requests, limits, noteDeadlock)
      : publishIncrements(pool, publisher, options.topic, requests, limits);
  const flushBatch = options.metrics
    ? (requests: readonly IncrementRequest[]): Promise<PublishOutcome[]> => {
        metrics?.observeBatch(requests.length);
        return publishBatch(requests).then(noteSettled, (error: unknown) => {
          batchSettledAt = performance.now();
          throw error;
        });
      }
    : publishBatch;
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

  const stats: ServerStats = { published: 0, duplicates: 0, conflicts: 0, notPublished: 0, connectionShed: 0, unknownOutcomes: 0, coalescer: coalescer.stats };
  const publishesOf = new WeakMap<object, ConnectionPublishes>();
  const perConnection = options.maxPublishesPerConnection;
  if (options.metrics) {
    metrics = serverMetrics({ stats, queued: () => coalescer.queued, inFlight: () => coalescer.inFlightItems, queueBound: coalescer.bound });
  }
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
    const requestIdGenerated = header === undefined;
    if (requestIdGenerated) requestId = randomUUID();
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
    let held = publishesOf.get(req.socket);
    if (held === undefined) {
      held = { held: 0 };
      publishesOf.set(req.socket, held);
    }
    if (held.held >= perConnection) {
      // Fairness: a connection past its share is refused before it takes a place in the shared queue.
      stats.connectionShed += 1;
      stats.notPublished += 1;
      sendJson(
        res,
        503,
        { error: `not published: this connection already has ${perConnection} publishes waiting for their answers; wait for them (or spread requests over connections); nothing was recorded, retrying is safe`, outcome: 'not-published' },
        { 'X-Request-Id': requestId, 'Retry-After': RETRY_AFTER_SECONDS },
      );
      return;
    }
    held.held += 1;
    // Counter ids are stored lower-case, so 'ABC…' and 'abc…' count as the same counter.
    const post = new PendingPost(settle, res, held, requestId, { counterUuid: id.toLowerCase(), requestId, requestIdGenerated, gate: { sent: false, cancelled: false } });
    if (metrics !== undefined) post.startedAt = performance.now();
    inFlight += 1;
    post.timer = setTimeout(onPublishTimeout, options.publishTimeoutMs, post);
    coalescer.enqueue(post.request, post);
  };

  // The POST path's answers are functions made once, not closures made per request: a closure per request is an
  // allocation, and under tsx each named one also costs an Object.defineProperty (esbuild's keepNames).
  function notPublished(post: PendingPost, why: string): void {
    stats.notPublished += 1;
    sendJson(post.res, 503, { error: `not published: ${why}; nothing was recorded, retrying is safe`, outcome: 'not-published' }, { 'X-Request-Id': post.requestId, 'Retry-After': RETRY_AFTER_SECONDS });
  }
  function unknownOutcome(post: PendingPost, why: string): void {
    stats.unknownOutcomes += 1;
    sendJson(
      post.res,
      504,
      { error: `outcome unknown: ${why}; the increment may or may not have been recorded (retry with the same X-Request-Id under --dedup)`, outcome: 'unknown' },
      { 'X-Request-Id': post.requestId },
    );
  }
  function failed(post: PendingPost, error: unknown): void {
    if (error instanceof QueueFullError) {
      // Shedding is the designed answer to overload: counted in the stats, not logged per request.
      notPublished(post, error.message);
      return;
    }
    logError(`server: publish failed: ${describeError(error)}`);
    if (error instanceof NotSentError) notPublished(post, error.message);
    else if (error instanceof PublishError && error.outcome === 'not-published') notPublished(post, `the database refused or could not be reached (${error.message})`);
    else unknownOutcome(post, `the database did not answer (${describeError(error)})`);
  }
  function onPublishTimeout(post: PendingPost): void {
    post.answered = true;
    post.held.held -= 1;
    metrics?.observeLatency(options.publishTimeoutMs / 1000);
    const gate = post.request.gate as SendGate;
    // Still queued: it leaves the queue. In a batch that has sent nothing yet (waiting for a connection): it is
    // left out of it. Either way it is never sent. Otherwise its batch is at the database.
    if (coalescer.withdraw(post.request)) notPublished(post, `not sent to the database within ${options.publishTimeoutMs} ms (database slow or hung)`);
    else if (!gate.sent) {
      gate.cancelled = true;
      notPublished(post, `no database connection within ${options.publishTimeoutMs} ms (database slow or hung)`);
    } else unknownOutcome(post, `sent to the database, no answer within ${options.publishTimeoutMs} ms`);
    inFlight -= 1;
  }
  function settle(post: PendingPost, outcome: PostOutcome): void {
    if (post.answered) return;
    post.answered = true;
    post.held.held -= 1;
    clearTimeout(post.timer);
    inFlight -= 1;
    // A request refused at once (queue full, closing) is settled inside enqueue, before any batch: latency 0.
    if (metrics !== undefined) metrics.observeLatency(batchSettledAt > post.startedAt ? (batchSettledAt - post.startedAt) / 1000 : 0);
    const res = post.res;
    switch (outcome.kind) {
      case 'published':
        stats.published += 1;
        sendEmpty(res, 204, { 'X-Request-Id': post.requestId });
        break;
      case 'duplicate':
        stats.duplicates += 1;
        sendEmpty(res, 204, { 'X-Request-Id': post.requestId, 'X-Publish-Duplicate': '1' });
        break;
      case 'conflict':
        stats.conflicts += 1;
        sendJson(
          res,
          409,
          { error: `X-Request-Id ${post.requestId} was already used for counter ${outcome.boundCounterUuid}; a request id names one request, use a new one for another counter`, outcome: 'not-published' },
          { 'X-Request-Id': post.requestId },
        );
        break;
      case 'failed':
        failed(post, outcome.error);
        break;
    }
  }

  const handleGetCount = (res: ServerResponse, id: string): void => {
    if (!UUID_PATTERN.test(id)) {
      sendJson(res, 400, { error: `counter uuid must look like 123e4567-e89b-42d3-a456-426614174000 (got "${id.slice(0, 64)}")` });
      return;
    }
    const counterUuid = id.toLowerCase();
    inFlight += 1;
    withTimeout(engine.selectCounterValue(db, counterUuid), options.publishTimeoutMs, 'counter read')
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
    withTimeout(engine.ping(db), options.healthTimeoutMs, 'database ping')
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
    } else if (target.kind === 'metrics') {
      if (metrics === undefined) sendJson(res, 404, { error: 'metrics are off (the server was started with --no-metrics)' });
      else if (method === 'GET') answerMetrics(metrics.registry, res);
      else sendJson(res, 405, { error: `${method} is not allowed on /metrics` }, { Allow: ALLOWED.metrics });
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
    if (typeof body === 'string') proceed(req, res, target, body);
    else void body.then((result) => proceed(req, res, target, result));
  });

  function proceed(req: IncomingMessage, res: ServerResponse, target: Route, result: BodyCheck): void {
    if (result === 'ok') dispatch(req, res, target);
    else if (result === 'too-large') {
      // Connection: close, so the unread rest of the body is not parsed as the next request.
      sendJson(res, 413, { error: `request body over ${options.maxBodyBytes} bytes; these endpoints take no body` }, { Connection: 'close' });
    }
    // aborted: the client is gone, nobody to answer.
  }

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
