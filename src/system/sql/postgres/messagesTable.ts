// All SQL on `watermill_<topic>` on PostgreSQL: the topic log of offset mode, with watermill-sql's PostgreSQL
// schema, so a Watermill publisher or subscriber and this tool can share the tables.
//
// THE VISIBILITY RULE (why no message is ever stepped over, with no timeout):
//
//   Each row carries `transaction_id xid8`, the id of the transaction that inserted it (the column's default,
//   pg_current_xact_id(), so a raw INSERT from any program gets it too). A consumer's position is the pair
//   (last_tx, acked) of the last row it handled. It reads rows with
//       (transaction_id, "offset") > (last_tx, acked)   -- i.e. same transaction and a later offset, or a later one
//   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()),
//   ordered by (transaction_id, "offset"), LIMIT n.
//
//   THE PROOF. It rests on three facts of PostgreSQL (13+):
//   R1 xid8 does not wrap: it is the 32-bit xid extended with its epoch, so ids compare in the order they were
//      handed out, for the life of the cluster (a plain xid wraps after 2^32 and cannot be ordered so). Only
//      within one cluster: ids carried into another (logical replication, pg_dump/restore, rows copied with
//      their ids) break the rule; pg_upgrade keeps the next id and is safe.
//   R2 The default returns the writer's top-level id, assigning it if the transaction has none yet (inside a
//      savepoint, from a trigger, in COPY and INSERT ... SELECT alike). An id is assigned at the transaction's
//      first write, not at BEGIN (FOR UPDATE, nextval() and a write to any table assign it before the INSERT),
//      and stays in the running set from assignment until its commit or abort is visible. Ids are handed out
//      in increasing order, so a transaction with no id when a snapshot was taken gets one >= its xmax.
//   R3 A snapshot's xmin is the oldest id still running when it was taken, cluster-wide: every id below it had
//      ended (committed or rolled back) before the snapshot, so its committed rows are visible to that snapshot
//      and its rolled-back rows are visible to no one, ever. "Running" includes prepared (two-phase)
//      transactions, also after a restart, commits still waiting for a synchronous standby, and transactions of
//      every database of the cluster.
//
//   Every row below xmin is visible-or-never: a row with transaction_id < xmin was written by that (ended)
//   transaction (R2: the id is the writer's own), so it is visible if the writer committed and will never exist
//   if it rolled back (R3); and no row with an id below xmin can appear later, because a transaction still
//   running has an id >= xmin and one without an id yet will get one >= xmax (R2, ordered by R1). So the set of
//   rows below xmin is closed when the read's snapshot is taken, and the read sees all of it. Reading it in
//   (transaction_id, offset) order strictly after the acked position, and acking the last row read, leaves no
//   row of the set behind the position unread; a later read's set contains the earlier one, so the position
//   only ever moves through closed sets: nothing is stepped over, and nothing is read twice (the ack commits
//   with the batch's effects).
//
//   A row with transaction_id >= xmin can still be joined by an earlier one: its writer may have ended, but
//   some transaction T with xmin <= T < its id may still be running; T's row, committed later, sorts BEFORE it.
//   A reader that took the later row and acked it would have moved past T for good: T's row is then never read.
//   That is exactly what the control reader (the read without the xmin condition) does, and why it loses the
//   message of a transaction that inserts first and commits last (test/postgresRawPublishers.test.ts). Offsets
//   prove nothing either way: they come from a sequence at INSERT, in any commit order. Any transaction
//   holding an id anywhere on the cluster (a long-open writer, another consumer's batch, a forgotten prepared
//   transaction, in any database) delays delivery of everything at or above its id, with no timeout; it never
//   loses a message. A stall, never a loss.
//   What breaks the rule: a publisher, trigger or UPDATE that sets transaction_id itself (not the default);
//   rows that arrive with ids from another cluster (a logical-replication subscriber, a restore, a copy); a
//   server before 13 (no xid8). test/postgresForeignXids.test.ts shows the loss on a subscriber.
//
//   A promoted streaming standby is the same cluster, and the rule holds on it: it hands out ids above every id
//   in the WAL it replayed, and a transaction in flight at the primary's death is aborted there (its rows never
//   visible, its id not holding xmin back). The group's position is a row of the replicated database, acked
//   after the rows it covers, and the WAL the standby replays is a prefix of the primary's: the position it has
//   covers only rows it has, and is below every id it will hand out. What does NOT hold: ids the old primary
//   assigned but never shipped are handed out again, so a position carried over from the old primary (kept in
//   memory or anywhere outside this database) can stand above new rows, which are then never read
//   (test/postgresPromotion.test.ts measures both).
//
//   The rule needs xmin to come from a snapshot no later than the one the scan reads through (the same
//   snapshot is sufficient). At REPEATABLE
//   READ (watermill-sql's level) that is the transaction's snapshot; at READ COMMITTED it is the statement's
//   (checked here: within one READ COMMITTED transaction, xmin moved from 727 to 728 between two statements
//   once 727 committed). So each read below is one statement that computes xmin and scans under one snapshot,
//   and it holds at either level. At READ COMMITTED the counter upsert waits for a concurrent writer instead of
//   failing with 40001.
import type { Message, OutgoingMessage, SqlExecutor } from '../../types.ts';
import { toMessage } from '../rows.ts';
import { MAX_PARAMETERS, pgMessagesTable, pgOffsetsTable, valuesPlaceholders, type PgStatement } from './identifiers.ts';
import { metadataJson, payloadJson } from '../../messageJson.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

