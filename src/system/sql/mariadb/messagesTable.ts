// All SQL on `watermill_<topic>`, the topic log of offset mode. The DDL is watermill-sql's default MySQL
// schema, so a real Watermill deployment's tables can be read and written by this tool and vice versa.
import type { Message, OutgoingMessage, SqlExecutor } from '../../pubsub/types.ts';
import { messagesTable, offsetsTable } from './identifiers.ts';
import type { Statement } from '../../db/pool.ts';

export interface MessageRow {
  offset: number;
  uuid: string;
  created_at: Date;
  payload: unknown;
  metadata: unknown;
}

export async function createMessagesTable(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${messagesTable(topic)} (
    \`offset\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    \`uuid\` VARCHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    \`payload\` JSON DEFAULT NULL,
    \`metadata\` JSON DEFAULT NULL
  ) ENGINE=InnoDB`);
}

/** Builds one multi-row INSERT: one statement, one commit, offsets allocated consecutively for the rows. */
export function insertMessagesSql(table: string, messages: readonly OutgoingMessage[]): { sql: string; values: unknown[] } {
  if (messages.length === 0) throw new Error('insertMessagesSql: no messages');
  const values: unknown[] = [];
  for (const m of messages) values.push(m.uuid, JSON.stringify(m.payload), JSON.stringify(m.metadata));
  const rows = messages.map(() => '(?, ?, ?)').join(', ');
  // Column names are listed so that extra columns of a variant table (queue mode's `acked`) take defaults.
  return { sql: `INSERT INTO ${table} (\`uuid\`, \`payload\`, \`metadata\`) VALUES ${rows}`, values };
}

export async function insertMessages(db: SqlExecutor, topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
  const { sql, values } = insertMessagesSql(messagesTable(topic), messages);
  await db.query(sql, values);
}

/**
 * Reads up to `limit` messages after `afterOffset`, in offset order. At READ COMMITTED (the consumers'
 * default) it is a consistent read that locks nothing: a row not yet committed is simply not seen (a hole the
 * subscriber does not ack past until it is proven permanent), and no INSERT at the tail ever waits for it.
 * Under SERIALIZABLE InnoDB turns it into a shared locking read: uncommitted rows in the index make it wait for
 * their commit, and when it reads to the end of the topic it locks the gap above the last row, so every INSERT
 * waits until the consuming transaction ends (a consumer frozen mid-batch stops the publishers). Rows whose
 * offset is allocated but not yet in the index are not seen at any level.
 */
export async function selectMessagesAfter(
  db: SqlExecutor,
  topic: string,
  afterOffset: number,
  limit: number,
): Promise<Message[]> {
  const rows = await db.query<MessageRow[]>(
    `SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${messagesTable(topic)}
     WHERE \`offset\` > ? ORDER BY \`offset\` ASC LIMIT ?`,
    [afterOffset, limit],
  );
  return rows.map(toMessage);
}

/**
 * The same read with the group's acked offset taken from the offsets table in a subquery, so it can travel in
 * one round trip with the `FOR UPDATE` that locks that row: the subquery then reads the value this transaction
 * has just locked (no one else can change it until we commit). Same locking as selectMessagesAfter.
 */
export function selectMessagesAfterAckedStatement(topic: string, group: string, limit: number): Statement {
  return {
    sql: `SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${messagesTable(topic)}
     WHERE \`offset\` > (SELECT \`offset_acked\` FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = ?)
     ORDER BY \`offset\` ASC LIMIT ?`,
    values: [group, limit],
  };
}

/** The highest offset in the topic, visible to this session (0 for an empty topic). */
export async function selectMaxOffset(db: SqlExecutor, topic: string): Promise<number> {
  const rows = await db.query<{ max_offset: number | null }[]>(
    `SELECT MAX(\`offset\`) AS max_offset FROM ${messagesTable(topic)}`,
  );
  return Number(rows[0]?.max_offset ?? 0);
}

/** The lowest offset still in the topic (undefined for an empty topic): where a prune starts its ranges. */
export async function selectMinOffset(db: SqlExecutor, topic: string): Promise<number | undefined> {
  const rows = await db.query<{ min_offset: number | null }[]>(
    `SELECT MIN(\`offset\`) AS min_offset FROM ${messagesTable(topic)}`,
  );
  const min = rows[0]?.min_offset;
  return min === null || min === undefined ? undefined : Number(min);
}

/**
 * Removes the messages in [from, to] (both acked by every group: the caller's floor). A primary-key range, so
 * the statement locks only the rows it deletes; the caller runs it at READ COMMITTED, where InnoDB takes no
 * gap or next-key locks for it, so an INSERT at the tail (always above the range) never waits for a prune,
 * and a consumer (reading above its acked offset, which is at or above `to`) never meets its locks.
 */
export async function deleteMessagesInRange(db: SqlExecutor, topic: string, from: number, to: number): Promise<number> {
  const result = await db.query<{ affectedRows: number }>(
    `DELETE FROM ${messagesTable(topic)} WHERE \`offset\` >= ? AND \`offset\` <= ?`,
    [from, to],
  );
  return result.affectedRows;
}

export async function countMessages(db: SqlExecutor, topic: string): Promise<number> {
  const rows = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${messagesTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/** Every message's offset, uuid and metadata, for the checker (a full scan: only after a run). */
export async function selectAllMessages(db: SqlExecutor, topic: string): Promise<Message[]> {
  const rows = await db.query<MessageRow[]>(
    `SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${messagesTable(topic)} ORDER BY \`offset\``,
  );
  return rows.map(toMessage);
}

export function toMessage(row: MessageRow): Message {
  return {
    offset: Number(row.offset),
    uuid: row.uuid,
    createdAt: row.created_at,
    payload: parseJson(row.payload),
    metadata: (parseJson(row.metadata) ?? {}) as Record<string, string>,
  };
}

// MariaDB's JSON is LONGTEXT, so the driver hands back a string; MySQL's JSON type arrives already parsed.
function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
