// All SQL on `eob_poison_<topic>` on PostgreSQL: messages the handler kept rejecting, moved out of the way in
// the transaction that acks them, with the error and the number of failed deliveries. One table per topic
// serves both modes; `mode` and `consumer_group` say which reader gave up (queue mode: '' for the group).
import type { PoisonFilter, PoisonRow, SqlExecutor } from '../../types.ts';
import { poisonRowOf, type RawPoisonRow } from '../rows.ts';
import { pgMessagesTable, pgQueueTable, type PgStatement } from './identifiers.ts';
import { assertTopicName } from '../topicName.ts';
import { createUnderSchemaLock } from './schemaLock.ts';

export type PgPoisonMode = 'offset' | 'queue';

export function pgPoisonTable(topic: string): string {
  assertTopicName(topic);
  return `"eob_poison_${topic}"`;
}

/**
 * payload and metadata are TEXT, not JSON: kept as the topic stored them, to be looked at later. The key is
 * the message's place for that reader; offsets are unique in a topic (one sequence), so the offset alone names
 * the message in either mode.
 */
export async function createPgPoisonTable(db: SqlExecutor, topic: string): Promise<void> {
  const table = pgPoisonTable(topic);
  await createUnderSchemaLock(db, table, [
    `CREATE TABLE IF NOT EXISTS ${table} (
      "mode" VARCHAR(8) NOT NULL,
      "consumer_group" VARCHAR(255) NOT NULL,
      "offset" BIGINT NOT NULL,
      "uuid" VARCHAR(36) NOT NULL,
      "created_at" TIMESTAMP NULL DEFAULT NULL,
      "payload" TEXT DEFAULT NULL,
      "metadata" TEXT DEFAULT NULL,
      "error" TEXT NOT NULL,
      "failed_deliveries" INT NOT NULL,
      "times_poisoned" INT NOT NULL DEFAULT 1,
      "poisoned_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY ("mode", "consumer_group", "offset")
    )`,
    `CREATE INDEX IF NOT EXISTS ${table.replace(/"$/, '_poisoned_at"')} ON ${table} ("poisoned_at")`,
  ]);
}

export interface PgPoisonOrigin {
  topic: string;
  mode: PgPoisonMode;
  /** Offset mode: the consumer group; queue mode: ''. */
  consumerGroup: string;
}

export interface PgPoisonEntry {
  offset: number;
  /** Offset mode: the message's transaction id, so the copy finds the row through the primary key. */
  transactionId?: string;
  error: string;
  failedDeliveries: number;
}

/** Errors can be long; the table keeps the first 4,000 characters (as on MariaDB). */
const MAX_ERROR_CHARS = 4_000;

/**
 * Copies one message into the poison table, in the transaction that acks it (acked and kept here, or neither).
 * INSERT ... SELECT copies the stored text of payload and metadata (no trip through the driver's JSON parsing).
 * ON CONFLICT: a group moved back re-reads old messages and may poison one again; a plain INSERT would fail on
 * the key and stop the group for good, so the row counts it instead. Returns whether a row was written (false:
 * the message is not in the topic any more).
 */
export function poisonPgMessageStatement(origin: PgPoisonOrigin, entry: PgPoisonEntry): PgStatement {
  const byKey = origin.mode === 'offset' && entry.transactionId !== undefined;
  const source = origin.mode === 'offset' ? pgMessagesTable(origin.topic) : pgQueueTable(origin.topic);
  return {
    sql: `INSERT INTO ${pgPoisonTable(origin.topic)}
       ("mode", "consumer_group", "offset", "uuid", "created_at", "payload", "metadata", "error", "failed_deliveries")
     SELECT $1, $2, m."offset", m."uuid", m."created_at", m."payload"::text, m."metadata"::text, $3, $4
       FROM ${source} m WHERE m."offset" = $5 ${byKey ? 'AND m."transaction_id" = $6::xid8' : ''}
     ON CONFLICT ("mode", "consumer_group", "offset") DO UPDATE SET "times_poisoned" = ${pgPoisonTable(origin.topic)}."times_poisoned" + 1,
       "error" = EXCLUDED."error", "failed_deliveries" = EXCLUDED."failed_deliveries", "poisoned_at" = CURRENT_TIMESTAMP
     RETURNING "offset"`,
    values: [origin.mode, origin.consumerGroup, entry.error.slice(0, MAX_ERROR_CHARS), entry.failedDeliveries, entry.offset, ...(byKey ? [entry.transactionId] : [])],
  };
}

export async function poisonPgMessage(tx: SqlExecutor, origin: PgPoisonOrigin, entry: PgPoisonEntry): Promise<boolean> {
  const { sql, values } = poisonPgMessageStatement(origin, entry);
  const rows = await tx.query<{ offset: string }[]>(sql, values);
  return rows.length > 0;
}

/** How many messages were poisoned (0 when no worker has created the table yet). */
export async function countPgPoisoned(db: SqlExecutor, topic: string): Promise<number> {
  const exists = await db.query<{ t: string | null }[]>('SELECT to_regclass($1) AS "t"', [pgPoisonTable(topic)]);
  if (exists[0]?.t === null || exists[0]?.t === undefined) return 0;
  const rows = await db.query<{ n: string }[]>(`SELECT COUNT(*) AS "n" FROM ${pgPoisonTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/** Poisoned messages, newest first (the poisoned_at index serves the order); undefined without the table. */
export async function selectPgPoisoned(db: SqlExecutor, topic: string, filter: PoisonFilter): Promise<PoisonRow[] | undefined> {
  const exists = await db.query<{ t: string | null }[]>('SELECT to_regclass($1) AS "t"', [pgPoisonTable(topic)]);
  if (exists[0]?.t === null || exists[0]?.t === undefined) return undefined;
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.mode !== undefined) {
    values.push(filter.mode);
    where.push(`"mode" = $${values.length}`);
  }
  if (filter.consumerGroup !== undefined) {
    values.push(filter.consumerGroup);
    where.push(`"consumer_group" = $${values.length}`);
  }
  values.push(filter.limit);
  const rows = await db.query<RawPoisonRow[]>(
    `SELECT "mode", "consumer_group", "offset", "uuid", "created_at", "payload", "metadata", "error", "failed_deliveries", "times_poisoned", "poisoned_at"
     FROM ${pgPoisonTable(topic)} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
     ORDER BY "poisoned_at" DESC, "offset" DESC LIMIT $${values.length}`,
    values,
  );
  return rows.map(poisonRowOf);
}
