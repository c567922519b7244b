// The chaos load: a fixed number of POST /count/{counter} requests, each with its own X-Request-Id, at a
// bounded offered rate, recording every attempt's outcome (the history).
//
// Why not autocannon (which the throughput sweep uses): its events do not say which request a response or an
// error belongs to, it reports connection errors per connection rather than per request, and it re-sends on
// its own after a reset. The checker needs the opposite: one known request id per attempt, and for an error,
// whether anything could have reached the server. So this is a small node:http loop with N concurrent
// senders, bounded by the request count and by a deadline, that stops on its own.
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { HistoryPhase, RequestAttempt, RequestOutcome } from './history.ts';
import { intInRange, matches, nonEmptyString, numberAtLeast } from '../../validate.ts';
import { sleep } from '../../system/waiting.ts';

export interface HistoryLoadOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /**
   * More servers of the same system (each through another node of a cluster): request n goes to
   * [baseUrl, ...alsoBaseUrls][n % count], its retries to the same server. Absent: baseUrl alone.
   */
  alsoBaseUrls?: readonly string[];
  /** Request ids are `<caseName>-<n>`. */
  caseName: string;
  requests: number;
  /** Requests in flight at once (concurrent publishers as far as the server is concerned). */
  concurrency: number;
  /** Offered rate; 0 = as fast as the senders go. The chaos profiles spread the requests over the fault schedule. */
  ratePerSecond: number;
  /** 0: one counter per request, so the checker names the exact message of any violation. */
  counters: number;
  /** Resend non-definite outcomes with the same request id, as a real client would. */
  retry: boolean;
  /** Attempts per request id for the retrying client, the first included. */
  maxAttempts: number;
  /** Pause before a resend; doubled up to 1 s. */
  retryBackoffMs: number;
  /** An attempt with no answer after this is `unknown` (ms). */
  requestTimeoutMs: number;
  phase: HistoryPhase;
  /** The clock of the case: attempt times are `now() - t0` (ms). */
  t0: number;
  /** Called after every attempt (progress, timelines). */
  onAttempt?: (attempt: RequestAttempt) => void;
  /** Stops sending new requests (those in flight finish); checked between requests. */
  signal?: AbortSignal;
}

export const DEFAULT_HISTORY_LOAD_OPTIONS: Omit<HistoryLoadOptions, 'baseUrl' | 'caseName' | 't0'> = {
  requests: 1_000,
  // 16: the "at least 16 concurrent publishers" for the watermill and non-locking-read controls.
  concurrency: 16,
  ratePerSecond: 0,
  counters: 0,
  retry: false,
  maxAttempts: 30,
  retryBackoffMs: 100,
  // The server answers 503 within its pool's connect timeout (5 s) when the database is down; 10 s leaves room.
  requestTimeoutMs: 10_000,
  phase: 'load',
};

/** A case name becomes part of request ids and file names. */
export const CASE_NAME = /^[A-Za-z0-9_.-]+$/;
export const CASE_NAME_WHAT = 'letters, digits, _ . -';

export function validateHistoryLoadOptions(o: HistoryLoadOptions): HistoryLoadOptions {
  const c = 'history load';
  nonEmptyString(c, 'baseUrl', o.baseUrl);
  if (!/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/?$/.test(o.baseUrl)) {
    throw new Error(`${c}: baseUrl must be http://127.0.0.1:<port> (the harness only talks to this machine; got "${o.baseUrl}")`);
  }
  for (const u of o.alsoBaseUrls ?? []) {
    if (!/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/?$/.test(u)) {
      throw new Error(`${c}: alsoBaseUrls must be http://127.0.0.1:<port> (got "${u}")`);
    }
  }
  matches(c, 'caseName', o.caseName, CASE_NAME, CASE_NAME_WHAT);
  intInRange(c, 'requests', o.requests, 0, 10_000_000);
  intInRange(c, 'concurrency', o.concurrency, 1, 1_024);
  numberAtLeast(c, 'ratePerSecond', o.ratePerSecond, 0);
  intInRange(c, 'counters', o.counters, 0, 10_000_000);
  intInRange(c, 'maxAttempts', o.maxAttempts, 1, 1_000);
  intInRange(c, 'retryBackoffMs', o.retryBackoffMs, 0, 60_000);
  intInRange(c, 'requestTimeoutMs', o.requestTimeoutMs, 100, 600_000);
  return o;
}

