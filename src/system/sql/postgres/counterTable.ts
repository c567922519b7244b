// All SQL on `counter` on PostgreSQL, the effect table of the counter service.
import type { SqlExecutor } from '../../types.ts';
import { valuesPlaceholders, type PgStatement } from './identifiers.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

/** COLLATE "C": ids compare byte for byte (uuids are ASCII; no locale rules in the key). */
export async function createPgCounterTable(db: SqlExecutor): Promise<void> {
  await createUnderSchemaLock(db, '"counter"', [
    `CREATE TABLE IF NOT EXISTS "counter" (
      "id" VARCHAR(36) COLLATE "C" NOT NULL PRIMARY KEY,
      "value" BIGINT NOT NULL
    )`,
  ]);
}

/**
 * Adds `increments` (counter id -> amount) with one multi-row upsert. The addition happens inside the statement
 * (`value = counter.value + EXCLUDED.value`), on the row's latest committed version, never as read-then-write
 * in the client (which loses updates when two batches touch one counter). Ids are sorted so concurrent batches
 * lock rows in one order and do not deadlock; an id may appear once per statement (ON CONFLICT cannot touch a
 * row twice), which the aggregation guarantees. At REPEATABLE READ (the offset consumer's level) a counter row
 * that another transaction updated and committed after this one's snapshot makes the statement fail with
 * serialization_failure (40001) rather than add to a version it cannot see: the batch rolls back and is retried,
 * so consumers of several groups (or a second writer) sharing counters pay retries, never a wrong count. At READ
 * COMMITTED (queue mode) it waits for the other and adds to its committed value.
 */
export function addToPgCountersStatement(increments: ReadonlyMap<string, number>): PgStatement {
  if (increments.size === 0) throw new Error('addToPgCountersStatement: no increments');
  const ids = [...increments.keys()].sort();
  const values: unknown[] = [];
  for (const id of ids) values.push(id, increments.get(id));
  return {
    sql: `INSERT INTO "counter" ("id", "value") VALUES ${valuesPlaceholders(ids.length, 2, ['', '::bigint'])}
     ON CONFLICT ("id") DO UPDATE SET "value" = "counter"."value" + EXCLUDED."value"`,
    values,
  };
}

export async function addToPgCounters(db: SqlExecutor, increments: ReadonlyMap<string, number>): Promise<void> {
  if (increments.size === 0) return;
  const { sql, values } = addToPgCountersStatement(increments);
  await db.query(sql, values);
}

/** The watermill profile's read (then setPgCounterValue): safe only at SERIALIZABLE, kept as the baseline's shape. */
export async function selectPgCounterValue(db: SqlExecutor, id: string): Promise<number | undefined> {
  const rows = await db.query<{ value: string }[]>('SELECT "value" FROM "counter" WHERE "id" = $1', [id]);
  return rows[0] === undefined ? undefined : Number(rows[0].value);
}

/** The watermill example's write: the value it read plus one, as an absolute value. */
export async function setPgCounterValue(db: SqlExecutor, id: string, value: number): Promise<void> {
  await db.query(
    'INSERT INTO "counter" ("id", "value") VALUES ($1, $2::bigint) ON CONFLICT ("id") DO UPDATE SET "value" = EXCLUDED."value"',
    [id, value],
  );
}

export async function selectAllPgCounters(db: SqlExecutor): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; value: string }[]>('SELECT "id", "value" FROM "counter"');
  return new Map(rows.map((r) => [r.id, Number(r.value)]));
}

export async function sumPgCounters(db: SqlExecutor): Promise<number> {
  const rows = await db.query<{ total: string | null }[]>('SELECT SUM("value") AS "total" FROM "counter"');
  return Number(rows[0]?.total ?? 0);
}