/** A message as read on PostgreSQL: with the id of the transaction that inserted it (xid8, as a decimal string). */
export interface PgMessage extends Message {
  transactionId: string;
}

/** A consumer group's place in the topic: the last row it handled, in (transaction_id, offset) order. */
export interface PgPosition {
  /** xid8 as a decimal string ('0' before the first ack). */
  transactionId: string;
  offset: number;
}

export interface PgMessageRow {
  offset: string | number;
  uuid: string;
  created_at: Date;
  payload: unknown;
  metadata: unknown;
  transaction_id: string;
}

// The text alias keeps xid8 exact in JavaScript, but it hides the column from a bare ORDER BY "transaction_id" (an
// output name wins there): that sorts as text, '1000' before '999', and a read would ack past 999 for good
// (test/postgresXidOrder.test.ts). So every read below names the table as m and orders by m."transaction_id".
const COLUMNS = `"offset", "uuid", "created_at", "payload", "metadata", "transaction_id"::text AS "transaction_id"`;

/**
 * watermill-sql's PostgreSQL DDL, except that transaction_id has a default, so publishers that do not set it
 * (raw INSERTs, psql) are consumed under the same rule. The primary key leads with transaction_id because the
 * read filters and orders on it first. BIGSERIAL: a bench run can pass 2^31 offsets.
 */
export async function createPgMessagesTable(db: SqlExecutor, topic: string): Promise<void> {
  const table = pgMessagesTable(topic);
  await createUnderSchemaLock(db, table, [
    `CREATE TABLE IF NOT EXISTS ${table} (
      "offset" BIGSERIAL,
      "uuid" VARCHAR(36) NOT NULL,
      "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
      "payload" JSON DEFAULT NULL,
      "metadata" JSON DEFAULT NULL,
      "transaction_id" xid8 NOT NULL DEFAULT pg_current_xact_id(),
      PRIMARY KEY ("transaction_id", "offset")
    )`,
  ]);
}

/** Rows per multi-row INSERT the protocol allows (three parameters each). */
export const MAX_MESSAGES_PER_INSERT = Math.floor(MAX_PARAMETERS / 3);

/**
 * One multi-row INSERT: one statement, one commit, one transaction id for every row (so they are delivered
 * together, in offset order). payload and metadata go as JSON text; the server checks them against JSON.
 */
