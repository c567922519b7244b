// All SQL on `eob_queue_<topic>`, the topic table of queue mode: watermill_<topic>'s columns plus
// an `acked` flag, so several workers can share one topic with row acks and no high-water mark. A Watermill
// publisher names its columns, so it can publish into this table too (`acked` takes its default).
import type { Message, SqlExecutor, Statement } from '../../types.ts';
import { toMessage, type MessageRow } from '../rows.ts';
import { queueTable } from './identifiers.ts';

export async function createQueueTable(db: SqlExecutor, topic: string): Promise<void> {
  // (acked, offset) lets the consume read walk only unacked rows in offset order instead of the whole log.
  await db.query(`CREATE TABLE IF NOT EXISTS ${queueTable(topic)} (
    \`offset\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    \`uuid\` VARCHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    \`payload\` JSON DEFAULT NULL,
    \`metadata\` JSON DEFAULT NULL,
    \`acked\` TINYINT NOT NULL DEFAULT 0,
    KEY \`acked_offset\` (\`acked\`, \`offset\`)
  ) ENGINE=InnoDB`);
}

/**
 * Claims up to `limit` unacked messages for this transaction. FOR UPDATE locks them until commit; SKIP LOCKED
 * passes over rows another consumer holds and rows whose inserting transaction has not committed yet (their
 * implicit lock), so parallel consumers take disjoint batches and an uncommitted row is simply left for a later
 * poll: with no high-water mark, nothing can be stepped over for good. Run at READ COMMITTED so the locking read
 * takes no gap locks that would stall publishers.
 */
export function claimUnackedStatement(topic: string, limit: number): Statement {
  return {
    sql: `SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${queueTable(topic)}
     WHERE \`acked\` = 0 ORDER BY \`offset\` ASC LIMIT ? FOR UPDATE SKIP LOCKED`,
    values: [limit],
  };
}

export async function claimUnacked(db: SqlExecutor, topic: string, limit: number): Promise<Message[]> {
  const { sql, values } = claimUnackedStatement(topic, limit);
  return (await db.query<MessageRow[]>(sql, values)).map(toMessage);
}

/**
 * Acks exactly the rows handled, by offset; the row stays in the log so a checker can still read it.
 *
 * The ack does not trust the claim's lock: it moves only rows that are still unacked, and if any claimed row
 * is acked already it fails with 1213 (SQLSTATE 40001, a serialization failure). The SIGNAL itself rolls
 * nothing back: the consume loop's ROLLBACK undoes the batch's effects, and the batch is claimed afresh.
 *
 * In a consume transaction on one server the claim's FOR UPDATE lock makes the check pass always. On a Galera
 * cluster the claim's lock is node-local: workers on two nodes can claim the same rows, and the cluster must
 * abort one of them. If the other's ack is committed and applied on this node before this UPDATE runs, the
 * applier should already have aborted this transaction (brute force, for the claim's lock); should that abort
 * not happen, an unguarded UPDATE would change nothing, its writeset would carry no key of these rows, and
 * certification, which compares only with writesets this node had not applied yet, would let both commit. The
 * check closes that case here, on this node, without relying on Galera. The other interleavings (the other ack
 * arriving after this UPDATE moved the rows) are write-write conflicts on the same rows either way, and rest on
 * certification and brute-force aborts, as they did before. A quick chaos run once counted two messages twice
 * with the unguarded UPDATE, both transactions committing, no fault active; which interleaving that was is
 * not known.
 *
 * With --ack-mode after-commit (a control) the ack runs in a transaction of its own, with no claim lock: there
 * the check fails whenever another consumer acked the rows first, and the batch goes round again, adding to
 * the duplicates that control exists to show.
 *
 * With CLIENT_FOUND_ROWS (mysql2's default) ROW_COUNT() counts matched rows; with `acked = 0` in the WHERE,
 * matched rows are changed rows either way. One statement (an anonymous block, MariaDB only), so the ack and
 * COMMIT still travel in one round trip: a failing block stops the multi-statement packet before its COMMIT.
 */
