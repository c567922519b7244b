// GET /metrics of the server (on its own port) and of the worker (--metrics-port, 127.0.0.1), scraped before
// and after real traffic on a private MariaDB: publish counts, latency and batch histograms, shed requests, the
// worker's consumed messages, batch sizes and consume lag move with what happened; --no-metrics answers 404.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import type { ManagedDatabase } from './support/privateDatabase.ts';
import { ensureDatabase } from '../src/system/db/mariadb/pool.ts';
import { DEFAULT_SERVER_OPTIONS } from '../src/system/server/options.ts';
import { startCounterServer } from '../src/system/server/server.ts';
import type { CounterServer } from '../src/system/server/options.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker, type RunningWorker } from '../src/system/worker.ts';
import { request } from './support/httpRequest.ts';

/** The samples of a Prometheus text page: `name{labels}` -> value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const reply = await request(url, 'GET');
  assert.equal(reply.status, 200, `GET ${url}: ${reply.body.slice(0, 200)}`);
  assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of reply.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  assert.ok(value !== undefined, `${key} is exposed (have: ${[...samples.keys()].filter((k) => k.startsWith(key.split('{')[0]!.replace(/_(bucket|sum|count)$/, ''))).join(', ')})`);
  return value;
}

describe('/metrics of the server and the worker (private MariaDB)', () => {
  let database: ManagedDatabase;
  let server: CounterServer;
  let worker: RunningWorker;
  const TOPIC = 'metrics';
  const POSTS = 600;

  before(async () => {
    database = await startPrivateDatabase();
    await ensureDatabase(database.url);
    // A small per-connection bound, so that a short pipeline is shed by it.
    server = await startCounterServer({ ...DEFAULT_SERVER_OPTIONS, databaseUrl: database.url, port: 0, topic: TOPIC, maxPublishesPerConnection: 5 }, { log: () => undefined });
    // A minute's sleep after an empty or short poll: the traffic below waits in the topic, seen as lag, until
    // the test starts a worker that polls often.
    worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: database.url, topic: TOPIC, metricsPort: 0, pollIntervalMs: 60_000, caughtUpPauseMs: 60_000, log: () => undefined });
  });
  after(async () => {
    await worker?.close();
    await server?.close();
    await database?.remove();
  });

  test('the values move with real traffic', async (t) => {
    const serverUrl = `${server.url}/metrics`;
    const workerUrl = worker.metricsUrl as string;
    assert.match(workerUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await sleep(300); // the worker's first (empty) poll is over: it sleeps now
    const s0 = await scrape(serverUrl);
    const w0 = await scrape(workerUrl);
    assert.equal(sample(s0, 'eob_publish_requests_total{outcome="published"}'), 0);
    assert.equal(sample(s0, 'eob_publish_queue_bound'), DEFAULT_SERVER_OPTIONS.maxQueuedPublishes);

    for (let i = 0; i < POSTS; i += 50) {
      const replies = await Promise.all(Array.from({ length: 50 }, () => request(`${server.url}/count/${randomUUID()}`, 'POST')));
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [204]);
    }
    // A pipeline of 100 on one socket past its share of 5: the excess is shed by the connection bound.
    const socket = net.connect(server.port, '127.0.0.1');
    let answers = '';
    socket.on('data', (c: Buffer) => (answers += c.toString('latin1')));
    await new Promise((r) => socket.once('connect', r));
    socket.write(`POST /count/${randomUUID()} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`.repeat(100));
    for (let i = 0; i < 100 && (answers.match(/HTTP\/1\.1 /g) ?? []).length < 100; i += 1) await sleep(50);
    socket.destroy();
    const pipelined204 = (answers.match(/HTTP\/1\.1 204 /g) ?? []).length;
    const pipelined503 = (answers.match(/HTTP\/1\.1 503 /g) ?? []).length;
    t.diagnostic(`pipeline: ${pipelined204} x 204, ${pipelined503} x 503`);
    assert.ok(pipelined503 > 0);

    const s1 = await scrape(serverUrl);
    const published = POSTS + pipelined204;
    assert.equal(sample(s1, 'eob_publish_requests_total{outcome="published"}'), published);
    assert.equal(sample(s1, 'eob_publish_shed_total{reason="connection_bound"}'), pipelined503);
    assert.equal(sample(s1, 'eob_publish_shed_total{reason="queue_full"}'), 0);
    assert.equal(sample(s1, 'eob_publish_requests_total{outcome="not_published"}'), pipelined503);
    // Latency: every POST that took a place in the queue observed once (those refused by the connection bound
    // never did), all of them within the top bucket.
    assert.equal(sample(s1, 'eob_publish_latency_seconds_count'), published);
    assert.ok(sample(s1, 'eob_publish_latency_seconds_sum') > 0);
    assert.equal(sample(s1, 'eob_publish_latency_seconds_bucket{le="10"}'), published);
    // Batches: their rows add up to the published requests, in fewer batches than requests (coalesced).
    assert.equal(sample(s1, 'eob_publish_batch_rows_sum'), published);
    const flushes = sample(s1, 'eob_publish_batch_rows_count');
    assert.ok(flushes > 0 && flushes < published, `${flushes} flushes for ${published} rows`);
    assert.equal(sample(s1, 'eob_publish_queue_depth'), 0);
    t.diagnostic(`server: ${published} published in ${flushes} INSERTs, latency sum ${sample(s1, 'eob_publish_latency_seconds_sum').toFixed(3)} s`);

    // The worker sleeps: the traffic is lag now. Then a worker that polls often takes over the group.
    const w1 = await scrape(workerUrl);
    t.diagnostic(`sleeping worker: consumed ${sample(w1, 'eob_consume_messages_total')} batches ${sample(w1, 'eob_consume_batches_total')}; lag ${sample(w1, 'eob_consume_lag_offsets')} offsets, ${sample(w1, 'eob_consume_lag_seconds')} s`);
    assert.equal(sample(w1, 'eob_consume_lag_offsets'), published, 'published and not yet consumed: lag');
    assert.ok(Number.isNaN(sample(w1, 'eob_consume_lag_seconds')), 'nothing consumed yet: no time behind to tell');
    const consumedBySleeper = sample(w1, 'eob_consume_messages_total');
    assert.equal(consumedBySleeper, 0);
    await worker.close();
    worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: database.url, topic: TOPIC, metricsPort: 0, log: () => undefined });
    const awakeUrl = worker.metricsUrl as string;

    let w2 = await scrape(awakeUrl);
    const rest = published - consumedBySleeper;
    for (let i = 0; i < 100 && sample(w2, 'eob_consume_messages_total') < rest; i += 1) {
      await sleep(100);
      w2 = await scrape(awakeUrl);
    }
    assert.equal(sample(w0, 'eob_consume_messages_total'), 0);
    assert.equal(sample(w2, 'eob_consume_messages_total'), rest);
    assert.ok(sample(w2, 'eob_consume_batches_total') > 0);
    assert.equal(sample(w2, 'eob_consume_batch_messages_sum'), rest, 'every delivered batch observed, its messages summed');
    assert.equal(sample(w2, 'eob_consume_lag_offsets'), 0);
    assert.equal(sample(w2, 'eob_consume_lag_seconds'), 0);
    for (const key of ['eob_gaps_passed_total{by="proof"}', 'eob_gaps_passed_total{by="bound"}', 'eob_poisoned_messages_total', 'eob_consume_conflict_retries_total']) {
      assert.equal(sample(w2, key), 0, key);
    }
  });

  test('the worker port serves only GET /metrics; --no-metrics answers 404 on the server', async () => {
    const other = (await request((worker.metricsUrl as string).replace('/metrics', '/'), 'GET')).status;
    assert.equal(other, 404);
    const quiet = await startCounterServer({ ...DEFAULT_SERVER_OPTIONS, databaseUrl: database.url, port: 0, topic: TOPIC, metrics: false }, { log: () => undefined });
    try {
      assert.equal((await request(`${quiet.url}/metrics`, 'GET')).status, 404);
      assert.equal((await request(`${quiet.url}/count/${randomUUID()}`, 'POST')).status, 204);
    } finally {
      await quiet.close();
    }
  });
});
