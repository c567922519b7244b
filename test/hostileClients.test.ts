// Hostile clients against `eob server` as its own process (so its memory can be read from /proc), on a private
// MariaDB, loopback only: slowloris, a pipelined flood, oversized headers, thousands of idle connections, a
// connection flood over the cap, and a frozen database (SIGSTOP) under thousands of requests. Each one checks
// that ordinary requests are still answered, that hostile ones end within their bounds, and that the server's
// RSS stays bounded. Limits are set small on the command line so the suite runs in well under a minute.
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import type { ManagedDatabase } from './support/privateDatabase.ts';
import { createPool, ensureDatabase, executorOf } from '../src/system/db/mariadb/pool.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { childEnvironment } from '../src/config.ts';
import { request, type Reply } from './support/httpRequest.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Small on purpose (the defaults are 10 s and more), so each case ends in seconds.
const LIMITS = {
  publishTimeoutMs: 2_000,
  headersTimeoutMs: 2_000,
  requestTimeoutMs: 3_000,
  keepAliveTimeoutMs: 1_000,
  socketIdleTimeoutMs: 6_000,
  maxConnections: 3_000,
  maxQueuedPublishes: 500,
  maxRequestsPerSocket: 1_000,
};
/** node checks headers/request timeouts once a second (connectionsCheckingIntervalMs). */
const CHECK_INTERVAL_MS = 1_000;
/** Room for a loaded 2-core CI machine on top of every bound. */
const SLACK_MS = 4_000;
/**
 * Peak RSS over the idle server's, in MB. Measured here: the frozen database with 3,000 concurrent POSTs adds
 * ~40-70 MB, 2,000 idle connections ~25 MB (about 11 KB per open connection); the server without a queue bound
 * or HTTP limits grew to 268-304 MB from ~170 MB with 6,000 POSTs and kept every request until its timeout.
 */
const MAX_RSS_GROWTH_MB = 160;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples the server's RSS every 50 ms while `work` runs; returns the peak. */
async function peakRssDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peakMb = rssMb(pid);
  const timer = setInterval(() => {
    peakMb = Math.max(peakMb, rssMb(pid));
  }, 50);
  try {
    const result = await work();
    return { result, peakMb: Math.max(peakMb, rssMb(pid)) };
  } finally {
    clearInterval(timer);
  }
}

/** One POST on a connection of its own, to the server on loopback. */
function post(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return request(`http://127.0.0.1:${port}${path}`, 'POST', headers);
}

/** A raw socket that records what it receives and when it closes. */
interface RawClient {
  socket: net.Socket;
  received: () => string;
  closedAt: Promise<number>;
}

function rawClient(port: number, onConnect?: (s: net.Socket) => void): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    const closedAt = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset by the server is one of the expected endings
    socket.once('connect', () => {
      onConnect?.(socket);
      resolve({ socket, received: () => Buffer.concat(chunks).toString('latin1'), closedAt });
    });
    socket.once('error', reject);
  });
}

/** Opens `n` raw clients, a few hundred at a time (the listen backlog is finite, and so is the test machine). */
async function rawClients(n: number, port: number, onConnect?: (s: net.Socket) => void): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i += 250) {
    const wave = await Promise.allSettled(Array.from({ length: Math.min(250, n - i) }, () => rawClient(port, onConnect)));
    for (const w of wave) if (w.status === 'fulfilled') clients.push(w.value);
  }
  return clients;
}

function statuses(raw: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  return counts;
}

