// A consumer frozen in the middle of its transaction must not hold up publishers: the counter server keeps
// answering 204 at once while the offset consumer, at the worker's default isolation, sits on an open batch
// transaction (as a SIGSTOPped worker does). The same freeze under SERIALIZABLE (the old default, still the
// watermill profile's) blocks every publish until the transaction ends: the case that shows the test can fail.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { testPool } from './support/contractTargets.ts';
import { executorOf, type Pool } from '../src/system/db/mariadb/pool.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_SERVER_OPTIONS } from '../src/system/server/options.ts';
import { startCounterServer } from '../src/system/server/server.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import { counterHandler } from '../src/system/counterHandler.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import { defaultIsolation } from '../src/system/worker.ts';
import { selectCounterValue } from '../src/system/sql/mariadb/counterTable.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import type { IsolationLevel } from '../src/system/pubsub/types.ts';

/** How long the consumer holds its transaction open, and how long publishers run meanwhile (ms). */
const FREEZE_MS = 6_000;
const LOAD_MS = 2_000;
const PUBLISHERS = 16;
/** A publish slower than this was held up (the unfrozen ones take milliseconds; a blocked one ~4-6 s). */
const BLOCKED_MS = 3_000;

interface Outcome {
  status: number;
  ms: number;
}

function post(agent: http.Agent, url: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.setTimeout(20_000, () => req.destroy());
    req.end();
  });
}

interface FreezeRun {
  outcomes: Outcome[];
  counted: number;
}

async function publishWhileFrozen(url: string, pool: Pool, isolation: IsolationLevel): Promise<FreezeRun> {
  const topic = `freeze_${isolation.replace(/ /g, '_').toLowerCase()}`;
  const db = executorOf(pool);
  await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
  const server = await startCounterServer({ ...DEFAULT_SERVER_OPTIONS, databaseUrl: url, port: 0, topic }, { log: () => undefined });
  const counter = randomUUID();
  const agent = new http.Agent({ keepAlive: true, maxSockets: PUBLISHERS });
  let entered!: () => void;
  const frozen = new Promise<void>((r) => (entered = r));
  let thaw!: () => void;
  const thawed = new Promise<void>((r) => (thaw = r));
  let first = true;
  const count = counterHandler('batched', mariadbEngine);
  // A few messages to read: the frozen batch reads to the end of the topic, as a caught-up worker's does.
  for (let i = 0; i < 5; i += 1) assert.equal((await post(agent, `${server.url}/count/${counter}`)).status, 204);
  const subscription = await subscribeOffset(pool, {
    ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
    topic,
    batchSize: 1000,
    isolation,
    handler: async (messages, tx) => {
      await count(messages, tx);
      if (first) {
        first = false;
        entered();
        await thawed;
      }
    },
  });
  try {
    await frozen;
    const thawAt = setTimeout(thaw, FREEZE_MS);
    const outcomes: Outcome[] = [];
    const until = performance.now() + LOAD_MS;
    await Promise.all(
      Array.from({ length: PUBLISHERS }, async () => {
        while (performance.now() < until) outcomes.push(await post(agent, `${server.url}/count/${counter}`));
      }),
    );
    await thawed;
    clearTimeout(thawAt);
    // Every published message is counted exactly once once the consumer runs again.
    const deadline = performance.now() + 20_000;
    while ((await selectAckedOffset(db, topic, 'counter')) < (await selectMaxOffset(db, topic)) && performance.now() < deadline) await sleep(50);
    return { outcomes, counted: (await selectCounterValue(db, counter)) ?? 0 };
  } finally {
    thaw();
    await subscription.close();
    await server.close();
    agent.destroy();
  }
}

function summary(run: FreezeRun): string {
  const ms = run.outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const at = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0);
  const ok = run.outcomes.filter((o) => o.status === 204).length;
  return `${run.outcomes.length} publishes while frozen, ${ok} answered 204, latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`;
}

describe('a frozen consumer and the publishers (private MariaDB)', () => {
  const database = usePrivateDatabase();
  let pool: Pool;
  before(() => {
    pool = testPool(database().url, 8);
  });
  after(async () => {
    await pool.end();
  });

  test("at the worker's default isolation, publishing goes on unaffected", async (t) => {
    const isolation = defaultIsolation('offset', 'batched');
    const run = await publishWhileFrozen(database().url, pool, isolation);
    t.diagnostic(`${isolation}: ${summary(run)}`);
    assert.ok(run.outcomes.length >= PUBLISHERS * 5, `publishers kept going: ${summary(run)}`);
    assert.deepEqual(run.outcomes.filter((o) => o.status !== 204), [], 'every publish answered 204');
    assert.deepEqual(run.outcomes.filter((o) => o.ms >= BLOCKED_MS), [], `no publish waited for the frozen consumer: ${summary(run)}`);
    assert.equal(run.counted, run.outcomes.length + 5, 'every message counted exactly once');
  });

  // The server's sessions wait at most 1 s for a row lock (then the request is answered 503, not published), so
  // a blocked publish shows as a refusal after that wait, or as a long wait where the lock wait is longer.
  test('under SERIALIZABLE the frozen consumer blocks every publish until its transaction ends or the lock wait runs out', async (t) => {
    const run = await publishWhileFrozen(database().url, pool, 'SERIALIZABLE');
    t.diagnostic(`SERIALIZABLE: ${summary(run)}`);
    assert.ok(run.outcomes.length > 0, `publishes were tried: ${summary(run)}`);
    assert.deepEqual(
      run.outcomes.filter((o) => o.status === 204 && o.ms < BLOCKED_MS),
      [],
      `no publish got through while the consumer was frozen: ${summary(run)}`,
    );
    assert.ok(run.outcomes.length < PUBLISHERS * 5, `publishers were held up: ${summary(run)}`);
    assert.equal(run.counted, run.outcomes.filter((o) => o.status === 204).length + 5);
  });
});
