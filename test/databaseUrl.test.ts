// One URL for either engine: the scheme picks the engine, a bad scheme is an error that names the ones that
// work, and a postgres:// URL's password is hidden by the same redaction as a mysql:// one. No database needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDatabaseUrl, engineNameOfUrl, redactDatabaseUrl, redactDatabaseUrlsIn } from '../src/system/db/databaseUrl.ts';

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
