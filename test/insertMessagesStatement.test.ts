// The publishers' multi-row INSERT travels as a prepared statement: every string must come back from the
// database exactly as it was published, whatever it holds (quotes, backslashes, placeholders' `?`, control
// characters, non-ASCII) and whatever the session's sql_mode, and a connection must not hoard prepared
// statements (one per batch size) beyond its bound.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { testPool } from './support/contractTargets.ts';
import { executorOf, MAX_PREPARED_STATEMENTS_PER_CONNECTION } from '../src/system/db/mariadb/pool.ts';
import type { OutgoingMessage, SqlExecutor } from '../src/system/pubsub/types.ts';
import { createMessagesTable, insertMessages, insertMessagesStatement, selectAllMessages, writeMessages } from '../src/system/sql/mariadb/messagesTable.ts';
import { messagesTable } from '../src/system/sql/mariadb/identifiers.ts';
import { incrementMessage } from '../src/system/counterPublish.ts';

const TRICKY = ["it's", 'back\\slash', 'a ? b ?? c', '"quoted"', "'; DROP TABLE x; --", 'line\nbreak\ttab\r\u0000nul\u001a', 'é ü 漢字 😀', '\\', "'", ''];

function messages(): OutgoingMessage[] {
  return [
    ...TRICKY.map((text, i) => ({
      uuid: i % 2 === 0 ? randomUUID() : `id-${text}`.slice(0, 36),
      payload: { counter_uuid: randomUUID(), note: text },
      metadata: { request_id: text },
    })),
    // The server's own messages carry their JSON prebuilt (messageJson.ts): written as they are, not serialized.
    ...TRICKY.map((text) => incrementMessage({ counterUuid: randomUUID(), requestId: text }, false)),
  ];
}

const asSent = (ms: readonly OutgoingMessage[]) => ms.map(({ uuid, payload, metadata }) => ({ uuid, payload, metadata }));

async function globalStatus(run: SqlExecutor, name: string): Promise<number> {
  const rows = await run.query<{ Value: string }[]>('SHOW GLOBAL STATUS LIKE ?', [name]);
  return Number(rows[0]?.Value);
}

describe('insertMessagesStatement', () => {
  test('one placeholder per value, the values in column order, the JSON as JSON.stringify makes it', () => {
    const m: OutgoingMessage = { uuid: '123e4567-e89b-42d3-a456-426614174000', payload: { counter_uuid: 'c' }, metadata: { request_id: 'r' } };
    const { sql, values } = insertMessagesStatement('`t`', [m, m]);
    assert.equal(sql, 'INSERT INTO `t` (`uuid`, `payload`, `metadata`) VALUES (?, ?, ?), (?, ?, ?)');
    assert.deepEqual(values, [m.uuid, '{"counter_uuid":"c"}', '{"request_id":"r"}', m.uuid, '{"counter_uuid":"c"}', '{"request_id":"r"}']);
  });

  const db = usePrivateDatabase();
  for (const sqlMode of ['', 'NO_BACKSLASH_ESCAPES']) {
    test(`every string comes back as published (sql_mode '${sqlMode}')`, async () => {
      const pool = testPool(db().url, 1, false);
      try {
        const conn = await pool.getConnection();
        try {
          const run = executorOf(conn);
          await run.query(`SET SESSION sql_mode = '${sqlMode}'`);
          const topic = `lit_${randomUUID().slice(0, 8)}`;
          await createMessagesTable(run, topic);
          const sent = messages();
          const prepares = await globalStatus(run, 'Com_stmt_prepare');
          // Bound values are not read as SQL text, so NO_BACKSLASH_ESCAPES cannot change them: every message
          // goes, backslashes and quotes included (written into the text, those came back altered there).
          await insertMessages(run, topic, sent);
          assert.ok((await globalStatus(run, 'Com_stmt_prepare')) > prepares, 'the INSERT was not sent as a prepared statement');
          const back = await selectAllMessages(run, topic);
          assert.deepEqual(asSent(back), asSent(sent));
        } finally {
          conn.release();
        }
      } finally {
        await pool.end();
      }
    });
  }

  test('an executor without prepared statements gets the same rows through query()', async () => {
    const pool = testPool(db().url, 1, false);
    try {
      const plain: SqlExecutor = { query: (sql, values) => executorOf(pool).query(sql, values) };
      const topic = `plain_${randomUUID().slice(0, 8)}`;
      await createMessagesTable(plain, topic);
      const sent = messages();
      await writeMessages(plain, insertMessagesStatement(messagesTable(topic), sent));
      assert.deepEqual(asSent(await selectAllMessages(plain, topic)), asSent(sent));
    } finally {
      await pool.end();
    }
  });

  test(`a connection keeps at most ${MAX_PREPARED_STATEMENTS_PER_CONNECTION} prepared INSERTs, whatever the batch sizes`, async () => {
    const pool = testPool(db().url, 1, false);
    try {
      const run = executorOf(pool);
      const topic = `sizes_${randomUUID().slice(0, 8)}`;
      await createMessagesTable(run, topic);
      const sizes = MAX_PREPARED_STATEMENTS_PER_CONNECTION + 40;
      for (let n = 1; n <= sizes; n += 1) {
        await insertMessages(run, topic, Array.from({ length: n }, () => incrementMessage({ counterUuid: randomUUID(), requestId: randomUUID() }, false)));
      }
      const held = await globalStatus(run, 'Prepared_stmt_count');
      assert.ok(held > 0 && held <= MAX_PREPARED_STATEMENTS_PER_CONNECTION, `prepared statements held: ${held}`);
      const [{ n }] = await run.query<[{ n: number }]>(`SELECT COUNT(*) AS n FROM ${messagesTable(topic)}`);
      assert.equal(n, (sizes * (sizes + 1)) / 2);
    } finally {
      await pool.end();
    }
  });
});
