// What a failed start-up step is called (no database): only connection failures are "unreachable"; races
// between processes setting up the same objects are retried; everything else is refused at once, its message
// naming the statement and its SQLSTATE. The errors are shaped as node-postgres and mysql2 raise them (the
// integration tests in startupRace.test.ts meet the real ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyError } from '../src/system/db/mariadb/errors.ts';
import { failedStatement, startupFailureKind, startupFailureMessage } from '../src/system/db/startupFailure.ts';

function pgError(code: string, message: string, more: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { severity: 'ERROR', code, ...more });
}

function mysqlError(code: string, errno: number, sqlState: string, message: string, fatal = false): Error {
  return Object.assign(new Error(message), { code, errno, sqlState, fatal });
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

test('PostgreSQL: a duplicate catalog row, a duplicate object, a deadlock are races; a duplicate user row and a missing privilege are not', () => {
  const cases: [Error, string][] = [
    [pgError('23505', 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"', { constraint: 'pg_type_typname_nsp_index' }), 'race'],
    [pgError('23505', 'duplicate key value violates unique constraint "pg_database_datname_index"', { constraint: 'pg_database_datname_index' }), 'race'],
    [pgError('42P07', 'relation "watermill_t" already exists'), 'race'],
    [pgError('42P04', 'database "eob" already exists'), 'race'],
    [pgError('40P01', 'deadlock detected'), 'race'],
    [pgError('23505', 'duplicate key value violates unique constraint "counter_pkey"', { constraint: 'counter_pkey' }), 'refused'],
    [pgError('42501', 'permission denied for schema public'), 'refused'],
    [pgError('28P01', 'password authentication failed for user "eob"'), 'refused'],
    [pgError('57P03', 'the database system is starting up'), 'unreachable'],
    [pgError('08006', 'connection failure'), 'unreachable'],
    [socketError('ECONNREFUSED'), 'unreachable'],
    [new Error('Connection terminated unexpectedly'), 'unreachable'],
  ];
  for (const [error, kind] of cases) assert.equal(startupFailureKind('postgres', error), kind, error.message);
});

test('MariaDB: a refused login is refused, though mysql2 marks it fatal like a lost connection (the consume loops\' class)', () => {
  const login = mysqlError('ER_ACCESS_DENIED_ERROR', 1045, '28000', "Access denied for user 'eob'@'localhost' (using password: YES)", true);
  assert.equal(classifyError(login), 'connection', 'the control: the retry classes call it a lost connection');
  assert.equal(startupFailureKind('mariadb', login), 'refused');
  assert.equal(startupFailureKind('mariadb', mysqlError('ER_LOCK_DEADLOCK', 1213, '40001', 'Deadlock found when trying to get lock')), 'race');
  assert.equal(startupFailureKind('mariadb', mysqlError('ER_TABLE_EXISTS_ERROR', 1050, '42S01', "Table 'watermill_t' already exists")), 'race');
  assert.equal(startupFailureKind('mariadb', mysqlError('ER_TABLEACCESS_DENIED_ERROR', 1142, '42000', 'CREATE command denied')), 'refused');
  assert.equal(startupFailureKind('mariadb', socketError('ECONNREFUSED')), 'unreachable');
  const joining = mysqlError('ER_UNKNOWN_COM_ERROR', 1047, '08S01', 'WSREP has not yet prepared node for application use');
  assert.equal(startupFailureKind('mariadb', joining), 'unreachable', 'a Galera node still joining is waited for');
  assert.match(
    startupFailureMessage({ engine: 'mariadb', url: 'mysql://eob@127.0.0.1:3306/eob', kind: 'unreachable', error: joining, sent: undefined, gaveUpAfterMs: 500 }),
    /^the database at mysql:\/\/eob@127\.0\.0\.1:3306\/eob is not ready: SQLSTATE 08S01 \(ER_UNKNOWN_COM_ERROR 1047\): WSREP has not yet prepared node for application use \(still failing after 500 ms: /,
  );
  assert.equal(startupFailureKind('mariadb', new Error('topic must be 1-48 letters, digits or _ (got "a-b")')), 'refused');
});

test('the statement named is the one inside a DO block when PostgreSQL reports it, cut to its head', () => {
  const sent = 'DO $eob$ BEGIN\nPERFORM pg_advisory_xact_lock(1, 2);\nCREATE TABLE IF NOT EXISTS "t" (\n  "id" INT\n);\nEND $eob$';
  const running = pgError('23505', 'duplicate key', { where: 'SQL statement "CREATE INDEX IF NOT EXISTS "t_i" ON "t" ("id")"\nPL/pgSQL function inline_code_block line 4 at SQL statement' });
  assert.equal(failedStatement(running, sent), 'CREATE INDEX IF NOT EXISTS "t_i" ON "t"');
  const analysed = pgError('42501', 'permission denied for schema public', { internalQuery: 'CREATE TABLE IF NOT EXISTS "t" (\n  "id" INT\n)', where: 'PL/pgSQL function inline_code_block line 3 at SQL statement' });
  assert.equal(failedStatement(analysed, sent), 'CREATE TABLE IF NOT EXISTS "t"');
  assert.equal(failedStatement(pgError('42501', 'denied'), 'INSERT INTO "watermill_offsets_t" ("consumer_group") VALUES ($1)'), 'INSERT INTO "watermill_offsets_t"');
  assert.equal(failedStatement(pgError('28P01', 'denied'), undefined), undefined);
  assert.equal(failedStatement(new Error('x'), `SELECT ${'a, '.repeat(100)}b`)?.length, 123);
});

test('messages: "cannot reach" for a connection failure only; a refused statement is named with its SQLSTATE and the hint fits', () => {
  const url = 'postgres://eob:secret@127.0.0.1:5432/eob';
  const base = { engine: 'postgres' as const, url, sent: 'CREATE TABLE IF NOT EXISTS "counter" ("id" INT)', gaveUpAfterMs: undefined };
  const syntax = pgError('42601', 'syntax error at or near "TABLEE"');
  assert.equal(
    startupFailureMessage({ ...base, kind: 'refused', error: syntax }),
    'SQL error at start-up on the database at postgres://eob:***@127.0.0.1:5432/eob: `CREATE TABLE IF NOT EXISTS "counter"` failed with SQLSTATE 42601: syntax error at or near "TABLEE"',
  );
  const unreachable = startupFailureMessage({ ...base, kind: 'unreachable', error: socketError('ECONNREFUSED'), gaveUpAfterMs: 500 });
  assert.match(unreachable, /^cannot reach the database at postgres:\/\/eob:\*\*\*@127\.0\.0\.1:5432\/eob: ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:1 \(still failing after 500 ms: is the server running\?/);
  const mariadb = startupFailureMessage({
    engine: 'mariadb',
    url: 'mysql://eob:secret@127.0.0.1:3306/eob',
    kind: 'refused',
    error: mysqlError('ER_ACCESS_DENIED_ERROR', 1045, '28000', "Access denied for user 'eob'@'localhost' (using password: YES)", true),
    sent: undefined,
    gaveUpAfterMs: undefined,
  });
  assert.equal(
    mariadb,
    "SQL error at start-up on the database at mysql://eob:***@127.0.0.1:3306/eob: connecting failed with SQLSTATE 28000 (ER_ACCESS_DENIED_ERROR 1045): Access denied for user 'eob'@'localhost' (using password: YES); check the user, password and privileges in the URL",
  );
  assert.equal(
    startupFailureMessage({ ...base, kind: 'refused', error: new Error('topic must be 1-48 letters, digits or _ (got "a-b")'), sent: undefined }),
    'cannot set up the database at postgres://eob:***@127.0.0.1:5432/eob: topic must be 1-48 letters, digits or _ (got "a-b")',
  );
});
