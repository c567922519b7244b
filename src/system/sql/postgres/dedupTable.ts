// All SQL on `eob_publish_dedup_<topic>` on PostgreSQL: the server's optional publish de-duplication. A side
// table keyed by request id, written in the same transaction as the message INSERT, so the watermill tables keep
// watermill-sql's DDL.
import type { SqlExecutor } from '../../types.ts';
import { pgDedupTable, valuesPlaceholders } from './identifiers.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

/** Request ids become message uuids when de-duplication is on, so they share the uuid column's width. */
export const MAX_PG_DEDUP_REQUEST_ID_LENGTH = 36;

/**
 * request_id is opaque: COLLATE "C" compares it byte for byte (`Abc-1` and `abc-1` are two requests; no locale
 * folding, no trailing-space padding as in MySQL's PAD SPACE collations). counter_uuid binds the id to the
 * counter it first incremented: the same id for another counter is a client error, not a retry. created_at lets
 * a prune drop old ids: a retry older than that window publishes again.
 */
export async function createPgDedupTable(db: SqlExecutor, topic: string): Promise<void> {
  const table = pgDedupTable(topic);
  await createUnderSchemaLock(db, table, [
    `CREATE TABLE IF NOT EXISTS ${table} (
      "request_id" VARCHAR(${MAX_PG_DEDUP_REQUEST_ID_LENGTH}) COLLATE "C" NOT NULL PRIMARY KEY,
      "counter_uuid" VARCHAR(36) COLLATE "C" NOT NULL,
      "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    )`,
  ]);
}

export interface PgDedupClaim {
  requestId: string;
  counterUuid: string;
}

export interface PgClaimedId {
  /** This transaction inserted the row: publish the id's message. */
  mine: boolean;
  /** The counter the id is bound to (a different one than the claim's: answer 409). */
  counterUuid: string;
}

/**
 * Claims request ids (each with the counter of its first occurrence in the batch) for the transaction `tx`, and
 * says for each whether this transaction claimed it first and which counter it is bound to.
 *
 * Why this shape: `INSERT ... ON CONFLICT DO NOTHING RETURNING` returns exactly the rows this statement
 * inserted, so no token column is needed to tell them apart. Concurrency (the publisher runs at READ
 * COMMITTED): an id another uncommitted transaction inserted makes this INSERT wait for it; if it commits, the id
 * is a conflict (not returned, not published); if it rolls back, this one inserts it. The SELECT that follows is
 * a new statement, so it sees the other's committed row and its counter. Ids are sorted so two batches sharing
 * ids lock them in one order (deadlock 40P01 remains possible with a third party and is retried by the caller).
 */
export async function claimPgRequestIds(tx: SqlExecutor, topic: string, claims: readonly PgDedupClaim[]): Promise<Map<string, PgClaimedId>> {
  const first = new Map<string, string>();
  for (const c of claims) if (!first.has(c.requestId)) first.set(c.requestId, c.counterUuid);
  const ids = [...first.keys()].sort();
  const result = new Map<string, PgClaimedId>();
  if (ids.length === 0) return result;
  const table = pgDedupTable(topic);
  const inserted = await tx.query<{ request_id: string }[]>(
    `INSERT INTO ${table} ("request_id", "counter_uuid") VALUES ${valuesPlaceholders(ids.length, 2)}
     ON CONFLICT ("request_id") DO NOTHING RETURNING "request_id"`,
    ids.flatMap((id) => [id, first.get(id)]),
  );
  const mine = new Set(inserted.map((r) => r.request_id));
  const bound = await tx.query<{ request_id: string; counter_uuid: string }[]>(
    `SELECT "request_id", "counter_uuid" FROM ${table} WHERE "request_id" = ANY($1::varchar[])`,
    [ids],
  );
  for (const row of bound) result.set(row.request_id, { mine: mine.has(row.request_id), counterUuid: row.counter_uuid });
  return result;
}

export async function countPgDedupRows(db: SqlExecutor, topic: string): Promise<number> {
  const rows = await db.query<{ n: string }[]>(`SELECT COUNT(*) AS "n" FROM ${pgDedupTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/** Removes up to `limit` ids claimed more than `windowS` seconds ago (the database's clock, which wrote created_at). */
export async function deletePgDedupRowsOlderThan(db: SqlExecutor, topic: string, windowS: number, limit: number): Promise<number> {
  const table = pgDedupTable(topic);
  const rows = await db.query<{ request_id: string }[]>(
    `DELETE FROM ${table} WHERE "request_id" IN (
       SELECT "request_id" FROM ${table} WHERE "created_at" < CURRENT_TIMESTAMP - make_interval(secs => $1) LIMIT $2)
     RETURNING "request_id"`,
    [windowS, limit],
  );
  return rows.length;
}
