// The pools' query formatting: a query with no values goes out as written (mysql2 would otherwise scan the whole
// text for placeholders, a cost on every multi-row INSERT), and a query with values comes out exactly as
// mysql2's own formatting makes it, for every kind of value the project binds. Then the same through a pool
// against a private MariaDB: what was bound comes back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { createPool, executorOf, formatQuery } from '../src/system/db/mariadb/pool.ts';
import { usePrivateDatabase } from './support/privateDatabase.ts';

const mysql2Format = mysql.format as unknown as (sql: string, values: unknown, stringifyObjects: boolean, timezone: string) => string;

describe('formatQuery', () => {
  test('no values (undefined, null or []): the text as written, placeholders and all', () => {
    const sql = "INSERT INTO `t` VALUES ('a ? b ?? c', '?')";
    assert.equal(formatQuery(sql, undefined, 'Z'), sql);
    assert.equal(formatQuery(sql, null, 'Z'), sql);
    assert.equal(formatQuery(sql, [], 'Z'), sql);
  });

  test('with values: what mysql2 itself makes, for strings, numbers, bigints, null, dates, buffers, arrays and identifiers', () => {
    const cases: [string, unknown[]][] = [
      ['SELECT ?, ?, ?, ?', ["it's", 'back\\slash', 42, 2n ** 60n]],
      ['SELECT ? AS n, ?? AS i FROM ?? WHERE x IN (?)', [null, 'col`umn', 'db.table', ['a', 'b', 3]]],
      ['SELECT ?, ?', [new Date(Date.UTC(2026, 10, 27, 21, 0, 0, 123)), Buffer.from([0, 255, 39])]],
      ["SELECT '?' AS quoted, ? AS bound", ['x']],
    ];
    for (const [sql, values] of cases) assert.equal(formatQuery(sql, values, 'Z'), mysql2Format(sql, values, false, 'Z'), sql);
  });
});

describe('formatQuery through a pool', () => {
  const db = usePrivateDatabase();
  test('bound values come back as they were, a placeholder-looking text with no values is left alone', async () => {
    const pool = createPool({ url: db().url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'test' });
    try {
      const run = executorOf(pool);
      const [bound] = await run.query<{ s: string; n: number; d: string }[]>('SELECT ? AS s, ? AS n, ? AS d', ["it's ? a\\b", 7, new Date(Date.UTC(2026, 0, 2, 3, 4, 5))]);
      assert.deepEqual(bound, { s: "it's ? a\\b", n: 7, d: '2026-01-02 03:04:05.000' });
      const [plain] = await run.query<{ q: string }[]>("SELECT 'a ? b ?? c' AS q");
      assert.deepEqual(plain, { q: 'a ? b ?? c' });
    } finally {
      await pool.end();
    }
  });
});
