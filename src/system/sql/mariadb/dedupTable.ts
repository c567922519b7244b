// All SQL on `eob_publish_dedup_<topic>`, the server's optional publish de-duplication (--dedup). A side
// table keyed by request id, written in the same transaction as the message INSERT, so the watermill tables
// keep watermill-sql's exact DDL and stay readable by a real Watermill deployment.
import type { ClaimedId, DedupClaim } from '../../types.ts';
import type { SqlExecutor } from '../../types.ts';
import { dedupTable } from './identifiers.ts';

/** Request ids become message uuids when de-duplication is on, so they share the uuid column's width. */
export const MAX_DEDUP_REQUEST_ID_LENGTH = 36;

/**
 * `request_id` is VARBINARY: request ids are opaque, so `Abc-1` and `abc-1` are two requests. A VARCHAR key
 * compares under its collation (case- and accent-insensitive by default, and PAD SPACE even under `_bin`), so
 * a distinct request was answered "duplicate" and never published.
 * `counter_uuid` binds the id to the counter it first incremented: the same id for another counter is a
 * client error, not a retry. NULL only in rows claimed before this column existed (see migrateDedupTable).
 * `token` names the transaction that claimed the request id (see claimRequestIds); `created_at` lets an
 * operator prune old ids (`DELETE ... WHERE created_at < ...`): a retry older than that is no longer covered.
 */
export async function createPublishDedupTable(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${dedupTable(topic)} (
    \`request_id\` VARBINARY(${MAX_DEDUP_REQUEST_ID_LENGTH}) NOT NULL PRIMARY KEY,
    \`counter_uuid\` CHAR(36) CHARACTER SET ascii NULL,
    \`token\` CHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
  ) ENGINE=InnoDB`);
  await migrateDedupTable(db, topic);
}

/**
 * Brings a table created by an earlier version (request_id VARCHAR under a case-insensitive collation, no
 * counter_uuid) to the current shape. Converting the key to VARBINARY cannot create duplicate keys (ids
 * unique case-insensitively are unique byte for byte); ids that already collided stay merged, nothing can
 * split them. Old rows get counter_uuid NULL, which claimRequestIds treats as "any counter" (the old
 * behaviour), so a late retry of an old request is still a duplicate, never published twice. The ALTER
 * copies the table and blocks publishers while it runs: on a large table, run it in a quiet moment (or prune
 * old ids first).
 */
async function migrateDedupTable(db: SqlExecutor, topic: string): Promise<void> {
  const name = dedupTable(topic).replace(/`/g, '');
  const columns = await db.query<{ name: string; type: string }[]>(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
    [name],
  );
  const byName = new Map(columns.map((c) => [String(c.name).toLowerCase(), String(c.type).toLowerCase()]));
  const changes: string[] = [];
  if (byName.get('request_id') !== 'varbinary') {
    changes.push(`MODIFY \`request_id\` VARBINARY(${MAX_DEDUP_REQUEST_ID_LENGTH}) NOT NULL`);
  }
  if (!byName.has('counter_uuid')) changes.push('ADD COLUMN `counter_uuid` CHAR(36) CHARACTER SET ascii NULL AFTER `request_id`');
  if (changes.length > 0) await db.query(`ALTER TABLE ${dedupTable(topic)} ${changes.join(', ')}`);
}

/** VARBINARY comes back as a Buffer; ids are visible ASCII, so latin1 maps each byte to itself. */
function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

/**
 * Claims request ids for the transaction `tx` (each with the counter of its first occurrence) and returns,
 * for each id, whether this transaction claimed it first and which counter it is bound to.
 *
 * Why this shape: one statement must both insert the new ids and leave existing ones alone, for a whole
 * coalesced batch, and then tell which rows were new. `INSERT ... ON DUPLICATE KEY UPDATE token = token`
 * writes this transaction's `token` only into rows it creates; the SELECT then reads every claimed row by
 * primary key and compares tokens. `INSERT IGNORE` with affectedRows would give a count, not which ids, and
 * would also swallow unrelated errors as warnings.
 *
 * Concurrency: a second transaction claiming an id that an uncommitted one inserted waits on that row's lock
 * (InnoDB's duplicate-key check); if the first commits, the second sees a duplicate and keeps the first's
 * token, so it does not publish; if the first rolls back, the second inserts the row and publishes. Within
 * one batch a repeated id is inserted once and hits its own row the second time, so it is published once.
 * Ids are sorted so that two batches sharing ids lock them in the same order (fewer deadlocks; the caller
 * still retries 1213). The SELECT reads rows this transaction just locked (the upsert locks a duplicate row
 * too), so at READ COMMITTED it sees their latest committed version, or this transaction's own.
 */
export async function claimRequestIds(
  tx: SqlExecutor,
  topic: string,
  claims: readonly DedupClaim[],
  token: string,
): Promise<Map<string, ClaimedId>> {
  const first = new Map<string, string>();
  for (const c of claims) if (!first.has(c.requestId)) first.set(c.requestId, c.counterUuid);
  const unique = [...first.keys()].sort();
  if (unique.length === 0) return new Map();
  const table = dedupTable(topic);
  const insertValues: unknown[] = [];
  for (const id of unique) insertValues.push(Buffer.from(id, 'latin1'), first.get(id), token);
  await tx.query(
    `INSERT INTO ${table} (\`request_id\`, \`counter_uuid\`, \`token\`) VALUES ${unique.map(() => '(?, ?, ?)').join(', ')}
     ON DUPLICATE KEY UPDATE \`token\` = \`token\``,
    insertValues,
  );
  const rows = await tx.query<{ request_id: unknown; counter_uuid: string | null; token: string }[]>(
    `SELECT \`request_id\`, \`counter_uuid\`, \`token\` FROM ${table} WHERE \`request_id\` IN (${unique.map(() => '?').join(', ')})`,
    unique.map((id) => Buffer.from(id, 'latin1')),
  );
  const result = new Map<string, ClaimedId>();
  for (const r of rows) {
    result.set(text(r.request_id), { mine: r.token === token, counterUuid: r.counter_uuid ?? undefined });
  }
  return result;
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
