// The HTTP counter server against a private MariaDB (test/support/privateDatabase.ts): every status, 204 only
// after the commit, publish de-duplication (concurrent duplicates, ids compared byte for byte, an id bound to
// its counter, migration of an old table, a contested id failing alone), failpoints, 503 (never published)
// against 504 (outcome unknown) with the database down, frozen or refusing, graceful close, and the CLI's
// start-up errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import type { ManagedDatabase } from './support/privateDatabase.ts';
import { createPool, ensureDatabase, executorOf } from '../src/system/db/mariadb/pool.ts';
import type { Pool } from '../src/system/db/mariadb/pool.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_SERVER_OPTIONS, validateServerOptions } from '../src/system/server/options.ts';
import { startCounterServer } from '../src/system/server/server.ts';
import type { CounterServer, ServerOptions } from '../src/system/server/options.ts';
import { countDedupRows } from '../src/system/sql/mariadb/dedupTable.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { checkFrozenReads, FROZEN_READS_OPTIONS } from './support/frozenReads.ts';
import { request, type Reply } from './support/httpRequest.ts';
import { publishIntoFailpoint } from './support/publishAfterInsert.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** MariaDB's JSON is LONGTEXT, MySQL's arrives parsed: accept both. */
const jsonValue = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

const json = (r: Reply): Record<string, unknown> => JSON.parse(r.body) as Record<string, unknown>;

async function messagesWithRequestId(db: SqlExecutor, topic: string, requestId: string): Promise<number> {
  const rows = await db.query<{ n: number }[]>(
    `SELECT COUNT(*) AS n FROM \`watermill_${topic}\` WHERE JSON_UNQUOTE(JSON_EXTRACT(\`metadata\`, '$.request_id')) = ?`,
    [requestId],
  );
  return Number(rows[0]?.n ?? 0);
}

async function countRows(db: SqlExecutor, table: string): Promise<number> {
  const rows = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM \`${table}\``);
  return Number(rows[0]?.n ?? 0);
}

