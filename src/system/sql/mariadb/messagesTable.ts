// All SQL on `watermill_<topic>`, the topic log of offset mode. The DDL is watermill-sql's default MySQL
// schema, so a real Watermill deployment's tables can be read and written by this tool and vice versa.
import type { OffsetRangeLocks } from '../gapProbes.ts';
import { toMessage, type MessageRow } from '../rows.ts';
import type { Message, OutgoingMessage, SqlExecutor, Statement } from '../../types.ts';
import { messagesTable, offsetsTable } from './identifiers.ts';
import { metadataJson, payloadJson } from '../../messageJson.ts';

export async function createMessagesTable(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${messagesTable(topic)} (
    \`offset\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    \`uuid\` VARCHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    \`payload\` JSON DEFAULT NULL,
    \`metadata\` JSON DEFAULT NULL
  ) ENGINE=InnoDB`);
}

/**
 * One multi-row INSERT: one statement, one commit, offsets allocated consecutively for the rows. The values are
 * placeholders: the publishers send it as a prepared statement (see writeMessages).
 */
export function insertMessagesStatement(table: string, messages: readonly OutgoingMessage[]): Statement {
  if (messages.length === 0) throw new Error('insertMessagesStatement: no messages');
  // Column names are listed so that extra columns of a variant table (queue mode's `acked`) take defaults.
  let sql = `INSERT INTO ${table} (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, ?, ?)`;
  const values: string[] = [];
  for (let i = 0; i < messages.length; i += 1) {
    const m = messages[i] as OutgoingMessage;
    if (i > 0) sql += ', (?, ?, ?)';
    values.push(m.uuid, payloadJson(m), metadataJson(m));
  }
  return { sql, values };
}

/**
 * Sends a messages INSERT as a prepared statement where the executor has them (every mysql2 pool and
 * connection of this project). Bound values are never read as SQL text, so a value holding quotes or
 * backslashes (an X-Request-Id may) is stored as sent whatever the session's sql_mode: written into the text
 * and escaped by the driver, which assumes backslash escapes, it was a syntax error under
 * NO_BACKSLASH_ESCAPES that failed every request of its batch, and let the rest of the value be read as SQL.
 * Cost, measured on the 2-core development machine: in a loop of the server's rows (private MariaDB, 2
 * connections, 5 interleaved rounds) the database's CPU per row fell from 22.8 to 19.3 us at 20 rows per
 * INSERT and from 14.5 to 10.8 at 50, while the client's rose from 14.4 to 15.7 at 20 rows and fell from
 * 8.5 to 7.7 at 50 (mysql2 encodes each bound string into a buffer of its own); end to end (wrk 256
 * connections, 4 interleaved pairs) the database saved 1.3-5 us per message in every pair and the server
 * spent 2-6 more in 3 of 4: about even in all. One statement per batch size: see
 * MAX_PREPARED_STATEMENTS_PER_CONNECTION.
 */
export async function writeMessages(db: SqlExecutor, statement: Statement): Promise<void> {
  if (db.execute !== undefined) await db.execute(statement.sql, statement.values);
  else await db.query(statement.sql, statement.values);
}

