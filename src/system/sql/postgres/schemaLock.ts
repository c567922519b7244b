// Creating PostgreSQL objects when several processes start at once (server, workers, the bench's setup), and the
// advisory lock key that serializes them.
//
// CREATE TABLE IF NOT EXISTS is not safe there against a concurrent creator of the same name: its existence
// check sees only committed catalog rows, so two sessions both pass it; the later one's catalog insert then
// waits on the catalog's unique index until the first commits, and fails with 23505 (pg_type_typname_nsp_index,
// or pg_class_relname_nsp_index) or 42P07. With 8 sessions released against one creator's open transaction, all
// 8 failed so; a synchronous standby, which slows every commit, widens the window enough to hit it by chance.
import type { SqlExecutor } from '../../types.ts';
import { createHash } from 'node:crypto';

/**
 * The first half of every key this project takes (ASCII "eob"), so its locks stay apart from the one-key
 * (bigint) advisory locks of other programs, which PostgreSQL keeps in a space of their own.
 */
const LOCK_CLASS = 0x656f62;

/** The two-int advisory lock key of `name` (a table's or a database's): deterministic in every process. */
export function pgSchemaLockKey(name: string): readonly [number, number] {
  return [LOCK_CLASS, createHash('sha256').update(name).digest().readInt32BE(0)];
}

/** 23505 on a system catalog's unique index, 42P07 duplicate_table, 42710 duplicate_object. */
function isDuplicateObject(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; constraint?: unknown };
  if (e.code === '42P07' || e.code === '42710') return true;
  return e.code === '23505' && typeof e.constraint === 'string' && e.constraint.startsWith('pg_');
}

/**
 * Runs `statements` (each `... IF NOT EXISTS`, creating `table` and its indexes) in one transaction that first
 * takes a transaction-scoped advisory lock keyed on the table's name. Every eob process creating that table
 * waits there for the one inside, then finds the table committed and skips it: none of them meets the catalog
 * race. A DO block, because it is one statement and so one transaction on any executor (a pool hands each query
 * to any free connection, where a BEGIN would not hold); inside a caller's own transaction the lock is held
 * until that transaction ends.
 *
 * A creator that is not eob (psql, a migration tool, an older version) takes no such lock: the one eob session
 * that raced it fails with 23505 or 42P07 once it commits, so that error means the object now exists, and the
 * statements run once more to make sure (then they skip it).
 */
export async function createUnderSchemaLock(db: SqlExecutor, table: string, statements: readonly string[]): Promise<void> {
  const [classId, objectId] = pgSchemaLockKey(table);
  const body = statements.map((s) => `${s};`).join('\n');
  if (body.includes('$eob$')) throw new Error(`createUnderSchemaLock: a statement for ${table} contains the quote $eob$`);
  const sql = `DO $eob$ BEGIN\nPERFORM pg_advisory_xact_lock(${classId}, ${objectId});\n${body}\nEND $eob$`;
  try {
    await db.query(sql);
  } catch (error) {
    if (!isDuplicateObject(error)) throw error;
    try {
      await db.query(sql);
    } catch (again) {
      // In a caller's transaction the first failure aborted it (25P02 now): the first error says what happened.
      throw (again as { code?: unknown }).code === '25P02' ? error : again;
    }
  }
}
