// The chaos load's raw SQL publishers: how an INSERT's fate maps to a history outcome, and, on a private
// database, that their attempts land in the history in the shape the checker reads, so a lost or foreign raw
// message is caught exactly like an HTTP one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifySqlAttempt, rawRequestId, runRawPublishLoad, validateRawPublishLoadOptions, DEFAULT_RAW_PUBLISH_LOAD_OPTIONS } from '../src/scenarios/chaos/rawPublishLoad.ts';
import { check } from '../src/scenarios/chaos/checker.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import { takeSnapshot } from '../src/bench/tableReads.ts';
import { createPool, executorOf } from '../src/system/db/mariadb/pool.ts';
import { createMessagesTable } from '../src/system/sql/mariadb/messagesTable.ts';
import { messagesTable } from '../src/system/sql/mariadb/identifiers.ts';
import { createOffsetsTable } from '../src/system/sql/mariadb/offsetsTable.ts';
import { createCounterTable } from '../src/system/sql/mariadb/counterTable.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { usePrivateDatabase } from './support/privateDatabase.ts';

const db = usePrivateDatabase();

const serverError = (errno: number, code: string, sqlState: string) => Object.assign(new Error(code), { errno, code, sqlState, fatal: false });

test('outcome mapping: committed is ok, a failed connect or a statement the server rolled back is fail, anything after sending is unknown', () => {
  assert.deepEqual(classifySqlAttempt('insert', undefined), { outcome: 'ok' });
  // Nothing was sent.
  assert.equal(classifySqlAttempt('connect', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })).outcome, 'fail');
  // The server answered for the statement: an autocommit INSERT that fails is rolled back whole.
  assert.equal(classifySqlAttempt('insert', serverError(1213, 'ER_LOCK_DEADLOCK', '40001')).outcome, 'fail');
  assert.equal(classifySqlAttempt('insert', serverError(1205, 'ER_LOCK_WAIT_TIMEOUT', 'HY000')).outcome, 'fail');
  assert.equal(classifySqlAttempt('insert', serverError(1146, 'ER_NO_SUCH_TABLE', '42S02')).outcome, 'fail');
  // May have come after the commit.
  const afterSend = [
    Object.assign(new Error('lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }),
    Object.assign(new Error('Query inactivity timeout'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT', fatal: true }),
    Object.assign(new Error('reset'), { code: 'ECONNRESET', errno: -104, fatal: true }),
    serverError(1317, 'ER_QUERY_INTERRUPTED', '70100'),
    serverError(1927, 'ER_CONNECTION_KILLED', '70100'),
    serverError(1053, 'ER_SERVER_SHUTDOWN', '08S01'),
  ];
  for (const e of afterSend) assert.equal(classifySqlAttempt('insert', e).outcome, 'unknown', e.message);
  // A held transaction: a failed START TRANSACTION sent no row; any error at COMMIT may have followed the commit.
  assert.equal(classifySqlAttempt('begin', Object.assign(new Error('lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true })).outcome, 'fail');
  assert.equal(classifySqlAttempt('commit', serverError(1213, 'ER_LOCK_DEADLOCK', '40001')).outcome, 'unknown');
  assert.equal(classifySqlAttempt('commit', undefined).outcome, 'ok');
  assert.equal(classifySqlAttempt('insert', afterSend[0]).error, 'PROTOCOL_CONNECTION_LOST');
});

test('raw publishers only talk to a database on this machine, and bad options name the field', () => {
  const base = { ...DEFAULT_RAW_PUBLISH_LOAD_OPTIONS, caseName: 'c', t0: 0 };
  assert.throws(() => validateRawPublishLoadOptions({ ...base, mysqlUrl: 'mysql://root@db.example.com:3306/eob' }), /on this machine/);
  assert.throws(() => validateRawPublishLoadOptions({ ...base, mysqlUrl: 'mysql://root@127.0.0.1:3306/eob', publishers: 0 }), /publishers must be/);
  assert.doesNotThrow(() => validateRawPublishLoadOptions({ ...base, mysqlUrl: 'mysql://root@[::1]:3306/eob' }));
});

test('a refused database: every raw attempt is recorded, and as fail', async () => {
  const port = await findFreePort();
  const r = await runRawPublishLoad({
    ...DEFAULT_RAW_PUBLISH_LOAD_OPTIONS,
    mysqlUrl: `mysql://root@127.0.0.1:${port}/eob`,
    caseName: 'refused',
    requests: 5,
    publishers: 2,
    t0: performance.now(),
  });
  assert.equal(r.attempts.length, 5);
  for (const a of r.attempts) {
    assert.equal(a.outcome, 'fail');
    assert.equal(a.error, 'ECONNREFUSED');
  }
});

test('on a private database: one history entry per INSERT, in the shape the checker reads, and a lost raw message is caught', { timeout: 120_000 }, async (t) => {
  const url = db().url;
  const pool = createPool({ url, connectionLimit: 2, connectTimeoutMs: 5_000 });
  t.after(() => pool.end());
  const admin = executorOf(pool);
  await createMessagesTable(admin, 'counter');
  await createOffsetsTable(admin, 'counter');
  await createCounterTable(admin);

  // Every 5th INSERT in a transaction held open 20 ms: committed all the same.
  const r = await runRawPublishLoad({ ...DEFAULT_RAW_PUBLISH_LOAD_OPTIONS, mysqlUrl: url, caseName: 'rawcase', requests: 40, publishers: 4, holdEvery: 5, holdMs: 20, t0: performance.now() });
  assert.equal(r.attempts.length, 40);
  const ids = new Set(r.attempts.map((a) => a.requestId));
  assert.equal(ids.size, 40, 'each INSERT has its own request id');
  assert.ok(ids.has(rawRequestId('rawcase', 0)) && ids.has(rawRequestId('rawcase', 39)));
  assert.equal(new Set(r.attempts.map((a) => a.counterUuid)).size, 40, 'each INSERT has its own counter');
  for (const a of r.attempts) {
    assert.equal(a.outcome, 'ok');
    assert.equal(a.via, 'sql');
    assert.equal(a.attempt, 1);
    assert.equal(a.phase, 'load');
    assert.ok(a.endMs >= a.startMs);
  }

  // No worker ran: everything is published and pending, nothing lost, nothing foreign.
  const before = check(r.attempts, await takeSnapshot(admin, mariadbEngine, { mode: 'offset', topic: 'counter', consumerGroup: 'counter' }));
  assert.equal(before.requests.ok, 40);
  assert.equal(before.messages.total, 40);
  assert.equal(before.lostRequests.length, 0);
  assert.equal(before.foreignMessages.length, 0);
  assert.equal(before.verdict, 'unknown', 'pending messages: not valid yet');

  // One committed raw INSERT disappears: the checker names it as lost at publish.
  const victim = rawRequestId('rawcase', 7);
  await admin.query(`DELETE FROM ${messagesTable('counter')} WHERE JSON_VALUE(metadata, '$.request_id') = ?`, [victim]);
  const after = check(r.attempts, await takeSnapshot(admin, mariadbEngine, { mode: 'offset', topic: 'counter', consumerGroup: 'counter' }));
  assert.equal(after.verdict, 'invalid');
  assert.deepEqual(after.lostRequests.map((l) => l.requestId), [victim]);
});

