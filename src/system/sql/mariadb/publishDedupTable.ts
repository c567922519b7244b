// All SQL on `eob_publish_dedup_<topic>`, the server's optional publish de-duplication (DESIGN 4.4). A side
// table keyed by request id, written in the same transaction as the message INSERT, so the watermill tables
// keep watermill-sql's exact DDL and stay readable by a real Watermill deployment.
import type { SqlExecutor } from '../../pubsub/types.ts';
import { dedupTable } from './identifiers.ts';

/** Request ids become message uuids when de-duplication is on, so they share the uuid column's width. */
export const MAX_DEDUP_REQUEST_ID_LENGTH = 36;

/**
 * `token` names the transaction that claimed the request id (see claimRequestIds); `created_at` lets an
 * operator prune old ids (`DELETE ... WHERE created_at < ...`): a retry older than that is no longer covered.
 */
export async function createPublishDedupTable(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${dedupTable(topic)} (
    \`request_id\` VARCHAR(${MAX_DEDUP_REQUEST_ID_LENGTH}) NOT NULL PRIMARY KEY,
    \`token\` CHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
  ) ENGINE=InnoDB`);
}

/**
 * Claims `requestIds` for the transaction `tx` and returns the ones it claimed first (the ones to publish).
 *
 * Why this shape: one statement must both insert the new ids and leave existing ones alone, for a whole
 * coalesced batch, and then tell which rows were new. `INSERT ... ON DUPLICATE KEY UPDATE token = token`
 * writes this transaction's `token` only into rows it creates; the SELECT then finds exactly those rows by
 * (request_id, token) through the primary key. `INSERT IGNORE` with affectedRows would give a count, not which
 * ids, and would also swallow unrelated errors as warnings.
 *
 * Concurrency: a second transaction claiming an id that an uncommitted one inserted waits on that row's lock
 * (InnoDB's duplicate-key check); if the first commits, the second sees a duplicate and keeps the first's
 * token, so it does not publish; if the first rolls back, the second inserts the row and publishes. Within
 * one batch a repeated id is inserted once and hits its own row the second time, so it is published once.
 * Ids are sorted so that two batches sharing ids lock them in the same order (fewer deadlocks; the caller
 * still retries 1213). The SELECT reads rows this transaction just locked and wrote, so it sees their
 * current version at any isolation level.
 */
export async function claimRequestIds(tx: SqlExecutor, topic: string, requestIds: readonly string[], token: string): Promise<Set<string>> {
  const unique = [...new Set(requestIds)].sort();
  if (unique.length === 0) return new Set();
  const table = dedupTable(topic);
  const insertValues: unknown[] = [];
  for (const id of unique) insertValues.push(id, token);
  await tx.query(
    `INSERT INTO ${table} (\`request_id\`, \`token\`) VALUES ${unique.map(() => '(?, ?)').join(', ')}
     ON DUPLICATE KEY UPDATE \`token\` = \`token\``,
    insertValues,
  );
  const rows = await tx.query<{ request_id: string }[]>(
    `SELECT \`request_id\` FROM ${table} WHERE \`request_id\` IN (${unique.map(() => '?').join(', ')}) AND \`token\` = ?`,
    [...unique, token],
  );
  return new Set(rows.map((r) => r.request_id));
}

export async function countDedupRows(db: SqlExecutor, topic: string): Promise<number> {
  const rows = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${dedupTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Removes up to `limit` request ids claimed more than `windowS` seconds ago (the database's clock, the one that
 * wrote `created_at`): a retry older than the window publishes again. There is no index on `created_at`, so
 * each statement scans the primary key until it has found `limit` old rows; at READ COMMITTED it keeps locks
 * only on the rows it removes.
 */
export async function deleteDedupRowsOlderThan(db: SqlExecutor, topic: string, windowS: number, limit: number): Promise<number> {
  const result = await db.query<{ affectedRows: number }>(
    `DELETE FROM ${dedupTable(topic)} WHERE \`created_at\` < NOW(6) - INTERVAL ? SECOND LIMIT ?`,
    [windowS, limit],
  );
  return result.affectedRows;
}
