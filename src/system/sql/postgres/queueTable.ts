// All SQL on `eob_queue_<topic>` on PostgreSQL, the topic table of queue mode: watermill_<topic>'s columns
// (without transaction_id) plus an `acked` flag, so several workers share one topic with row acks and no
// high-water mark to step over anything.
import type { Message, OutgoingMessage, SqlExecutor } from '../../types.ts';
import { pgQueueTable, valuesPlaceholders, type PgStatement } from './identifiers.ts';
import { metadataJson, payloadJson } from '../../messageJson.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

export interface QueueRow {
  offset: string;
  uuid: string;
  created_at: Date;
  payload: unknown;
  metadata: unknown;
}

/** The partial index holds only unacked rows, so a claim walks exactly the work left, in offset order. */
export async function createPgQueueTable(db: SqlExecutor, topic: string): Promise<void> {
  const table = pgQueueTable(topic);
  await createUnderSchemaLock(db, table, [
    `CREATE TABLE IF NOT EXISTS ${table} (
      "offset" BIGSERIAL PRIMARY KEY,
      "uuid" VARCHAR(36) NOT NULL,
      "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
      "payload" JSON DEFAULT NULL,
      "metadata" JSON DEFAULT NULL,
      "acked" BOOLEAN NOT NULL DEFAULT FALSE
    )`,
    `CREATE INDEX IF NOT EXISTS ${table.replace(/"$/, '_unacked"')} ON ${table} ("offset") WHERE NOT "acked"`,
  ]);
}

/** One multi-row INSERT into the queue (at most MAX_MESSAGES_PER_INSERT of messages.ts rows: 3 parameters each). */
export function insertPgQueueMessagesStatement(topic: string, messages: readonly OutgoingMessage[]): PgStatement {
  if (messages.length === 0) throw new Error('insertPgQueueMessagesStatement: no messages');
  const values: unknown[] = [];
  for (const m of messages) values.push(m.uuid, payloadJson(m), metadataJson(m));
  return {
    sql: `INSERT INTO ${pgQueueTable(topic)} ("uuid", "payload", "metadata") VALUES ${valuesPlaceholders(messages.length, 3)}`,
    values,
  };
}

/**
 * Claims up to `limit` unacked messages for this transaction. FOR UPDATE locks them until commit; SKIP LOCKED
 * passes over rows another consumer holds, so parallel consumers take disjoint batches. An uncommitted INSERT is
 * invisible (MVCC), so it is simply left for a later poll: with no high-water mark, nothing is passed for good.
 * At READ COMMITTED a row another consumer acked and committed meanwhile is re-checked against `NOT acked` on
 * its latest version and dropped, so it is never handled twice.
 */
export function claimPgUnackedStatement(topic: string, limit: number): PgStatement {
  return {
    sql: `SELECT "offset", "uuid", "created_at", "payload", "metadata" FROM ${pgQueueTable(topic)}
     WHERE NOT "acked" ORDER BY "offset" ASC LIMIT $1 FOR UPDATE SKIP LOCKED`,
    values: [limit],
  };
}

export async function claimPgUnacked(db: SqlExecutor, topic: string, limit: number): Promise<Message[]> {
  const { sql, values } = claimPgUnackedStatement(topic, limit);
  return toQueueMessages(await db.query<QueueRow[]>(sql, values));
}

export function toQueueMessages(rows: readonly QueueRow[]): Message[] {
  return rows.map((r) => ({
    offset: Number(r.offset),
    uuid: r.uuid,
    createdAt: r.created_at,
    payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
    metadata: ((typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata) ?? {}) as Record<string, string>,
  }));
}

/** Acks exactly the rows handled; returns how many it acked. The rows stay, so a checker can read them. */
export function markPgAckedStatement(topic: string, offsets: readonly number[]): PgStatement {
  if (offsets.length === 0) throw new Error('markPgAckedStatement: no offsets');
  return {
    sql: `UPDATE ${pgQueueTable(topic)} SET "acked" = TRUE WHERE "offset" = ANY($1::bigint[]) RETURNING "offset"`,
    values: [offsets.map(String)],
  };
}

export async function markPgAcked(db: SqlExecutor, topic: string, offsets: readonly number[]): Promise<number> {
  if (offsets.length === 0) return 0;
  const { sql, values } = markPgAckedStatement(topic, offsets);
  return (await db.query<{ offset: string }[]>(sql, values)).length;
}

export async function countPgQueue(db: SqlExecutor, topic: string): Promise<{ total: number; acked: number }> {
  const rows = await db.query<{ total: string; acked: string }[]>(
    `SELECT COUNT(*) AS "total", COUNT(*) FILTER (WHERE "acked") AS "acked" FROM ${pgQueueTable(topic)}`,
  );
  return { total: Number(rows[0]?.total ?? 0), acked: Number(rows[0]?.acked ?? 0) };
}

/**
 * Removes up to `limit` acked rows, oldest first. At READ COMMITTED it locks only the rows it deletes; SKIP
 * LOCKED leaves rows a consumer still holds (its ack not yet committed) for the next prune instead of waiting.
 */
export async function deletePgAckedQueueRows(db: SqlExecutor, topic: string, limit: number): Promise<number> {
  const table = pgQueueTable(topic);
  const rows = await db.query<{ offset: string }[]>(
    `DELETE FROM ${table} WHERE "offset" IN (
       SELECT "offset" FROM ${table} WHERE "acked" ORDER BY "offset" LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING "offset"`,
    [limit],
  );
  return rows.length;
}

/** Every queue row with its acked flag, for the chaos checker's snapshot (a full scan: only after a run). */
export async function selectAllPgQueueMessages(db: SqlExecutor, topic: string): Promise<{ messages: Message[]; ackedOffsets: Set<number> }> {
  const rows = await db.query<(QueueRow & { acked: boolean })[]>(
    `SELECT "offset", "uuid", "created_at", "payload", "metadata", "acked" FROM ${pgQueueTable(topic)} ORDER BY "offset"`,
  );
  return { messages: toQueueMessages(rows), ackedOffsets: new Set(rows.filter((r) => r.acked).map((r) => Number(r.offset))) };
}