/** A stable UUID per (case, counter index), so a rerun of a case with the same options increments the same rows. */
export function counterUuidFor(caseName: string, index: number): string {
  const h = createHash('sha256').update(`${caseName}/${index}`).digest('hex');
  // Shaped as a version-4 UUID so the server's validation accepts it.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface AttemptResult {
  outcome: RequestOutcome;
  status?: number;
  error?: string;
}

/**
 * 2xx ok; 4xx fail (rejected, nothing published); 503 fail (the server promises its row was never sent, or was
 * refused: nothing was committed and nothing can commit later; the checker verifies that promise); 504 and
 * any other 5xx unknown (sent, no answer: may have committed). Without an answer, only ECONNREFUSED proves
 * nothing was sent: any error after the connection was open (reset, hang-up, timeout) may have followed a
 * delivered request.
 */
export function classifyAttempt(status: number | undefined, errorCode: string | undefined): AttemptResult {
  if (status !== undefined) {
    if (status >= 200 && status < 300) return { outcome: 'ok', status };
    if (status >= 400 && status < 500) return { outcome: 'fail', status };
    if (status === 503) return { outcome: 'fail', status };
    return { outcome: 'unknown', status };
  }
  if (errorCode === 'ECONNREFUSED') return { outcome: 'fail', error: errorCode };
  return { outcome: 'unknown', error: errorCode ?? 'no answer' };
}

export interface HistoryLoadResult {
  attempts: RequestAttempt[];
  durationMs: number;
}

export async function runHistoryLoad(options: HistoryLoadOptions): Promise<HistoryLoadResult> {
  const o = validateHistoryLoadOptions(options);
  const urls = [o.baseUrl, ...(o.alsoBaseUrls ?? [])].map((u) => new URL(u));
  // Keep-alive like a real client; a stale pooled socket after a server kill fails with ECONNRESET, which is
  // (conservatively) unknown.
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const attempts: RequestAttempt[] = [];
  const counterUuids = new Map<number, string>();
  const counterOf = (n: number): string => {
    const index = o.counters === 0 ? n : n % o.counters;
    let id = counterUuids.get(index);
    if (id === undefined) {
      id = counterUuidFor(o.caseName, index);
      counterUuids.set(index, id);
    }
    return id;
  };
  const started = performance.now();
  let next = 0;

  const sendOne = (url: URL, requestId: string, counterUuid: string, attempt: number): Promise<RequestAttempt> =>
    new Promise((resolve) => {
      const startMs = performance.now() - o.t0;
      const finish = (result: AttemptResult) => {
        const record: RequestAttempt = {
          requestId,
          counterUuid,
          attempt,
          ...result,
          via: 'http',
          phase: o.phase,
          startMs: round(startMs),
          endMs: round(performance.now() - o.t0),
        };
        attempts.push(record);
        o.onAttempt?.(record);
        resolve(record);
      };
      let done = false;
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: `/count/${counterUuid}`,
          agent,
          headers: { 'X-Request-Id': requestId, 'content-length': '0' },
          timeout: o.requestTimeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (done) return;
            done = true;
            finish(classifyAttempt(res.statusCode, undefined));
          });
          res.on('error', () => {
            if (done) return;
            done = true;
            finish(classifyAttempt(undefined, 'ECONNRESET'));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (done) return;
        done = true;
        finish(classifyAttempt(undefined, error.code ?? error.message));
      });
      req.end();
    });

  const sender = async (): Promise<void> => {
    for (;;) {
      if (o.signal?.aborted === true) return;
      const n = next;
      if (n >= o.requests) return;
      next += 1;
      if (o.ratePerSecond > 0) {
        const due = started + (n * 1000) / o.ratePerSecond;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const requestId = `${o.caseName}-${n}`;
      const counterUuid = counterOf(n);
      let backoff = o.retryBackoffMs;
      for (let attempt = 1; attempt <= (o.retry ? o.maxAttempts : 1); attempt++) {
        const last = await sendOne(urls[n % urls.length]!, requestId, counterUuid, attempt);
        // The retrying client stops at a definite answer: 2xx, or a 4xx rejection. A refused connection is
        // definite for that attempt only; an earlier attempt of the same id may have been published, so the
        // client goes on until the server answers.
        const definite = last.status !== undefined && last.status < 500;
        if (definite || !o.retry) break;
        await sleep(backoff);
        backoff = Math.min(1_000, backoff * 2);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, o.requests)) }, () => sender()));
  } finally {
    agent.destroy();
  }
  return { attempts, durationMs: performance.now() - started };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
