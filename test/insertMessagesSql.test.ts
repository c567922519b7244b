// The multi-row INSERT writes its values into the statement text (no placeholders): every string must come back
// from the database exactly as it was published, whatever it holds (quotes, backslashes, placeholders' `?`,
// control characters, non-ASCII), under both backslash rules of the server's sql_mode.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { testPool } from './support/contractTargets.ts';
import { executorOf } from '../src/system/db/pool.ts';
import type { OutgoingMessage } from '../src/system/pubsub/types.ts';
import { createMessagesTable, insertMessagesSql, selectAllMessages } from '../src/system/sql/mariadb/messagesTable.ts';
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

describe('insertMessagesSql', () => {
  test('values are in the text, no placeholders, and a plain value is quoted as it is', () => {
    const m: OutgoingMessage = { uuid: '123e4567-e89b-42d3-a456-426614174000', payload: { counter_uuid: 'c' }, metadata: { request_id: 'r' } };
    const { sql, values } = insertMessagesSql('`t`', [m, m]);
    assert.deepEqual(values, []);
    assert.equal(sql, "INSERT INTO `t` (`uuid`, `payload`, `metadata`) VALUES ('123e4567-e89b-42d3-a456-426614174000', '{\"counter_uuid\":\"c\"}', '{\"request_id\":\"r\"}'), ('123e4567-e89b-42d3-a456-426614174000', '{\"counter_uuid\":\"c\"}', '{\"request_id\":\"r\"}')");
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
          // A value with a quote or a backslash is escaped by the driver, which assumes backslash escapes: under
          // NO_BACKSLASH_ESCAPES the driver cannot be used for those, so only the plain ones are sent there.
          const plain = sent.filter((m) => !/['\\]/.test(JSON.stringify(m)));
          const batch = sqlMode === '' ? sent : plain;
          await run.query(insertMessagesSql(messagesTable(topic), batch).sql);
          const back = await selectAllMessages(run, topic);
          assert.deepEqual(back.map((m) => ({ uuid: m.uuid, payload: m.payload, metadata: m.metadata })), batch.map(({ uuid, payload, metadata }) => ({ uuid, payload, metadata })));
        } finally {
          conn.release();
        }
      } finally {
        await pool.end();
      }
    });
  }
});
