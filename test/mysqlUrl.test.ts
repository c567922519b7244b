// MYSQL_URL parsing and redaction with the URLs people really paste: empty user, unencoded @ : / in the
// password, percent-encoding, no password, IPv6, a socket query; and URLs inside log lines and results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatMysqlUrl,
  parseMysqlUrl,
} from '../src/system/db/mariadb/mysqlUrl.ts';
import { redactDatabaseUrl, redactDatabaseUrlsDeep, redactDatabaseUrlsIn } from '../src/system/db/urlRedaction.ts';

const cases: { url: string; redacted: string; secret?: string }[] = [
  { url: 'mysql://root:s3cret@127.0.0.1:3307/eob', redacted: 'mysql://root:***@127.0.0.1:3307/eob', secret: 's3cret' },
  { url: 'mysql://:s3cret@127.0.0.1:3307/eob', redacted: 'mysql://:***@127.0.0.1:3307/eob', secret: 's3cret' },
  { url: 'mysql://root:p@ss@127.0.0.1:3307/eob', redacted: 'mysql://root:***@127.0.0.1:3307/eob', secret: 'p@ss' },
  { url: 'mysql://root:a:b:c@db.example:3306/eob', redacted: 'mysql://root:***@db.example:3306/eob', secret: 'a:b:c' },
  { url: 'mysql://root:p%40ss%3Aw0rd@127.0.0.1/eob', redacted: 'mysql://root:***@127.0.0.1/eob', secret: 'p%40ss' },
  { url: 'mysql://us%3Aer:pw1234@127.0.0.1/eob', redacted: 'mysql://us%3Aer:***@127.0.0.1/eob', secret: 'pw1234' },
  { url: 'mysql://root:pa/ss@word@127.0.0.1/eob', redacted: 'mysql://root:***@127.0.0.1/eob', secret: 'pa/ss' },
  { url: 'mysql://root:pa?ss#x@127.0.0.1/eob', redacted: 'mysql://root:***@127.0.0.1/eob', secret: 'pa?ss' },
  { url: 'MARIADB://root:Secret9@[::1]:3307/eob', redacted: 'MARIADB://root:***@[::1]:3307/eob', secret: 'Secret9' },
  { url: 'mysql://root:@127.0.0.1:3307/eob', redacted: 'mysql://root:***@127.0.0.1:3307/eob' },
  { url: 'mysql://root@127.0.0.1:3307/eob', redacted: 'mysql://root@127.0.0.1:3307/eob' },
  { url: 'mysql://127.0.0.1:3307/eob', redacted: 'mysql://127.0.0.1:3307/eob' },
  { url: 'mysql://root:pw9876@localhost/eob?socket=/run/mysqld/mysqld.sock', redacted: 'mysql://root:***@localhost/eob?socket=/run/mysqld/mysqld.sock', secret: 'pw9876' },
  { url: 'not a url', redacted: 'not a url' },
];

test('redactDatabaseUrl hides the password of every URL shape and leaves password-less URLs alone', () => {
  for (const c of cases) {
    const shown = redactDatabaseUrl(c.url);
    assert.equal(shown, c.redacted, c.url);
    if (c.secret !== undefined) assert.ok(!shown.includes(c.secret), `${c.url} -> ${shown}`);
  }
});

test('redactDatabaseUrlsIn finds URLs inside log lines and error messages', () => {
  const line = 'cannot reach mysql://:p@ss@127.0.0.1:1/eob (ECONNREFUSED); also tried mysql://root@127.0.0.1:2/eob';
  assert.equal(redactDatabaseUrlsIn(line), 'cannot reach mysql://:***@127.0.0.1:1/eob (ECONNREFUSED); also tried mysql://root@127.0.0.1:2/eob');
  assert.equal(redactDatabaseUrlsIn('no url here'), 'no url here');
});

test('redactDatabaseUrlsDeep redacts every string of an options object and keeps the rest', () => {
  const options = {
    system: { databaseUrl: 'mysql://root:hunter2@127.0.0.1:3307/eob', quietChildren: true },
    urls: ['mysql://u:p@ss@h/db', 'http://127.0.0.1:8080'],
    n: 3,
    none: null,
    missing: undefined,
  };
  const shown = redactDatabaseUrlsDeep(options);
  const text = JSON.stringify(shown);
  assert.ok(!text.includes('hunter2') && !text.includes('p@ss'), text);
  assert.deepEqual(shown, {
    system: { databaseUrl: 'mysql://root:***@127.0.0.1:3307/eob', quietChildren: true },
    urls: ['mysql://u:***@h/db', 'http://127.0.0.1:8080'],
    n: 3,
    none: null,
    missing: undefined,
  });
  assert.equal(options.system.databaseUrl, 'mysql://root:hunter2@127.0.0.1:3307/eob', 'the original is not changed');
});

test('parseMysqlUrl decodes percent-encoded credentials and its errors never show the password', () => {
  assert.deepEqual(parseMysqlUrl('mysql://:p%40ss%3Aw@127.0.0.1:3307/eob'), {
    host: '127.0.0.1', port: 3307, user: 'root', password: 'p@ss:w', database: 'eob',
  });
  assert.equal(parseMysqlUrl('mysql://root:p@ss@127.0.0.1/eob').password, 'p@ss');
  assert.throws(() => parseMysqlUrl('mysql://root:pa/ss@127.0.0.1/eob'), (e: Error) => !e.message.includes('pa/ss') && /percent-encode/.test(e.message));
  assert.throws(() => parseMysqlUrl('mysql://root:topsecret@127.0.0.1/bad-name'), (e: Error) => !e.message.includes('topsecret') && /database/.test(e.message));
});

test('formatMysqlUrl round-trips through parseMysqlUrl whatever the password holds', () => {
  for (const password of ['', 'plain', 'p@ss:w/o?r#d%', 'ünïcode']) {
    const url = formatMysqlUrl({ user: 'root', password, host: '127.0.0.1', port: 3307, database: 'eob' });
    const parsed = parseMysqlUrl(url);
    assert.equal(parsed.password, password, url);
    assert.equal(parsed.user, 'root');
    if (password !== '') assert.ok(!redactDatabaseUrl(url).includes(encodeURIComponent(password)), url);
  }
});