export function insertPgMessagesStatement(topic: string, messages: readonly OutgoingMessage[]): PgStatement {
  if (messages.length === 0) throw new Error('insertPgMessagesStatement: no messages');
  if (messages.length > MAX_MESSAGES_PER_INSERT) {
    throw new Error(`insertPgMessagesStatement: ${messages.length} messages exceed ${MAX_MESSAGES_PER_INSERT} per INSERT (65,535 parameters)`);
  }
  const values: unknown[] = [];
  for (const m of messages) values.push(m.uuid, payloadJson(m), metadataJson(m));
  return {
    sql: `INSERT INTO ${pgMessagesTable(topic)} ("uuid", "payload", "metadata") VALUES ${valuesPlaceholders(messages.length, 3)}`,
    values,
  };
}

export async function insertPgMessages(db: SqlExecutor, topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
  const { sql, values } = insertPgMessagesStatement(topic, messages);
  await db.query(sql, values);
}

/**
 * The consume read under the visibility rule above, for a position the caller holds (read from the group's
 * row it has locked in the same transaction), at READ COMMITTED or REPEATABLE READ (see the top of this file).
 */
export function selectPgMessagesAfterStatement(topic: string, after: PgPosition, limit: number): PgStatement {
  return {
    sql: `SELECT ${COLUMNS} FROM ${pgMessagesTable(topic)} m
     WHERE (m."transaction_id", m."offset") > ($1::xid8, $2::bigint)
       AND m."transaction_id" < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY m."transaction_id" ASC, m."offset" ASC
     LIMIT $3`,
    values: [after.transactionId, after.offset, limit],
  };
}

export async function selectPgMessagesAfter(db: SqlExecutor, topic: string, after: PgPosition, limit: number): Promise<PgMessage[]> {
  const { sql, values } = selectPgMessagesAfterStatement(topic, after, limit);
  return (await db.query<PgMessageRow[]>(sql, values)).map(toPgMessage);
}

/**
 * watermill-sql's one-statement shape of the same read: the CTE locks the group's offsets row (FOR UPDATE:
 * one batch of a group at a time) and the read takes its position from that row, in one round trip. The rule
 * is the same; the group must have a row (ensurePgGroupRow), or nothing is read. At READ COMMITTED a consumer
 * that waited for the lock reads the row's latest position (the other consumer's ack); the messages are read
 * under the statement's snapshot, taken before the wait, which is still safe: everything after that position
 * and below this snapshot's xmin had ended before the snapshot, so what committed of it is visible.
 *
 * `rule: 'none'` is THE CONTROL (a reader without the xmin condition, the worker's --gap-handling none on
 * PostgreSQL): it reads whatever has committed, so a transaction with a lower id that commits after a higher
 * one is read past and, once the position has moved beyond its (transaction_id, offset), never read.
 */
export function lockAndSelectPgMessagesStatement(topic: string, group: string, limit: number, rule: 'xmin' | 'none' = 'xmin'): PgStatement {
  // The position goes in as scalar subqueries and one row comparison, which the planner turns into an index
  // range on the primary key starting AT the position. Joined with the CTE instead, it scanned the index from
  // the start and filtered: measured on 600,000 rows with the position half-way, 356 ms per batch of 1,000
  // (300,001 rows removed by the filter), growing with every row consumed.
  return {
    sql: `WITH "position" AS (
       SELECT "offset_acked", "last_processed_transaction_id" FROM ${pgOffsetsTable(topic)}
       WHERE "consumer_group" = $1 FOR UPDATE
     )
     SELECT m."offset", m."uuid", m."created_at", m."payload", m."metadata", m."transaction_id"::text AS "transaction_id"
     FROM ${pgMessagesTable(topic)} m
     WHERE (m."transaction_id", m."offset") > ((SELECT "last_processed_transaction_id" FROM "position"), (SELECT COALESCE("offset_acked", 0) FROM "position"))
       ${rule === 'xmin' ? 'AND m."transaction_id" < pg_snapshot_xmin(pg_current_snapshot())' : ''}
     ORDER BY m."transaction_id" ASC, m."offset" ASC
     LIMIT $2`,
    values: [group, limit],
  };
}

