// All SQL on `watermill_offsets_<topic>` on PostgreSQL: one row per consumer group, watermill-sql's PostgreSQL
// offsets schema. The acked position is a pair (last_processed_transaction_id, offset_acked), because the read
// walks the topic in (transaction_id, offset) order (see messages.ts for the visibility rule).
import type { SqlExecutor } from '../../types.ts';
import { pgOffsetsTable, type PgStatement } from './identifiers.ts';
import type { PgPosition } from './messagesTable.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

export async function createPgOffsetsTable(db: SqlExecutor, topic: string): Promise<void> {
  const table = pgOffsetsTable(topic);
  await createUnderSchemaLock(db, table, [
    `CREATE TABLE IF NOT EXISTS ${table} (
      "consumer_group" VARCHAR(255) NOT NULL,
      "offset_acked" BIGINT,
      "last_processed_transaction_id" xid8 NOT NULL,
      PRIMARY KEY ("consumer_group")
    )`,
  ]);
}

/**
 * The zero row, inserted before subscribing, so that the consume transaction's FOR UPDATE always has a row to
 * lock. Without it two first consumers of a group would both find nothing to lock, both read from the start
 * and both insert: a double delivery. Position 0 is below every real transaction id (the first is 3).
 */
export async function ensurePgGroupRow(db: SqlExecutor, topic: string, group: string): Promise<void> {
  await db.query(
    `INSERT INTO ${pgOffsetsTable(topic)} ("consumer_group", "offset_acked", "last_processed_transaction_id")
     VALUES ($1, 0, '0') ON CONFLICT ("consumer_group") DO NOTHING`,
    [group],
  );
}

/**
 * Locks the group's row until the transaction ends: one batch of a group at a time, so two consumers of a group
 * never read the same messages. At REPEATABLE READ, if another consumer of the group committed a newer ack
 * after this transaction's snapshot was taken, PostgreSQL refuses the lock with serialization_failure (40001)
 * rather than hand back the stale position: the caller rolls back and retries.
 */
export async function lockPgPosition(db: SqlExecutor, topic: string, group: string): Promise<PgPosition> {
  const rows = await db.query<{ offset_acked: string | null; tx: string }[]>(
    `SELECT "offset_acked", "last_processed_transaction_id"::text AS "tx" FROM ${pgOffsetsTable(topic)}
     WHERE "consumer_group" = $1 FOR UPDATE`,
    [group],
  );
  const row = rows[0];
  if (row === undefined) throw new Error(`consumer group "${group}" has no row in ${pgOffsetsTable(topic)} (ensurePgGroupRow first)`);
  return { transactionId: row.tx, offset: Number(row.offset_acked ?? 0) };
}

/** The ack: both columns of the last row handled, in the transaction that wrote the batch's effects. */
export function writePgPositionStatement(topic: string, group: string, position: PgPosition): PgStatement {
  return {
    sql: `UPDATE ${pgOffsetsTable(topic)} SET "offset_acked" = $1, "last_processed_transaction_id" = $2::xid8 WHERE "consumer_group" = $3`,
    values: [position.offset, position.transactionId, group],
  };
}

export async function writePgPosition(db: SqlExecutor, topic: string, group: string, position: PgPosition): Promise<void> {
  const { sql, values } = writePgPositionStatement(topic, group, position);
  await db.query(sql, values);
}

/** The group's committed position, without a lock (observers, checkers). */
export async function selectPgPosition(db: SqlExecutor, topic: string, group: string): Promise<PgPosition | undefined> {
  const rows = await db.query<{ offset_acked: string | null; tx: string }[]>(
    `SELECT "offset_acked", "last_processed_transaction_id"::text AS "tx" FROM ${pgOffsetsTable(topic)} WHERE "consumer_group" = $1`,
    [group],
  );
  const row = rows[0];
  return row === undefined ? undefined : { transactionId: row.tx, offset: Number(row.offset_acked ?? 0) };
}

/**
 * The lowest position over every group of the topic (row order: transaction id, then offset), and how many
 * groups there are: messages at or before it have been consumed by everyone. 0 groups: undefined.
 */
export async function selectLowestPgPosition(db: SqlExecutor, topic: string): Promise<{ lowest: PgPosition | undefined; groups: number }> {
  const rows = await db.query<{ offset_acked: string | null; tx: string; groups: string }[]>(
    `SELECT "offset_acked", "last_processed_transaction_id"::text AS "tx", COUNT(*) OVER () AS "groups"
     FROM ${pgOffsetsTable(topic)} ORDER BY "last_processed_transaction_id", COALESCE("offset_acked", 0) LIMIT 1`,
  );
  const row = rows[0];
  if (row === undefined) return { lowest: undefined, groups: 0 };
  return { lowest: { transactionId: row.tx, offset: Number(row.offset_acked ?? 0) }, groups: Number(row.groups) };
}
