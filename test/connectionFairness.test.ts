// Per-connection fairness of the publish queue, on a private MariaDB: one client pipelines 20,000 POST /count
// on one socket while ordinary clients (one request per connection) post meanwhile. With the per-connection
// bound the pipeline holds only its share of the queue and every ordinary POST is published; the control (the
// bound as large as the whole queue, which is the rule before the bound existed) lets the pipeline fill the
// queue and ordinary POSTs are shed with 503.
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import type { ManagedDatabase } from './support/privateDatabase.ts';
import { createPool, ensureDatabase, executorOf } from '../src/system/db/mariadb/pool.ts';
import type { Pool } from '../src/system/db/mariadb/pool.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_SERVER_OPTIONS, validateServerOptions } from '../src/system/server/options.ts';
import { startCounterServer } from '../src/system/server/server.ts';
import type { CounterServer, ServerOptions } from '../src/system/server/options.ts';
import { request, type Reply } from './support/httpRequest.ts';

const PIPELINED = 20_000;
/**
 * A slow publisher on purpose (one connection, one row per INSERT, a 300-request queue): the pipeline is parsed
 * far faster than it is published, so without the bound it keeps the queue full for as long as it lasts. With
 * 5 rows per INSERT the control's ordinary POSTs met a full queue in 2 runs of 3 at a load average of 20: node
 * stops reading the pipeline while its answers wait behind earlier ones, and the queue had room at moments.
 */
const SLOW_PUBLISHER: Partial<ServerOptions> = { poolSize: 1, coalesceMaxBatch: 1, maxQueuedPublishes: 300 };
const BOUND = 50;
/** Ordinary POSTs at most while the pipeline lasts. */
const ORDINARY_MAX = 2_000;
/** The largest bound validation accepts: one connection may take the whole queue and the flush in flight. */
const NO_BOUND = 300 + 1 * 1;

interface Outcome {
  ordinary: Map<number, number>;
  pipeline: Map<number, number>;
  connectionShed: number;
}

function statuses(raw: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  return counts;
}

const tally = (replies: readonly Reply[]): Map<number, number> => {
  const counts = new Map<number, number>();
  for (const r of replies) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return counts;
};

describe('per-connection fairness of the publish queue (private MariaDB)', () => {
  let database: ManagedDatabase;
  let pool: Pool;
  const servers: CounterServer[] = [];

  before(async () => {
    database = await startPrivateDatabase();
    await ensureDatabase(database.url);
    pool = createPool({ url: database.url, connectionLimit: 1, connectTimeoutMs: 5_000 });
    await ensureSchema(executorOf(pool), { topic: 'fair', topicSchema: 'offset', dedup: false });
  });
  after(async () => {
    for (const s of servers) await s.close();
    await pool?.end();
    await database?.remove();
  });

  async function pipelineWithOrdinaryClients(t: TestContext, maxPublishesPerConnection: number): Promise<Outcome> {
    const options: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, ...SLOW_PUBLISHER, databaseUrl: database.url, port: 0, topic: 'fair', maxPublishesPerConnection };
    const server = await startCounterServer(options, { log: () => undefined });
    servers.push(server);
    const counter = randomUUID();
    const chunks: Buffer[] = [];
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`POST /count/${counter} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`.repeat(PIPELINED));
    // Ordinary clients meanwhile, for as long as the pipeline lasts (at least 100 POSTs, at most 2,000): one every
    // 5 ms, each on a connection of its own, sent whether or not earlier ones were answered. Sent in closed-loop
    // rounds instead (20, then the next 20 once those were answered), they arrived just as a flush had freed
    // seats, and the control came out clean in every run at a load average of 9.
    await sleep(50);
    const pipelineAnswers = () => [...statuses(Buffer.concat(chunks).toString('latin1')).values()].reduce((a, b) => a + b, 0);
    const sent: Promise<Reply>[] = [];
    while (sent.length < ORDINARY_MAX && (sent.length < 100 || pipelineAnswers() < PIPELINED)) {
      sent.push(request(`${server.url}/count/${randomUUID()}`, 'POST'));
      await sleep(5);
    }
    const ordinary = await Promise.all(sent);
    t.diagnostic(`bound ${maxPublishesPerConnection}: the pipeline had ${pipelineAnswers()} of ${PIPELINED} answers when the ${ordinary.length} ordinary POSTs were done`);
    for (let waited = 0; waited < 60_000; waited += 100) {
      const n = [...statuses(Buffer.concat(chunks).toString('latin1')).values()].reduce((a, b) => a + b, 0);
      if (n >= PIPELINED) break;
      await sleep(100);
    }
    socket.destroy();
    const outcome = { ordinary: tally(ordinary), pipeline: statuses(Buffer.concat(chunks).toString('latin1')), connectionShed: server.stats.connectionShed };
    t.diagnostic(`bound ${maxPublishesPerConnection}: ordinary ${JSON.stringify([...outcome.ordinary])}, pipeline ${JSON.stringify([...outcome.pipeline])}, shed per connection ${outcome.connectionShed}`);
    return outcome;
  }

  test('with the per-connection bound, a pipelining client cannot push ordinary clients into 503s', async (t) => {
    const outcome = await pipelineWithOrdinaryClients(t, BOUND);
    assert.equal(outcome.ordinary.get(204), [...outcome.ordinary.values()].reduce((a, b) => a + b, 0), 'every ordinary POST is published');
    assert.ok((outcome.ordinary.get(204) ?? 0) >= 100, 'at least 100 ordinary POSTs were sent');
    assert.ok((outcome.pipeline.get(204) ?? 0) > 0, 'the pipeline is served its share');
    assert.ok((outcome.pipeline.get(503) ?? 0) > 0, 'the pipeline past its share is refused');
    for (const status of outcome.pipeline.keys()) assert.ok(status === 204 || status === 503, `pipeline status ${status}`);
    assert.equal(outcome.connectionShed, outcome.pipeline.get(503), 'every 503 of the pipeline is the per-connection bound');
  });

  test('control: a bound as large as the queue lets the pipeline fill it, and ordinary POSTs are shed', async (t) => {
    const outcome = await pipelineWithOrdinaryClients(t, NO_BOUND);
    assert.ok((outcome.ordinary.get(503) ?? 0) > 0, 'ordinary POSTs got 503 while the pipeline held the queue');
  });

  test('the bound is validated and named', () => {
    const base: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, databaseUrl: 'mysql://x@127.0.0.1/db' };
    assert.throws(() => validateServerOptions({ ...base, maxPublishesPerConnection: 0 }), /maxPublishesPerConnection/);
    assert.throws(() => validateServerOptions({ ...base, maxQueuedPublishes: 10, poolSize: 1, coalesceMaxBatch: 10, maxPublishesPerConnection: 21 }), /maxPublishesPerConnection \(21\) must not exceed/);
  });
});
