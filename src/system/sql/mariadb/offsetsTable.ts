// All SQL on `watermill_offsets_<topic>`: one row per consumer group, watermill-sql's default MySQL schema.
import type { SqlExecutor, Statement } from '../../types.ts';
import { offsetsTable } from './identifiers.ts';

export async function createOffsetsTable(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${offsetsTable(topic)} (
    \`consumer_group\` VARCHAR(255) NOT NULL,
    \`offset_acked\` BIGINT,
    \`offset_consumed\` BIGINT NOT NULL,
    PRIMARY KEY (\`consumer_group\`)
  ) ENGINE=InnoDB`);
}

/**
 * Creates the group's row up front. Without it, the first consumers' `SELECT ... FOR UPDATE` on a missing key
 * would take only a gap lock, two of them could both start from 0, and both insert: a double delivery.
 */
export async function ensureGroupRow(db: SqlExecutor, topic: string, group: string): Promise<void> {
  await db.query(
    `INSERT IGNORE INTO ${offsetsTable(topic)} (\`consumer_group\`, \`offset_acked\`, \`offset_consumed\`) VALUES (?, 0, 0)`,
    [group],
  );
}

/**
 * Locks the group's row until the transaction ends: one batch of a group at a time, so two consumers of the
 * same group can never read the same messages. The locking read also sees the latest committed ack, whatever
 * the isolation level's snapshot says.
 */
export function lockAckedOffsetStatement(topic: string, group: string): Statement {
  return { sql: `SELECT \`offset_acked\` FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = ? FOR UPDATE`, values: [group] };
}

/** Reads the result of lockAckedOffsetStatement. */
export function ackedOffsetOf(rows: unknown, topic: string, group: string): number {
  const row = (rows as { offset_acked: number | null }[])[0];
  if (row === undefined) throw new Error(`consumer group "${group}" has no row in ${offsetsTable(topic)}`);
  return Number(row.offset_acked ?? 0);
}

export async function lockAckedOffset(db: SqlExecutor, topic: string, group: string): Promise<number> {
  const { sql, values } = lockAckedOffsetStatement(topic, group);
  return ackedOffsetOf(await db.query(sql, values), topic, group);
}

/** Watermill writes both columns with the same value for the SQL subscriber; so do we, for compatibility. */
export function writeAckedOffsetStatement(topic: string, group: string, offset: number): Statement {
  return {
    sql: `UPDATE ${offsetsTable(topic)} SET \`offset_acked\` = ?, \`offset_consumed\` = ? WHERE \`consumer_group\` = ?`,
    values: [offset, offset, group],
  };
}

export async function writeAckedOffset(db: SqlExecutor, topic: string, group: string, offset: number): Promise<void> {
  const { sql, values } = writeAckedOffsetStatement(topic, group, offset);
  await db.query(sql, values);
}

export async function selectAckedOffset(db: SqlExecutor, topic: string, group: string): Promise<number> {
  const rows = await db.query<{ offset_acked: number | null }[]>(
    `SELECT \`offset_acked\` FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = ?`,
    [group],
  );
  return Number(rows[0]?.offset_acked ?? 0);
}

/**
 * The lowest acked offset over every consumer group of the topic, and how many groups there are: messages at
 * or below it have been consumed by everyone (0 groups: undefined, nothing is known to be consumed).
 */
export async function selectLowestAckedOffset(db: SqlExecutor, topic: string): Promise<{ lowest: number | undefined; groups: number }> {
  const rows = await db.query<{ lowest: number | null; groups: number }[]>(
    `SELECT MIN(COALESCE(\`offset_acked\`, 0)) AS lowest, COUNT(*) AS \`groups\` FROM ${offsetsTable(topic)}`,
  );
  const groups = Number(rows[0]?.groups ?? 0);
  return { lowest: groups === 0 ? undefined : Number(rows[0]?.lowest ?? 0), groups };
}
