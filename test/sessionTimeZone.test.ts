// TIMESTAMPs on a MariaDB server whose own time zone is not UTC: a message's created_at must come back as the
// instant it holds, and a Date written (the poison table's copy of created_at) must come back unchanged. The
// driver reads TIMESTAMP text as UTC, so the pools' sessions must run in UTC too; in the server's SYSTEM zone,
// +09:00 here, created_at came back nine hours ahead.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPrivateDatabase, type ManagedDatabase } from './support/privateDatabase.ts';
import { createPool, executorOf } from '../src/system/db/mariadb/pool.ts';
import { createMessagesTable, insertMessages, selectAllMessages } from '../src/system/sql/mariadb/messagesTable.ts';

describe('a MariaDB server at +09:00', () => {
  let database: ManagedDatabase;
  before(async () => {
    database = await startPrivateDatabase({ serverArgs: ['--default-time-zone=+09:00'] });
  });
  after(() => database.remove());

  test("created_at comes back as the instant of the insert, and a bound Date round-trips", async () => {
    const pool = createPool({ url: database.url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'test' });
    try {
      const db = executorOf(pool);
      const [zone] = await db.query<{ zone: string }[]>('SELECT @@GLOBAL.time_zone AS zone');
      assert.equal(zone?.zone, '+09:00', 'the server itself runs at +09:00');
      await createMessagesTable(db, 'tz');
      const before = Date.now();
      await insertMessages(db, 'tz', [{ uuid: 'tz-1', payload: {}, metadata: {} }]);
      const after = Date.now();
      const [message] = await selectAllMessages(db, 'tz');
      const at = message?.createdAt.getTime() ?? NaN;
      // The server's clock is this machine's; a millisecond of slack for TIMESTAMP(6) against Date's rounding.
      assert.ok(at >= before - 1 && at <= after + 1, `created_at ${message?.createdAt.toISOString()} between ${new Date(before).toISOString()} and ${new Date(after).toISOString()}`);
      const written = new Date(Date.UTC(2026, 10, 27, 23, 59, 58, 123));
      await db.query('CREATE TABLE `ts` (`t` TIMESTAMP(6) NULL)');
      await db.query('INSERT INTO `ts` VALUES (?)', [written]);
      const [row] = await db.query<{ t: Date; epoch: string }[]>('SELECT `t`, UNIX_TIMESTAMP(`t`) AS epoch FROM `ts`');
      assert.equal(row?.t.toISOString(), written.toISOString());
      assert.equal(Number(row?.epoch), written.getTime() / 1000, 'the instant stored is the one written');
    } finally {
      await pool.end();
    }
  });
});