describe('hostile clients against eob server (private MariaDB, loopback)', () => {
  let database: ManagedDatabase;
  let server: ChildProcess;
  let port: number;
  let idleRssMb: number;
  const counter = randomUUID();
  const countPath = `/count/${counter}`;

  /** 100 ordinary POSTs, 20 at a time: all must be 204. */
  async function ordinaryRequestsWork(t: TestContext, what: string): Promise<void> {
    const replies: Reply[] = [];
    for (let i = 0; i < 5; i += 1) replies.push(...(await Promise.all(Array.from({ length: 20 }, () => post(port, countPath)))));
    const ok = replies.filter((r) => r.status === 204).length;
    const slowest = Math.max(...replies.map((r) => r.sinceConnectMs));
    t.diagnostic(`${what}: ${ok} of 100 ordinary POSTs answered 204, slowest ${slowest} ms`);
    assert.equal(ok, 100, `${what}: ordinary requests are still served`);
  }

  before(async () => {
    database = await startPrivateDatabase();
    await ensureDatabase(database.url);
    const pool = createPool({ url: database.url, connectionLimit: 1, connectTimeoutMs: 5_000 });
    await ensureSchema(executorOf(pool), { topic: 'hostile', topicSchema: 'offset', dedup: false });
    await pool.end();
    port = await findFreePort();
    server = spawn(
      process.execPath,
      [
        '--import', 'tsx', CLI, 'server', '--port', String(port), '--topic', 'hostile', '--pool-size', '4',
        '--publish-timeout-ms', String(LIMITS.publishTimeoutMs),
        '--headers-timeout-ms', String(LIMITS.headersTimeoutMs),
        '--request-timeout-ms', String(LIMITS.requestTimeoutMs),
        '--keep-alive-timeout-ms', String(LIMITS.keepAliveTimeoutMs),
        '--socket-idle-timeout-ms', String(LIMITS.socketIdleTimeoutMs),
        '--max-connections', String(LIMITS.maxConnections),
        '--max-queued-publishes', String(LIMITS.maxQueuedPublishes),
        '--max-requests-per-socket', String(LIMITS.maxRequestsPerSocket),
      ],
      // The URL (with the private database's password) through the environment, not the command line.
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment({ EOB_LOG: 'quiet', MYSQL_URL: database.url }) },
    );
    await new Promise<void>((resolve, reject) => {
      server.stdout?.on('data', (d: Buffer) => {
        if (String(d).includes('server listening')) resolve();
      });
      server.on('exit', (code) => reject(new Error(`eob server exited (${code}) before listening`)));
    });
    server.stderr?.resume();
    // Warm up (JIT, pool connections) before the baseline is taken.
    for (let i = 0; i < 50; i += 1) assert.equal((await post(port, countPath)).status, 204);
    idleRssMb = rssMb(server.pid as number);
  });

  after(async () => {
    server?.kill('SIGKILL');
    if (database?.isPaused) database.resume();
    await database?.remove();
  });

  const assertRssBounded = (t: TestContext, what: string, peakMb: number): void => {
    t.diagnostic(`${what}: server RSS ${idleRssMb.toFixed(0)} MB idle, peak ${peakMb.toFixed(0)} MB`);
    assert.ok(peakMb - idleRssMb < MAX_RSS_GROWTH_MB, `${what}: RSS grew ${(peakMb - idleRssMb).toFixed(0)} MB (bound ${MAX_RSS_GROWTH_MB})`);
  };

  test('slowloris: 2,000 half-sent requests are cut after the headers timeout; ordinary requests are served meanwhile', async (t) => {
    const pid = server.pid as number;
    const { result: clients, peakMb } = await peakRssDuring(pid, async () => {
      const started = Date.now();
      const cs = await rawClients(2_000, port, (s) => s.write(`POST ${countPath} HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow`));
      await ordinaryRequestsWork(t, 'during slowloris');
      const closed = await Promise.all(cs.map((c) => c.closedAt));
      const longest = Math.max(...closed) - started;
      t.diagnostic(`slowloris: ${cs.length} connections, all closed by the server within ${longest} ms`);
      assert.ok(longest < LIMITS.headersTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS, `closed within the headers timeout (${longest} ms)`);
      return cs;
    });
    const answered = clients.filter((c) => c.received().startsWith('HTTP/1.1 408')).length;
    t.diagnostic(`slowloris: ${answered} of ${clients.length} got 408 Request Timeout before the close`);
    assert.equal(answered + clients.filter((c) => c.received() === '').length, clients.length, 'only 408 or a plain close, never a publish');
    assertRssBounded(t, 'slowloris', peakMb);
  });

  test('a pipelined flood of 20,000 requests on one connection is served up to the per-socket limit, then cut', async (t) => {
    const pid = server.pid as number;
    const { result: raw, peakMb } = await peakRssDuring(pid, async () => {
      const request = `POST /noop/${counter} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
      const flood = await rawClient(port);
      flood.socket.write(request.repeat(20_000));
      await ordinaryRequestsWork(t, 'during the pipelined flood');
      await Promise.race([flood.closedAt, sleep(20_000)]);
      flood.socket.destroy();
      return flood.received();
    });
    const counts = statuses(raw);
    t.diagnostic(`pipelined flood: answers by status ${JSON.stringify([...counts])}`);
    assert.equal(counts.get(204), LIMITS.maxRequestsPerSocket, 'exactly the per-socket limit was served');
    for (const status of counts.keys()) assert.ok(status === 204 || status === 503, `status ${status}`);
    assertRssBounded(t, 'pipelined flood', peakMb);
  });

  test('oversized headers answer 431; a large header under the limit is fine', async (t) => {
    const big = await rawClient(port);
    big.socket.write(`POST ${countPath} HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`);
    await Promise.race([big.closedAt, sleep(5_000)]);
    t.diagnostic(`oversized: ${big.received().split('\r\n')[0]}`);
    assert.match(big.received(), /^HTTP\/1\.1 431 /);
    big.socket.destroy();
    const fits = await post(port, countPath, { 'X-Filler': 'a'.repeat(6_000) });
    assert.equal(fits.status, 204);
  });

  test('2,000 idle connections cost bounded memory, are closed by the request timeout, and the cap closes extra ones at once', async (t) => {
    const pid = server.pid as number;
    const { result: idle, peakMb } = await peakRssDuring(pid, async () => {
      const started = Date.now();
      const cs = await rawClients(2_000, port);
      await ordinaryRequestsWork(t, 'with 2,000 idle connections');
      // Over the cap (3,000): the extra connections are closed as soon as they are accepted.
      const extra = await rawClients(1_500, port);
      const cutAtOnce = (await Promise.all(extra.map((c) => Promise.race([c.closedAt.then(() => 1), sleep(1_500).then(() => 0)])))).reduce((a: number, b) => a + b, 0);
      t.diagnostic(`connection cap: ${cutAtOnce} of ${extra.length} connections over ${LIMITS.maxConnections} closed within 1.5 s`);
      assert.ok(cutAtOnce >= 100, `connections over the cap are refused (${cutAtOnce})`);
      for (const c of extra) c.socket.destroy();
      const closed = await Promise.all(cs.map((c) => c.closedAt));
      const longest = Math.max(...closed) - started;
      t.diagnostic(`idle: all ${cs.length} idle connections closed by the server after ${longest} ms`);
      // A connection that sends nothing is closed with 408 at the request timeout (the idle timeout is a backstop).
      assert.ok(longest < LIMITS.requestTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS, `idle connections closed (${longest} ms)`);
      return cs;
    });
    assert.equal(idle.length, 2_000);
    assertRssBounded(t, 'idle connections', peakMb);
  });

  test('database frozen (SIGSTOP) under 3,000 concurrent POSTs: 503 at once beyond the queue, every answer within its bound, 204 after the thaw', async (t) => {
    const pid = server.pid as number;
    database.pause();
    let replies: Reply[];
    let peakMb: number;
    try {
      ({ result: replies, peakMb } = await peakRssDuring(pid, () =>
        Promise.all(Array.from({ length: 3_000 }, (_, i) => post(port, countPath, { 'X-Request-Id': `frozen-${i}` }))),
      ));
    } finally {
      database.resume();
    }
    const counts = new Map<number, number>();
    for (const r of replies) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    const slowest = Math.max(...replies.map((r) => r.sinceConnectMs));
    const shedFast = replies.filter((r) => r.status === 503 && r.sinceConnectMs < LIMITS.publishTimeoutMs).length;
    t.diagnostic(`frozen: answers ${JSON.stringify([...counts])}, ${shedFast} answered 503 before the publish timeout, slowest ${slowest} ms`);
    for (const status of counts.keys()) assert.ok(status === 503 || status === 504, `status ${status} while frozen`);
    assert.ok(shedFast >= 1_000, `requests beyond the queue are answered at once (${shedFast})`);
    assert.ok(slowest < LIMITS.publishTimeoutMs + SLACK_MS, `every request answered within its bound (${slowest} ms)`);
    assertRssBounded(t, 'frozen database', peakMb);
    let status = 0;
    for (let i = 0; i < 40 && status !== 204; i += 1) {
      status = (await post(port, countPath)).status;
      if (status !== 204) await sleep(250);
    }
    assert.equal(status, 204, 'the server answers 204 again after the thaw');
    const health = JSON.parse((await request(`http://127.0.0.1:${port}/healthz`, 'GET')).body) as { status: string; queue: { bound: number; shed: number; expired: number } };
    t.diagnostic(`healthz after the thaw: ${JSON.stringify(health)}`);
    assert.equal(health.queue.bound, LIMITS.maxQueuedPublishes);
    assert.ok(health.queue.shed > 0);
  });
});