export async function insertMessages(db: SqlExecutor, topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
  await writeMessages(db, insertMessagesStatement(messagesTable(topic), messages));
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
 * On a Galera node, `SET STATEMENT wsrep_sync_wait = 1 FOR` makes one read causal: the node first applies every
 * write set the cluster had ordered when the read was asked, so the read sees every transaction that had
 * committed on any node by then. Only that statement waits (the session keeps its own setting); a plain server
 * has no such variable, so callers ask for it only on a cluster.
 */
const CAUSAL = 'SET STATEMENT wsrep_sync_wait = 1 FOR ';

/**
 * The same read with the group's acked offset taken from the offsets table in a subquery, so it can travel in
 * one round trip with the `FOR UPDATE` that locks that row: the subquery then reads the value this transaction
 * has just locked (no one else can change it until we commit). Same locking as selectMessagesAfter.
 */
export function selectMessagesAfterAckedStatement(topic: string, group: string, limit: number, causal = false): Statement {
  return {
    sql: `${causal ? CAUSAL : ''}SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${messagesTable(topic)}
     WHERE \`offset\` > (SELECT \`offset_acked\` FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = ?)
     ORDER BY \`offset\` ASC LIMIT ?`,
    values: [group, limit],
  };
}

/**
 * MariaDB reports a NOWAIT read that met a lock (a record lock, a table lock, or a metadata lock) as a lock wait
 * timeout, 1205, at once (checked on 10.11: 1 ms). 3572 is MySQL 8's own NOWAIT error; 1213 (deadlock) cannot
 * happen without a wait, and would mean the same thing.
 */
const LOCKED_ERRNOS = new Set([1205, 1213, 3572]);

/**
 * Tries to take a shared lock on every row with `from <= offset < below`, without waiting, in a short
 * transaction of its own, then ends it. Used by the gap proof to learn whether an offset's row is in the
 * table, committed, or still held by the transaction that wrote (or is removing) it.
 * - A locking read reads the latest version of each record, never a snapshot, and must lock it: a record
 *   inserted (or delete-marked) by a transaction that has not ended carries that transaction's implicit
 *   exclusive lock, which the read meets whatever the isolation levels (the inserter's lock lasts until its
 *   commit, or until its rollback has removed the record).
 * - READ COMMITTED, set for this one transaction whatever the session's level: a locking read there takes
 *   record locks only, no gap or next-key locks, so it never blocks an INSERT (publishers are never held up)
 *   and locks nothing beyond the rows it reads. LOCK IN SHARE MODE: shared locks are compatible with the
 *   shared locks of other readers (a SERIALIZABLE consumer's). MariaDB 10.11 has no `FOR SHARE`.
 * - NOWAIT: the caller is a consumer's only connection; waiting (up to innodb_lock_wait_timeout, 50 s by
 *   default) behind a publisher's open transaction would stall the whole consumer. A lock error is an answer.
 * The scan reads the first record at or above `below` to find the range's end and tries to lock it too, so
 * `below` should be an offset whose row is known to be committed (the gap proof passes the highest offset a
 * read returned); an uncommitted row there only makes the answer `locked`, never wrong.
 */
export async function lockOffsetRangeNowait(db: SqlExecutor, topic: string, from: number, below: number): Promise<OffsetRangeLocks> {
  await db.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
  await db.query('START TRANSACTION');
  let found: OffsetRangeLocks;
  try {
    const rows = await db.query<{ offset: number | string }[]>(
      `SELECT \`offset\` FROM ${messagesTable(topic)} WHERE \`offset\` >= ? AND \`offset\` < ? ORDER BY \`offset\` LOCK IN SHARE MODE NOWAIT`,
      [from, below],
    );
    found = { kind: 'rows', offsets: rows.map((r) => Number(r.offset)) };
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    // The statement's error leaves the transaction open (innodb_rollback_on_timeout is off by default).
    if (errno === undefined || !LOCKED_ERRNOS.has(errno)) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    found = { kind: 'locked', errno };
  }
  await db.query('ROLLBACK');
  return found;
}

/** Whether the row at `offset` is visible to a fresh read; `causal` (Galera) after the node caught up with the cluster. */
export async function offsetRowVisible(db: SqlExecutor, topic: string, offset: number, causal: boolean): Promise<boolean> {
  const rows = await db.query<unknown[]>(`${causal ? CAUSAL : ''}SELECT 1 FROM ${messagesTable(topic)} WHERE \`offset\` = ?`, [offset]);
  return rows.length > 0;
}

/** The offsets of the rows with `from <= offset < below` a fresh read sees; `causal` as in offsetRowVisible. */
export async function selectOffsetsInRange(db: SqlExecutor, topic: string, from: number, below: number, causal: boolean): Promise<number[]> {
  const rows = await db.query<{ offset: number | string }[]>(
    `${causal ? CAUSAL : ''}SELECT \`offset\` FROM ${messagesTable(topic)} WHERE \`offset\` >= ? AND \`offset\` < ? ORDER BY \`offset\``,
    [from, below],
  );
  return rows.map((r) => Number(r.offset));
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