export async function lockAndSelectPgMessages(db: SqlExecutor, topic: string, group: string, limit: number): Promise<PgMessage[]> {
  const { sql, values } = lockAndSelectPgMessagesStatement(topic, group, limit);
  return (await db.query<PgMessageRow[]>(sql, values)).map(toPgMessage);
}

/**
 * THE CONTROL, never used by a subscriber: the same read WITHOUT the xmin condition. It reads whatever has
 * committed, so a transaction with a lower id that commits after a higher one is read past: once the position
 * has moved beyond its (transaction_id, offset), its rows are never read. Kept to show that the rule is what
 * prevents the loss.
 */
export async function selectPgMessagesAfterWithoutXminRule(db: SqlExecutor, topic: string, after: PgPosition, limit: number): Promise<PgMessage[]> {
  const rows = await db.query<PgMessageRow[]>(
    `SELECT ${COLUMNS} FROM ${pgMessagesTable(topic)} m
     WHERE (m."transaction_id", m."offset") > ($1::xid8, $2::bigint)
     ORDER BY m."transaction_id" ASC, m."offset" ASC
     LIMIT $3`,
    [after.transactionId, after.offset, limit],
  );
  return rows.map(toPgMessage);
}

/** How many messages lie beyond `after` (committed, any transaction id): the lag a bench observer reports. */
export async function countPgMessagesAfter(db: SqlExecutor, topic: string, after: PgPosition): Promise<number> {
  const rows = await db.query<{ n: string }[]>(
    `SELECT COUNT(*) AS n FROM ${pgMessagesTable(topic)}
     WHERE ("transaction_id", "offset") > ($1::xid8, $2::bigint)`,
    [after.transactionId, after.offset],
  );
  return Number(rows[0]?.n ?? 0);
}

export async function countPgMessages(db: SqlExecutor, topic: string): Promise<number> {
  const rows = await db.query<{ n: string }[]>(`SELECT COUNT(*) AS n FROM ${pgMessagesTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Removes the messages at or before `upTo` (the lowest position every group has acked: the caller's floor).
 * The row comparison walks the primary key; rows at or below every group's position are never read again, and
 * new rows always land above it (their transaction ids are newer than any acked one), so publishers never wait.
 */
export async function deletePgMessagesUpTo(db: SqlExecutor, topic: string, upTo: PgPosition, limit: number): Promise<number> {
  const rows = await db.query<{ offset: string }[]>(
    `DELETE FROM ${pgMessagesTable(topic)} WHERE ("transaction_id", "offset") IN (
       SELECT "transaction_id", "offset" FROM ${pgMessagesTable(topic)}
       WHERE ("transaction_id", "offset") <= ($1::xid8, $2)
       ORDER BY "transaction_id", "offset" LIMIT $3)
     RETURNING "offset"`,
    [upTo.transactionId, upTo.offset, limit],
  );
  return rows.length;
}

/** Every message, for the checker (a full scan: only after a run). */
export async function selectAllPgMessages(db: SqlExecutor, topic: string): Promise<PgMessage[]> {
  const rows = await db.query<PgMessageRow[]>(`SELECT ${COLUMNS} FROM ${pgMessagesTable(topic)} m ORDER BY m."transaction_id", m."offset"`);
  return rows.map(toPgMessage);
}

export function toPgMessage(row: PgMessageRow): PgMessage {
  return { ...toMessage(row), transactionId: String(row.transaction_id) };
}

/** The position just after the last message of a batch (what the ack stores). */
export function positionOf(message: PgMessage): PgPosition {
  return { transactionId: message.transactionId, offset: message.offset };
}
