// The HTTP counter server and the worker on PostgreSQL (a private server): publishes over HTTP counted exactly
// once in offset and queue mode, publish de-duplication (a retried id publishes once, an id bound to its
// counter, concurrent duplicates), a batch over PostgreSQL's parameter cap published whole, the failure answers
// (refused 503, hung 504, killed 503/504), the publish-after-insert failpoint, and the CLI's one
// URL: --database-url / DATABASE_URL with postgres://, the password never printed, a bad scheme named.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';
import { DEFAULT_SERVER_OPTIONS, validateServerOptions } from '../src/system/server/options.ts';
import { startCounterServer } from '../src/system/server/server.ts';
import type { CounterServer } from '../src/system/server/options.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker, type RunningWorker } from '../src/system/worker.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { countPgMessages } from '../src/system/sql/postgres/messagesTable.ts';
import { MAX_MESSAGES_PER_INSERT } from '../src/system/sql/postgres/messagesTable.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';
import { eventually } from './contract/pubsubContract.ts';
import { checkFrozenReads, FROZEN_READS_OPTIONS } from './support/frozenReads.ts';
import { request } from './support/httpRequest.ts';
import { publishIntoFailpoint } from './support/publishAfterInsert.ts';
import { childEnvironment } from '../src/config.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('the counter server and worker on PostgreSQL', () => {
  const { server: pgServer, db } = usePrivatePostgresDatabase();

  async function system(mode: TopicMode, dedup: boolean): Promise<{ server: CounterServer; worker: RunningWorker; topic: string; close(): Promise<void> }> {
    const topic = `http_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode, dedup });
    const server = await startCounterServer(
      validateServerOptions({ ...DEFAULT_SERVER_OPTIONS, databaseUrl: pgServer().url, port: 0, host: '127.0.0.1', topic, topicSchema: mode, dedup }),
      { log: () => undefined },
    );
    const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: pgServer().url, topic, mode, pollIntervalMs: 5, log: () => undefined });
    return {
      server,
      worker,
      topic,
      async close() {
        await worker.close();
        await server.close();
      },
    };
  }

  for (const mode of ['offset', 'queue'] as const) {
    test(`${mode} mode: 16 clients x 40 POSTs over HTTP, every 204 counted exactly once`, async () => {
      const s = await system(mode, false);
      try {
        const counters = Array.from({ length: 4 }, () => randomUUID());
        const ok = new Map<string, number>();
        await Promise.all(
          Array.from({ length: 16 }, async (_, c) => {
            for (let i = 0; i < 40; i += 1) {
              const id = counters[(c + i) % counters.length]!;
              const r = await request(`${s.server.url}/count/${id}`, 'POST');
              assert.equal(r.status, 204, r.body);
              ok.set(id, (ok.get(id) ?? 0) + 1);
            }
          }),
        );
        for (const id of counters) {
          await eventually(`counter ${id} to reach ${ok.get(id)}`, async () => {
            const r = await request(`${s.server.url}/count/${id}`, 'GET');
            return JSON.parse(r.body).value === ok.get(id);
          }, 30_000);
        }
        assert.equal(s.worker.subscription.stats.gapsPassed, 0, 'no hole is ever passed on PostgreSQL');
        assert.equal(s.worker.gapProof, undefined, 'no gap proof runs on PostgreSQL');
        const health = await request(`${s.server.url}/healthz`, 'GET');
        assert.equal(health.status, 200);
      } finally {
        await s.close();
      }
    });
  }

  test('--dedup: a retried id publishes once, the same id for another counter is 409, 20 concurrent copies publish one message', async () => {
    const s = await system('offset', true);
    try {
      const counter = randomUUID();
      const first = await request(`${s.server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'req-1' });
      const retry = await request(`${s.server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'req-1' });
      assert.equal(first.status, 204);
      assert.equal(retry.status, 204);
      assert.equal(retry.headers['x-publish-duplicate'], '1');
      const other = await request(`${s.server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': 'req-1' });
      assert.equal(other.status, 409, other.body);
      // Byte for byte: another case is another request.
      const upper = await request(`${s.server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'REQ-1' });
      assert.equal(upper.status, 204);
      assert.equal(upper.headers['x-publish-duplicate'], undefined);
      const copies = await Promise.all(Array.from({ length: 20 }, () => request(`${s.server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'req-2' })));
      assert.deepEqual(copies.map((r) => r.status), Array(20).fill(204));
      assert.equal(copies.filter((r) => r.headers['x-publish-duplicate'] === undefined).length, 1, 'one copy published');
      assert.equal(await countPgMessages(db().executor(), s.topic), 3);
      await eventually('the counter to reach 3', async () => JSON.parse((await request(`${s.server.url}/count/${counter}`, 'GET')).body).value === 3);
    } finally {
      await s.close();
    }
  });

  test(`a publish of ${MAX_MESSAGES_PER_INSERT + 5} messages (over the 65,535-parameter cap) goes as several INSERTs, all or nothing`, async () => {
    const topic = `big_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup: false });
    const messages = Array.from({ length: MAX_MESSAGES_PER_INSERT + 5 }, () => ({ uuid: randomUUID(), payload: {}, metadata: {} }));
    await db().transaction('READ COMMITTED', (tx) => new SqlPublisher(db().executor(), db().engine).publish(topic, messages, tx));
    assert.equal(await countPgMessages(db().executor(), topic), messages.length);
    // A failure in the second INSERT takes the first one's rows back with it.
    const bad = [...messages.slice(0, MAX_MESSAGES_PER_INSERT), { uuid: 'x'.repeat(37), payload: {}, metadata: {} }];
    await assert.rejects(db().transaction('READ COMMITTED', (tx) => new SqlPublisher(db().executor(), db().engine).publish(topic, bad, tx)));
    assert.equal(await countPgMessages(db().executor(), topic), messages.length);
  });

  async function serve(topic: string, extra: Partial<Parameters<typeof validateServerOptions>[0]> = {}, dedup = false): Promise<CounterServer> {
    await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup });
    const server = await startCounterServer(
      validateServerOptions({ ...DEFAULT_SERVER_OPTIONS, databaseUrl: pgServer().url, port: 0, host: '127.0.0.1', topic, dedup, ...extra }),
      { log: () => undefined },
    );
    servers.push(server);
    return server;
  }
  const servers: CounterServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  test('a statement the database refuses answers 503 not-published (it cannot commit later), with and without dedup', async () => {
    for (const dedup of [false, true]) {
      const topic = `refused_${dedup ? 'd' : 'n'}_${randomUUID().slice(0, 6)}`;
      const server = await serve(topic, {}, dedup);
      await db().executor().query(`DROP TABLE "watermill_${topic}"`);
      const reply = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `${topic}-1` });
      assert.equal(reply.status, 503, `dedup ${dedup}: ${reply.body}`);
      assert.equal(JSON.parse(reply.body).outcome, 'not-published');
      assert.match(String(JSON.parse(reply.body).error), /42P01/);
      await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup });
      const again = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `${topic}-1` });
      assert.equal(again.status, 204, 'with dedup, the refused attempt left no claim behind');
      assert.equal(again.headers['x-publish-duplicate'], undefined);
    }
  });

  test('database hung (SIGSTOP): a publish sent but not answered in publishTimeoutMs answers 504 unknown, /healthz 503; 204 after the thaw', async () => {
    const server = await serve(`hang_${randomUUID().slice(0, 6)}`, { publishTimeoutMs: 1_000, healthTimeoutMs: 500 });
    const counter = randomUUID();
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
    pgServer().pause();
    try {
      const reply = await request(`${server.url}/count/${counter}`, 'POST');
      assert.equal(reply.status, 504, reply.body);
      assert.equal(JSON.parse(reply.body).outcome, 'unknown');
      assert.equal((await request(`${server.url}/healthz`, 'GET')).status, 503);
    } finally {
      pgServer().resume();
    }
    let status = 0;
    for (let i = 0; i < 50 && status !== 204; i += 1) {
      status = (await request(`${server.url}/count/${counter}`, 'POST')).status;
      if (status !== 204) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 204);
  });

  test('database hung (SIGSTOP): GET /count beyond the read connections and poolQueueLimit answers 503 at once', async () => {
    const server = await serve(`readq_${randomUUID().slice(0, 6)}`, FROZEN_READS_OPTIONS);
    await checkFrozenReads(server.url, () => pgServer().pause(), () => pgServer().resume());
  });

  test('database killed: POST, GET and /healthz answer 503 or 504 with a JSON outcome, never 2xx; 204 after the restart', async () => {
    const server = await serve(`outage_${randomUUID().slice(0, 6)}`, { publishTimeoutMs: 3_000, connectTimeoutMs: 1_000 });
    const counter = randomUUID();
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
    await pgServer().kill('SIGKILL');
    try {
      const during = await Promise.all(Array.from({ length: 20 }, () => request(`${server.url}/count/${counter}`, 'POST')));
      for (const r of during) {
        assert.ok(r.status === 503 || r.status === 504, `status ${r.status}: ${r.body}`);
        assert.equal(JSON.parse(r.body).outcome, r.status === 503 ? 'not-published' : 'unknown');
      }
      assert.equal((await request(`${server.url}/count/${counter}`, 'GET')).status, 503);
      assert.equal((await request(`${server.url}/healthz`, 'GET')).status, 503);
    } finally {
      await pgServer().start();
    }
    let status = 0;
    for (let i = 0; i < 50 && status !== 204; i += 1) {
      status = (await request(`${server.url}/count/${counter}`, 'POST')).status;
      if (status !== 204) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 204, 'publishing works again after the database restarted');
    assert.equal((await request(`${server.url}/healthz`, 'GET')).status, 200);
  });

  test('dedup: an id locked by another session fails only its own request (503, lock_timeout 55P03), not its batch', async () => {
    const topic = `dedup_lock_${randomUUID().slice(0, 6)}`;
    const server = await serve(topic, { coalesceLingerMs: 100, publishTimeoutMs: 8_000 }, true);
    const holder = new pg.Client({ connectionString: pgServer().url });
    await holder.connect();
    const published = async (id: string): Promise<number> =>
      Number((await db().executor().query<{ n: string }[]>(`SELECT COUNT(*) AS n FROM "watermill_${topic}" WHERE "metadata"->>'request_id' = $1`, [id]))[0]?.n);
    try {
      // An uncommitted claim of held-1: any other claim of it waits on the row lock.
      await holder.query('BEGIN');
      await holder.query(`INSERT INTO "eob_publish_dedup_${topic}" ("request_id", "counter_uuid") VALUES ('held-1', $1)`, [randomUUID()]);
      const counter = randomUUID();
      const started = Date.now();
      const ids = ['held-1', ...Array.from({ length: 30 }, (_, i) => `free-${i}`)];
      const replies = await Promise.all(ids.map((id) => request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': id })));
      const elapsed = Date.now() - started;
      assert.equal(replies[0]?.status, 503, `the contested id fails: ${replies[0]?.body}`);
      assert.equal(JSON.parse(replies[0]!.body).outcome, 'not-published');
      assert.deepEqual([...new Set(replies.slice(1).map((r) => r.status))], [204], 'every other request of the batch is published');
      assert.ok(elapsed < 6_000, `answered after the 1 s lock_timeout (${elapsed} ms)`);
      for (const id of ids.slice(1)) assert.equal(await published(id), 1);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    assert.equal(await published('held-1'), 0, 'the 503 published nothing');
    const again = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': 'held-1' });
    assert.equal(again.status, 204, 'once the lock is gone the id publishes');
  });

  test('failpoint publish-after-insert: the client gets no 2xx; the INSERT committed without dedup, rolled back with it', async () => {
    for (const dedup of [false, true]) {
      const topic = `fp_${dedup ? 'd' : 'n'}_${randomUUID().slice(0, 6)}`;
      await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup });
      const unanswered = await publishIntoFailpoint(topic, dedup ? ['--dedup'] : [], { MYSQL_URL: undefined, DATABASE_URL: pgServer().url });
      const rows = await db().executor().query<{ n: string }[]>(`SELECT COUNT(*) AS n FROM "watermill_${topic}" WHERE "metadata"->>'request_id' = $1`, [unanswered]);
      assert.equal(Number(rows[0]?.n), dedup ? 0 : 1);
    }
  });

  test('the CLI takes a postgres:// URL from DATABASE_URL and never prints its password; a bad scheme is named', async () => {
    const password = new URL(pgServer().url).password;
    assert.ok(password.length >= 8);
    const run = (args: string[], env: Record<string, string | undefined>, untilLine?: RegExp): Promise<{ code: number | null; output: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: childEnvironment({ MYSQL_URL: undefined, DATABASE_URL: undefined, EOB_LOG: 'quiet', ...env }),
        });
        let output = '';
        const onData = (d: Buffer): void => {
          output += d.toString();
          if (untilLine?.test(output)) child.kill('SIGTERM');
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', (code) => resolve({ code, output }));
      });
    const started = await run(['worker', '--topic', `cli_${randomUUID().slice(0, 8)}`], { DATABASE_URL: pgServer().url }, /worker started/);
    assert.match(started.output, /worker started .*"databaseUrl":"postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/, started.output);
    assert.ok(!started.output.includes(password), 'the password is not printed');
    const bad = await run(['worker'], { DATABASE_URL: 'redis://127.0.0.1:6379/0' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.output, /must start with mysql:\/\/ .* or postgres:\/\//, bad.output);
  });
});
