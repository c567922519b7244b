// One URL for either engine: the scheme picks the engine, a bad scheme is an error that names the ones that
// work, a URL parsed once carries its engine, connection and redacted form down (and is not parsed again), and a
// postgres:// URL's password is hidden by the same redaction as a mysql:// one. No database needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDatabaseUrl, databaseUrlOf, engineNameOfUrl, parseDatabaseUrl, redactDatabaseUrl, redactDatabaseUrlsIn } from '../src/system/db/databaseUrl.ts';
import { validateWorkerOptions, DEFAULT_WORKER_OPTIONS } from '../src/system/worker.ts';

test('the scheme picks the engine', () => {
  assert.equal(engineNameOfUrl('mysql://root@127.0.0.1:3306/eob'), 'mariadb');
  assert.equal(engineNameOfUrl('mariadb://root@127.0.0.1:3306/eob'), 'mariadb');
  assert.equal(engineNameOfUrl('postgres://postgres:pw@127.0.0.1:5433/eob'), 'postgres');
  assert.equal(engineNameOfUrl('PostgreSQL://postgres:pw@127.0.0.1:5433/eob'), 'postgres');
});

test('a bad scheme, or none, is an error naming the schemes that work, never the password', () => {
  assert.throws(() => engineNameOfUrl('redis://u:s3cret@127.0.0.1/0'), (e: Error) => /mysql:\/\/.*postgres:\/\//.test(e.message) && /"redis:\/\/"/.test(e.message) && !e.message.includes('s3cret'));
  assert.throws(() => engineNameOfUrl('u:s3cret@127.0.0.1/eob'), (e: Error) => /no scheme/.test(e.message) && !e.message.includes('s3cret'));
  assert.throws(() => checkDatabaseUrl('postgres://u:s3cret@127.0.0.1:5433/'), (e: Error) => /name a database/.test(e.message) && !e.message.includes('s3cret'));
});

test('postgres:// passwords are redacted like mysql:// ones, in a URL and inside text', () => {
  assert.equal(redactDatabaseUrl('postgres://postgres:s3cret@127.0.0.1:5433/eob'), 'postgres://postgres:***@127.0.0.1:5433/eob');
  assert.equal(redactDatabaseUrl('postgresql://u:p%40ss@host/db'), 'postgresql://u:***@host/db');
  const line = 'worker started {"databaseUrl":"postgres://postgres:s3cret@127.0.0.1:5433/eob"} and mysql://root:other@h/db';
  const shown = redactDatabaseUrlsIn(line);
  assert.ok(!shown.includes('s3cret') && !shown.includes('other'), shown);
});

test('a URL parsed once carries its engine, what the driver connects with and the form to show', () => {
  const mysql = parseDatabaseUrl('mysql://root:s3cret@127.0.0.1:3307/eob');
  assert.deepEqual(mysql, {
    engine: 'mariadb',
    url: 'mysql://root:s3cret@127.0.0.1:3307/eob',
    redacted: 'mysql://root:***@127.0.0.1:3307/eob',
    connection: { host: '127.0.0.1', port: 3307, user: 'root', password: 's3cret', database: 'eob' },
  });
  const pg = parseDatabaseUrl('postgres://postgres:s3cret@127.0.0.1:5433/eob');
  assert.deepEqual(pg, { engine: 'postgres', url: 'postgres://postgres:s3cret@127.0.0.1:5433/eob', redacted: 'postgres://postgres:***@127.0.0.1:5433/eob', connection: { database: 'eob' } });
  assert.throws(() => parseDatabaseUrl('mysql://root:s3cret@127.0.0.1/bad-name'), (e: Error) => /database/.test(e.message) && !e.message.includes('s3cret'));
});

test('a parsed URL handed down is the same value, not parsed again; a string is parsed where it enters', () => {
  const parsed = parseDatabaseUrl('postgres://postgres:pw@127.0.0.1:5433/eob');
  assert.equal(databaseUrlOf(parsed), parsed);
  assert.equal(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: parsed }).databaseUrl, parsed);
  assert.deepEqual(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: parsed.url }).databaseUrl, parsed);
});