export function markAckedStatement(topic: string, offsets: readonly number[]): Statement {
  if (offsets.length === 0) throw new Error('markAckedStatement: no offsets');
  // A repeated offset would be matched once and counted against twice: the check would fail every time.
  if (new Set(offsets).size !== offsets.length) throw new Error('markAckedStatement: repeated offsets');
  return {
    sql: `BEGIN NOT ATOMIC
      UPDATE ${queueTable(topic)} SET \`acked\` = 1 WHERE \`offset\` IN (${offsets.map(() => '?').join(', ')}) AND \`acked\` = 0;
      IF ROW_COUNT() <> ? THEN
        SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'queue ack: a claimed row was acked by another transaction meanwhile (its claim lock did not hold); the batch rolls back';
      END IF;
    END`,
    values: [...offsets, offsets.length],
  };
}

/**
 * Acks `offsets`, which must all be unacked (see markAckedStatement); resolves with how many were acked. Outside a
 * transaction a failure leaves the rows the UPDATE moved acked: call it inside one to get all or none.
 */
export async function markAcked(db: SqlExecutor, topic: string, offsets: readonly number[]): Promise<number> {
  if (offsets.length === 0) return 0;
  const { sql, values } = markAckedStatement(topic, offsets);
  await db.query(sql, values);
  return offsets.length;
}

/**
 * Queue consumers need MariaDB: their ack is an anonymous block (BEGIN NOT ATOMIC, MariaDB 10.1 and later),
 * which MySQL does not have. Checked once when a consumer starts, so that a MySQL server gets this sentence
 * rather than a syntax error at the first ack.
 */
export async function assertQueueAckSupported(db: SqlExecutor): Promise<void> {
  const rows = await db.query<{ v: string }[]>('SELECT VERSION() AS v');
  const version = String(rows[0]?.v ?? '');
  if (!/mariadb/i.test(version)) {
    throw new Error(
      `queue mode needs MariaDB: its ack is a MariaDB anonymous block (BEGIN NOT ATOMIC), and this server is ${version || 'of an unknown version'}; use offset mode (--mode offset) on MySQL`,
    );
  }
}

export async function countQueue(db: SqlExecutor, topic: string): Promise<{ total: number; acked: number }> {
  const rows = await db.query<{ total: number; acked: number | null }[]>(
    `SELECT COUNT(*) AS total, SUM(\`acked\`) AS acked FROM ${queueTable(topic)}`,
  );
  return { total: Number(rows[0]?.total ?? 0), acked: Number(rows[0]?.acked ?? 0) };
}

export async function selectAllQueueMessages(db: SqlExecutor, topic: string): Promise<Message[]> {
  const rows = await db.query<MessageRow[]>(
    `SELECT \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\` FROM ${queueTable(topic)} ORDER BY \`offset\``,
  );
  return rows.map(toMessage);
}

/** Offsets of the acked rows, for the chaos checker's snapshot (a full scan of the index: only after a run). */
export async function selectAckedQueueOffsets(db: SqlExecutor, topic: string): Promise<Set<number>> {
  const rows = await db.query<{ offset: number }[]>(`SELECT \`offset\` FROM ${queueTable(topic)} WHERE \`acked\` = 1`);
  return new Set(rows.map((r) => Number(r.offset)));
}

/**
 * Removes up to `limit` acked rows, oldest first, through the (acked, offset) index. Run at READ COMMITTED:
 * the DELETE then locks only the acked rows it removes, never a gap, so publishers (new rows, acked = 0) and
 * consumers (claiming acked = 0 rows) never wait for it; it may wait for a consumer whose ack has not
 * committed yet (a short batch transaction), never the other way round.
 */
export async function deleteAckedQueueRows(db: SqlExecutor, topic: string, limit: number): Promise<number> {
  const result = await db.query<{ affectedRows: number }>(
    `DELETE FROM ${queueTable(topic)} WHERE \`acked\` = 1 ORDER BY \`offset\` LIMIT ?`,
    [limit],
  );
  return result.affectedRows;
}