describe('counter server (private MariaDB)', () => {
  let database: ManagedDatabase;
  let pool: Pool;
  let db: SqlExecutor;
  const servers: CounterServer[] = [];

  async function serve(overrides: Partial<ServerOptions>): Promise<CounterServer> {
    const options: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, databaseUrl: database.url, port: 0, ...overrides };
    await ensureSchema(db, { topic: options.topic, topicSchema: options.topicSchema, dedup: options.dedup });
    const server = await startCounterServer(options, { log: () => undefined });
    servers.push(server);
    return server;
  }

  before(async () => {
    database = await startPrivateDatabase();
    await ensureDatabase(database.url);
    pool = createPool({ url: database.url, connectionLimit: 4, connectTimeoutMs: 5_000 });
    db = executorOf(pool);
  });
  after(async () => {
    for (const s of servers) await s.close();
    await pool?.end();
    await database?.remove();
  });

  test('POST /count answers 204 with X-Request-Id, and the row is already committed when the 204 arrives', async () => {
    // Pool 2: at most two flushes in flight, so the concurrent requests queue up and leave in batches.
    const server = await serve({ topic: 'commit', poolSize: 2 });
    const counter = randomUUID();
    // 300 concurrent requests go through coalesced batches; each is checked the moment it is answered, from
    // another connection.
    const checks = Array.from({ length: 300 }, async (_, i) => {
      const requestId = `commit-${i}`;
      const reply = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': requestId });
      assert.equal(reply.status, 204);
      assert.equal(reply.headers['x-request-id'], requestId);
      assert.equal(await messagesWithRequestId(db, 'commit', requestId), 1, `row of ${requestId} visible after its 204`);
    });
    await Promise.all(checks);
    assert.equal(await countRows(db, 'watermill_commit'), 300);
    assert.ok((server.stats.coalescer?.batches ?? 0) < 300, 'requests were coalesced');
    const rows = await db.query<{ uuid: string; payload: unknown; metadata: unknown }[]>('SELECT `uuid`, `payload`, `metadata` FROM `watermill_commit` LIMIT 1');
    const row = rows[0];
    assert.ok(row !== undefined);
    assert.match(row.uuid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(jsonValue(row.payload), { counter_uuid: counter });
    assert.match((jsonValue(row.metadata) as { request_id: string }).request_id, /^commit-\d+$/);
  });

  test("an X-Request-Id holding quotes and backslashes is published as sent, also under NO_BACKSLASH_ESCAPES", async () => {
    // A database set to NO_BACKSLASH_ESCAPES reads \' in a text literal as a backslash that ends the string:
    // with the values written into the INSERT's text, such an id broke its whole batch (a syntax error, so the
    // other requests of the batch failed too) and let the rest of the id be read as SQL. Bound values are not
    // read as SQL text.
    const ids = ["it's", "quote\\'),('x", 'back\\slash', '"dq"', "x'--"];
    // A pool of its own, ended before the mode is restored: no session of the file's pool takes the mode.
    const own = createPool({ url: database.url, connectionLimit: 1, connectTimeoutMs: 5_000 });
    const run = executorOf(own);
    await run.query("SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES'");
    try {
      // The server's pool connects after the change, so its sessions take the global mode.
      const server = await serve({ topic: 'noescapes', poolSize: 1 });
      const counter = randomUUID();
      const plain = Array.from({ length: 20 }, (_, i) => `plain-${i}`);
      const replies = await Promise.all([...ids, ...plain].map((id) => request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': id })));
      assert.deepEqual(replies.map((r) => r.status), replies.map(() => 204), replies.map((r) => r.body).join(' | '));
      const rows = await run.query<{ metadata: unknown }[]>('SELECT `metadata` FROM `watermill_noescapes`');
      const published = rows.map((r) => (jsonValue(r.metadata) as { request_id: string }).request_id).sort();
      assert.deepEqual(published, [...ids, ...plain].sort());
    } finally {
      await run.query('SET GLOBAL sql_mode = DEFAULT');
      await own.end();
    }
  });

  test('a request without X-Request-Id gets a generated one, and an upper-case uuid counts as lower-case', async () => {
    const server = await serve({ topic: 'genid', coalesce: false });
    const counter = randomUUID();
    const reply = await request(`${server.url}/count/${counter.toUpperCase()}`, 'POST');
    assert.equal(reply.status, 204);
    const id = reply.headers['x-request-id'];
    assert.equal(typeof id, 'string');
    assert.equal(await messagesWithRequestId(db, 'genid', id as string), 1);
    const rows = await db.query<{ payload: unknown }[]>('SELECT `payload` FROM `watermill_genid`');
    assert.deepEqual(jsonValue(rows[0]?.payload), { counter_uuid: counter });
  });

  test('queue schema: publishes into eob_queue_<topic>', async () => {
    const server = await serve({ topic: 'q', topicSchema: 'queue' });
    assert.equal((await request(`${server.url}/count/${randomUUID()}`, 'POST')).status, 204);
    const rows = await db.query<{ acked: number }[]>('SELECT `acked` FROM `eob_queue_q`');
    assert.deepEqual(rows.map((r) => Number(r.acked)), [0]);
  });

  test('GET /count/{uuid}: 0 when absent, the value when present; 400 for a bad uuid', async () => {
    const server = await serve({ topic: 'reads' });
    const counter = randomUUID();
    const absent = await request(`${server.url}/count/${counter}`, 'GET');
    assert.equal(absent.status, 200);
    assert.match(String(absent.headers['content-type']), /application\/json/);
    assert.deepEqual(json(absent), { counter_uuid: counter, value: 0 });
    await db.query('INSERT INTO `counter` (`id`, `value`) VALUES (?, 42)', [counter]);
    assert.deepEqual(json(await request(`${server.url}/count/${counter}`, 'GET')), { counter_uuid: counter, value: 42 });
    const bad = await request(`${server.url}/count/not-a-uuid`, 'GET');
    assert.equal(bad.status, 400);
    assert.match(String(json(bad).error), /counter uuid/);
  });

  test('400, 404, 405, 413 and the /noop route; none of them writes a message', async () => {
    const server = await serve({ topic: 'statuses' });
    const u = randomUUID();
    const cases: [string, string, http.OutgoingHttpHeaders, number, RegExp][] = [
      ['POST', '/count/not-a-uuid', {}, 400, /counter uuid/],
      ['POST', `/count/${u}x`, {}, 400, /counter uuid/],
      ['POST', `/count/${u}`, { 'X-Request-Id': 'has space' }, 400, /X-Request-Id/],
      ['POST', `/count/${u}`, { 'X-Request-Id': 'x'.repeat(129) }, 400, /X-Request-Id/],
      ['GET', '/', {}, 404, /no such path/],
      ['POST', '/count', {}, 404, /no such path/],
      ['POST', '/count/', {}, 404, /no such path/],
      ['POST', `/count/${u}/extra`, {}, 404, /no such path/],
      ['DELETE', `/count/${u}`, {}, 405, /DELETE is not allowed/],
      ['PUT', `/count/${u}`, {}, 405, /not allowed/],
      ['POST', '/healthz', {}, 405, /not allowed/],
      ['GET', `/noop/${u}`, {}, 405, /not allowed/],
      ['POST', '/noop/not-a-uuid', {}, 400, /counter uuid/],
    ];
    for (const [method, path, headers, status, error] of cases) {
      const reply = await request(`${server.url}${path}`, method, headers);
      assert.equal(reply.status, status, `${method} ${path}`);
      assert.match(String(json(reply).error), error, `${method} ${path}`);
    }
    assert.equal((await request(`${server.url}/count/${u}`, 'DELETE')).headers.allow, 'GET, POST');
    assert.equal((await request(`${server.url}/healthz`, 'POST')).headers.allow, 'GET');
    assert.equal((await request(`${server.url}/noop/${u}`, 'GET')).headers.allow, 'POST');

    const big = 'x'.repeat(DEFAULT_SERVER_OPTIONS.maxBodyBytes + 1);
    const declared = await request(`${server.url}/count/${u}`, 'POST', {}, big);
    assert.equal(declared.status, 413);
    assert.match(String(json(declared).error), /body over/);
    const chunked = await request(`${server.url}/count/${u}`, 'POST', {}, big, true);
    assert.equal(chunked.status, 413, 'a chunked body is counted too');
    const small = await request(`${server.url}/count/${u}`, 'POST', { 'X-Request-Id': 'small-body' }, 'ok');
    assert.equal(small.status, 204, 'a small body is tolerated');

    const noop = await request(`${server.url}/noop/${u}`, 'POST', { 'X-Request-Id': 'noop-1' });
    assert.equal(noop.status, 204);
    assert.equal(noop.headers['x-request-id'], 'noop-1');
    assert.equal(await countRows(db, 'watermill_statuses'), 1, 'only the small-body request published');
  });

  test('GET /healthz answers 200 while the database answers', async () => {
    const server = await serve({ topic: 'health' });
    const reply = await request(`${server.url}/healthz`, 'GET');
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.queue, { depth: 0, bound: DEFAULT_SERVER_OPTIONS.maxQueuedPublishes, inFlight: 0, flushesInFlight: 0, shed: 0, expired: 0 });
  });

  for (const coalesce of [true, false]) {
    test(`dedup (${coalesce ? 'coalesced' : 'one transaction per request'}): concurrent duplicates publish exactly one message per request id`, async () => {
      const topic = coalesce ? 'dedup_c' : 'dedup_nc';
      const server = await serve({ topic, dedup: true, coalesce });
      const counter = randomUUID();
      const ids = Array.from({ length: 20 }, () => randomUUID());
      // Every id sent 5 times at once: copies land in the same batch and in concurrent transactions.
      const replies = await Promise.all(
        ids.flatMap((id) => Array.from({ length: 5 }, () => request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': id }))),
      );
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [204]);
      assert.equal(replies.filter((r) => r.headers['x-publish-duplicate'] === '1').length, 80, '4 of 5 copies are duplicates');
      // A retry long after the first commit.
      const retry = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': ids[0] });
      assert.equal(retry.status, 204);
      assert.equal(retry.headers['x-publish-duplicate'], '1');
      for (const id of ids) assert.equal(await messagesWithRequestId(db, topic, id), 1, `one message for ${id}`);
      assert.equal(await countRows(db, `watermill_${topic}`), 20);
      assert.equal(await countDedupRows(db, topic), 20);
      const uuids = await db.query<{ uuid: string }[]>(`SELECT \`uuid\` FROM \`watermill_${topic}\``);
      assert.deepEqual(new Set(uuids.map((r) => r.uuid)), new Set(ids), 'the message uuid is the request id');
      const tooLong = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'y'.repeat(37) });
      assert.equal(tooLong.status, 400);
    });
  }

  test('dedup: request ids are compared byte for byte (Abc-1 and abc-1 are two requests)', async () => {
    const server = await serve({ topic: 'dedup_case', dedup: true });
    const counter = randomUUID();
    const upper = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'Abc-1' });
    const lower = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'abc-1' });
    assert.deepEqual([upper.status, lower.status], [204, 204]);
    assert.equal(lower.headers['x-publish-duplicate'], undefined, 'abc-1 is not a retry of Abc-1');
    assert.equal(await messagesWithRequestId(db, 'dedup_case', 'Abc-1'), 1);
    assert.equal(await messagesWithRequestId(db, 'dedup_case', 'abc-1'), 1);
    const retry = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'abc-1' });
    assert.equal(retry.headers['x-publish-duplicate'], '1', 'the same bytes again are a retry');
    assert.equal(await countDedupRows(db, 'dedup_case'), 2);
  });

  test('dedup: a request id reused for another counter answers 409 with a JSON error and publishes nothing', async () => {
    const server = await serve({ topic: 'dedup_bind', dedup: true, coalesceLingerMs: 20 });
    const [a, b] = [randomUUID(), randomUUID()];
    assert.equal((await request(`${server.url}/count/${a}`, 'POST', { 'X-Request-Id': 'zz-9' })).status, 204);
    const reused = await request(`${server.url}/count/${b}`, 'POST', { 'X-Request-Id': 'zz-9' });
    assert.equal(reused.status, 409);
    assert.match(String(reused.headers['content-type']), /application\/json/);
    assert.match(String(json(reused).error), new RegExp(`zz-9 was already used for counter ${a}`));
    assert.equal(reused.headers['x-request-id'], 'zz-9');
    const retry = await request(`${server.url}/count/${a}`, 'POST', { 'X-Request-Id': 'zz-9' });
    assert.equal(retry.status, 204, 'a true retry (same id, same counter) is still a duplicate');
    assert.equal(retry.headers['x-publish-duplicate'], '1');
    // Both in one coalesced batch (20 ms linger): the first wins, the other counter is refused.
    const both = await Promise.all([a, b].map((c) => request(`${server.url}/count/${c}`, 'POST', { 'X-Request-Id': 'yy-1' })));
    assert.deepEqual(both.map((r) => r.status), [204, 409]);
    assert.equal(await messagesWithRequestId(db, 'dedup_bind', 'zz-9'), 1);
    assert.equal(await messagesWithRequestId(db, 'dedup_bind', 'yy-1'), 1);
    const payloads = await db.query<{ payload: unknown }[]>('SELECT `payload` FROM `watermill_dedup_bind`');
    assert.deepEqual(payloads.map((r) => (jsonValue(r.payload) as { counter_uuid: string }).counter_uuid), [a, a], 'counter B never got a message');
    assert.equal(server.stats.conflicts, 2);
  });

  test('dedup: a table from an earlier version (case-insensitive VARCHAR key, no counter) is migrated in place', async () => {
    await db.query('DROP TABLE IF EXISTS `eob_publish_dedup_dedup_old`');
    await db.query(`CREATE TABLE \`eob_publish_dedup_dedup_old\` (
      \`request_id\` VARCHAR(36) NOT NULL PRIMARY KEY, \`token\` CHAR(36) NOT NULL,
      \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`);
    await db.query("INSERT INTO `eob_publish_dedup_dedup_old` (`request_id`, `token`) VALUES ('Old-1', 'x')");
    const server = await serve({ topic: 'dedup_old', dedup: true });
    const columns = await db.query<{ name: string; type: string }[]>(
      "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'eob_publish_dedup_dedup_old' ORDER BY ORDINAL_POSITION",
    );
    assert.deepEqual(columns.map((c) => `${c.name} ${c.type}`), ['request_id varbinary', 'counter_uuid char', 'token char', 'created_at timestamp']);
    const counter = randomUUID();
    const old = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'Old-1' });
    assert.equal(old.headers['x-publish-duplicate'], '1', 'an id claimed before the migration stays claimed, for any counter');
    const lower = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': 'old-1' });
    assert.deepEqual([lower.status, lower.headers['x-publish-duplicate']], [204, undefined], 'and no longer swallows other spellings');
    assert.equal(await messagesWithRequestId(db, 'dedup_old', 'old-1'), 1);
  });

  test('dedup: an id locked by another session fails only its own request (503), not its batch', async () => {
    const server = await serve({ topic: 'dedup_lock', dedup: true, coalesceLingerMs: 100, publishTimeoutMs: 8_000 });
    const holder = await pool.getConnection();
    try {
      // An uncommitted claim of held-1: any other claim of it waits on the row lock.
      await holder.query('START TRANSACTION');
      await holder.query("INSERT INTO `eob_publish_dedup_dedup_lock` (`request_id`, `counter_uuid`, `token`) VALUES ('held-1', NULL, 'holder')");
      const counter = randomUUID();
      const started = Date.now();
      const ids = ['held-1', ...Array.from({ length: 30 }, (_, i) => `free-${i}`)];
      // All within the 100 ms linger: one batch.
      const replies = await Promise.all(ids.map((id) => request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': id })));
      const elapsed = Date.now() - started;
      assert.equal(replies[0]?.status, 503, 'the contested id fails');
      assert.equal(json(replies[0] as Reply).outcome, 'not-published');
      assert.deepEqual([...new Set(replies.slice(1).map((r) => r.status))], [204], 'every other request of the batch is published');
      assert.ok(elapsed < 6_000, `answered after the 1 s lock wait, not InnoDB's 50 s (${elapsed} ms)`);
      for (const id of ids.slice(1)) assert.equal(await messagesWithRequestId(db, 'dedup_lock', id), 1);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    assert.equal(await messagesWithRequestId(db, 'dedup_lock', 'held-1'), 0, 'the 503 published nothing');
    const again = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': 'held-1' });
    assert.equal(again.status, 204, 'once the lock is gone the id publishes');
  });

  test('graceful close answers the requests in hand (each 204 committed) and then stops listening', async () => {
    // The longest linger allowed, so the requests wait in the queue until close() flushes them.
    const server = await serve({ topic: 'closing', coalesceLingerMs: 1_000 });
    const counter = randomUUID();
    const sent = Array.from({ length: 50 }, (_, i) =>
      request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': `close-${i}` }).then(
        (r) => ({ id: `close-${i}`, status: r.status }),
        () => ({ id: `close-${i}`, status: 0 }),
      ),
    );
    // Close once the server holds requests (a fixed sleep closed before any had arrived on a loaded machine).
    let inHand = 0;
    for (const deadline = Date.now() + 5_000; inHand === 0 && Date.now() < deadline; await sleep(5)) {
      inHand = Number((json(await request(`${server.url}/healthz`, 'GET')).queue as { depth: number }).depth);
    }
    assert.ok(inHand > 0, 'no request reached the queue within 5 s');
    await server.close();
    const outcomes = await Promise.all(sent);
    const ok = outcomes.filter((o) => o.status === 204);
    assert.ok(ok.length >= inHand, `the ${inHand} requests in hand were answered 204 (got ${ok.length})`);
    for (const o of ok) assert.equal(await messagesWithRequestId(db, 'closing', o.id), 1, `${o.id} answered 204 must be committed`);
    await assert.rejects(request(`${server.url}/healthz`, 'GET'), /ECONNREFUSED/);
  });

  test('failpoint publish-after-insert: the client gets no 2xx (process killed before it answers)', async () => {
    for (const dedup of [false, true]) {
      const topic = dedup ? 'fp_dedup' : 'fp';
      await ensureSchema(db, { topic, topicSchema: 'offset', dedup });
      const unanswered = await publishIntoFailpoint(topic, ['--mysql-url', database.url, ...(dedup ? ['--dedup'] : [])], {});
      // Without dedup the INSERT autocommitted before the crash (outcome unknown to the client); with dedup
      // the crash came before COMMIT, so the transaction rolled back.
      assert.equal(await messagesWithRequestId(db, topic, unanswered), dedup ? 0 : 1);
    }
  });

  test('database hung (SIGSTOP): a publish sent but not answered in publishTimeoutMs answers 504 unknown, /healthz 503', async () => {
    const server = await serve({ topic: 'hang', publishTimeoutMs: 1_000, healthTimeoutMs: 500 });
    const counter = randomUUID();
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
    database.pause();
    try {
      const started = Date.now();
      const reply = await request(`${server.url}/count/${counter}`, 'POST');
      assert.equal(reply.status, 504);
      assert.equal(json(reply).outcome, 'unknown');
      assert.match(String(json(reply).error), /no answer within 1000 ms/);
      assert.ok(Date.now() - started < 5_000);
      assert.equal((await request(`${server.url}/healthz`, 'GET')).status, 503);
    } finally {
      database.resume();
    }
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
  });

  test('database hung before the first connection: a request whose batch never got a connection answers 503, and is never published', async () => {
    // A new server has no connection yet; connecting to the frozen database hangs in its handshake.
    const server = await serve({ topic: 'noconn', publishTimeoutMs: 1_000, connectTimeoutMs: 5_000 });
    database.pause();
    let reply: Reply;
    try {
      reply = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': 'noconn-1' });
    } finally {
      database.resume();
    }
    assert.equal(reply.status, 503);
    assert.equal(json(reply).outcome, 'not-published');
    assert.match(String(json(reply).error), /no database connection within 1000 ms/);
    let status = 0;
    for (let i = 0; i < 40 && status !== 204; i += 1) {
      status = (await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `noconn-after-${i}` })).status;
      if (status !== 204) await sleep(250);
    }
    assert.equal(status, 204);
    assert.equal(await messagesWithRequestId(db, 'noconn', 'noconn-1'), 0, 'the cancelled request was left out of its batch');
  });

  test('database frozen: GET /count beyond the read connections and poolQueueLimit answers 503 at once', async () => {
    const server = await serve({ topic: 'readqueue', ...FROZEN_READS_OPTIONS });
    await checkFrozenReads(server.url, () => database.pause(), () => database.resume());
  });

  test('database frozen under 2,000 concurrent POSTs: shed at once, 503 only for requests never sent, 204 after the thaw', async () => {
    // Pool 4 x batch 100: at most 400 requests at the database; 300 may wait; the other 1,300 are shed.
    const server = await serve({ topic: 'frozen', poolSize: 4, maxQueuedPublishes: 300, publishTimeoutMs: 2_000, queryTimeoutMs: 3_000, coalesceLingerMs: 5 });
    const counter = randomUUID();
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
    database.pause();
    let replies: { id: string; status: number; outcome: unknown; retryAfter: unknown; ms: number; sinceConnectMs: number }[];
    try {
      const started = Date.now();
      replies = await Promise.all(
        Array.from({ length: 2_000 }, async (_, i) => {
          const id = `frozen-${i}`;
          const r = await request(`${server.url}/count/${counter}`, 'POST', { 'X-Request-Id': id });
          return { id, status: r.status, outcome: json(r).outcome, retryAfter: r.headers['retry-after'], ms: Date.now() - started, sinceConnectMs: r.sinceConnectMs };
        }),
      );
    } finally {
      database.resume();
    }
    const byStatus = new Map<number, typeof replies>();
    for (const r of replies) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), r]);
    assert.deepEqual([...byStatus.keys()].sort(), [503, 504], 'every answer is 503 or 504 while frozen');
    const unavailable = byStatus.get(503) ?? [];
    const unknown = byStatus.get(504) ?? [];
    assert.ok(unknown.length <= 400, `504 only for requests in flushes that were sent (${unknown.length})`);
    for (const r of unavailable) {
      assert.equal(r.outcome, 'not-published');
      assert.equal(r.retryAfter, '1');
    }
    for (const r of unknown) assert.equal(r.outcome, 'unknown');
    assert.ok(server.stats.coalescer.shed >= 1_000, `most were shed at once (${server.stats.coalescer.shed})`);
    assert.ok(server.stats.coalescer.withdrawn > 0, 'queued requests left the queue when their time ran out');
    // Timed from the moment each connection opened (client and server share this process's event loop).
    const answeredEarly = unavailable.filter((r) => r.sinceConnectMs < 2_000).length;
    assert.ok(answeredEarly >= 1_000, `shed requests are answered without waiting for the 2 s publish timeout (${answeredEarly})`);
    assert.ok(Math.max(...replies.map((r) => r.ms)) < 10_000, 'every request answered within its bound');
    // After the thaw: publishing works again, and no request answered 503 was published.
    let status = 0;
    for (let i = 0; i < 40 && status !== 204; i += 1) {
      status = (await request(`${server.url}/count/${counter}`, 'POST')).status;
      if (status !== 204) await sleep(250);
    }
    assert.equal(status, 204, 'publishing resumes after the thaw');
    await sleep(500); // statements buffered in the frozen server have run by now
    const published = new Set(
      (await db.query<{ id: string }[]>("SELECT JSON_UNQUOTE(JSON_EXTRACT(`metadata`, '$.request_id')) AS id FROM `watermill_frozen`")).map((r) => r.id),
    );
    const lying = unavailable.filter((r) => published.has(r.id));
    assert.deepEqual(lying.map((r) => r.id), [], 'a 503 means not published');
  });

  test('a statement the database refuses answers 503 not-published (it cannot commit later), with and without dedup', async () => {
    for (const dedup of [false, true]) {
      const topic = dedup ? 'refused_d' : 'refused';
      const server = await serve({ topic, dedup });
      await db.query(`DROP TABLE \`watermill_${topic}\``);
      const reply = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `${topic}-1` });
      assert.equal(reply.status, 503, `dedup ${dedup}`);
      assert.equal(json(reply).outcome, 'not-published');
      assert.equal(reply.headers['retry-after'], '1');
      assert.match(String(json(reply).error), /ER_NO_SUCH_TABLE/);
      await ensureSchema(db, { topic, topicSchema: 'offset', dedup });
      const again = await request(`${server.url}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `${topic}-1` });
      assert.equal(again.status, 204, 'with dedup, the refused attempt left no claim behind');
      assert.equal(again.headers['x-publish-duplicate'], undefined);
    }
  });

  test('eob server exits 0 on SIGTERM after answering the requests in hand', async () => {
    await ensureSchema(db, { topic: 'sigterm', topicSchema: 'offset', dedup: false });
    const port = await findFreePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'server', '--mysql-url', database.url, '--port', String(port), '--topic', 'sigterm', '--coalesce-linger-ms', '200'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stdout = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += String(d);
          if (stdout.includes('server listening')) resolve();
        });
        child.on('exit', () => reject(new Error('server exited before listening')));
      });
      assert.match(stdout, /^server listening on http:\/\/127\.0\.0\.1:\d+ \{.*"coalesceLingerMs":200.*\}$/m, 'one start line with the resolved options');
      // Both wait in the 200 ms linger when SIGTERM arrives; both must still be answered after their commit.
      const pending = [0, 1].map((i) => request(`http://127.0.0.1:${port}/count/${randomUUID()}`, 'POST', { 'X-Request-Id': `sigterm-${i}` }));
      await sleep(50);
      child.kill('SIGTERM');
      const replies = await Promise.all(pending);
      assert.deepEqual(replies.map((r) => r.status), [204, 204]);
      assert.equal(await exited, 0);
      assert.equal(await messagesWithRequestId(db, 'sigterm', 'sigterm-0'), 1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('database killed: POST, GET and /healthz answer 503 with a JSON error, never 2xx; back to 204 after restart', async () => {
    const server = await serve({ topic: 'outage', publishTimeoutMs: 3_000, connectTimeoutMs: 1_000 });
    const counter = randomUUID();
    assert.equal((await request(`${server.url}/count/${counter}`, 'POST')).status, 204);
    await database.kill('SIGKILL');
    try {
      const during = await Promise.all(Array.from({ length: 20 }, () => request(`${server.url}/count/${counter}`, 'POST')));
      for (const r of during) {
        // Refused connections: nothing sent (503); a pooled connection that died under its INSERT: unknown (504).
        assert.ok(r.status === 503 || r.status === 504, `status ${r.status}`);
        assert.equal(json(r).outcome, r.status === 503 ? 'not-published' : 'unknown');
        if (r.status === 503) assert.equal(r.headers['retry-after'], '1');
        assert.equal(typeof json(r).error, 'string');
      }
      const read = await request(`${server.url}/count/${counter}`, 'GET');
      assert.equal(read.status, 503);
      const health = await request(`${server.url}/healthz`, 'GET');
      assert.equal(health.status, 503);
      assert.equal(json(health).status, 'unavailable');
    } finally {
      await database.start();
    }
    let status = 0;
    for (let i = 0; i < 50 && status !== 204; i += 1) {
      status = (await request(`${server.url}/count/${counter}`, 'POST')).status;
      if (status !== 204) await sleep(200);
    }
    assert.equal(status, 204, 'publishing works again after the database restarted');
    assert.equal((await request(`${server.url}/healthz`, 'GET')).status, 200);
  });
});

describe('eob server start-up errors', () => {
  function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'server', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
  }

  test('an unreachable database names the URL and what to do', async () => {
    const port = await findFreePort();
    const url = `mysql://root@127.0.0.1:${port}/eob`;
    const { code, stderr } = await runCli(['--mysql-url', url, '--port', '0', '--start-timeout-ms', '500']);
    assert.notEqual(code, 0);
    assert.match(stderr, new RegExp(`cannot reach the database at ${url.replace(/[.]/g, '\\.')}: ECONNREFUSED`));
    assert.match(stderr, /still failing after 500 ms/);
    assert.match(stderr, /eob db start/);
  });

  test('a port in use says so and how to pick another', async () => {
    const database = await startPrivateDatabase();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const { code, stderr } = await runCli(['--mysql-url', database.url, '--port', String(port)]);
      assert.notEqual(code, 0);
      assert.match(stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*--port`));
    } finally {
      blocker.close();
      await database.remove();
    }
  });

  test('bad options name the field', () => {
    const base: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, databaseUrl: 'mysql://root@127.0.0.1/eob' };
    assert.throws(() => validateServerOptions({ ...base, coalesceMaxBatch: 0 }), /server: coalesceMaxBatch must be a whole number from 1/);
    assert.throws(() => validateServerOptions({ ...base, topic: 'a-b' }), /server: topic must be/);
    assert.throws(() => validateServerOptions({ ...base, port: 70_000 }), /server: port/);
  });
});
