// All SQL on `eob_poison_<topic>`: messages the handler kept rejecting, moved out of the way in the
// transaction that acks them, with the error and the number of failed deliveries. One table per topic serves
// both modes; `mode` and `consumer_group` say which reader gave up on the message (offset mode: the group;
// queue mode: '' since a queue row is acked for every worker). The name is not `watermill_...` because
// Watermill has no such table: its PoisonQueue middleware publishes to a poison topic instead.
import type { PoisonEntry, PoisonFilter, PoisonOrigin, PoisonRow, SqlExecutor, Statement } from '../../types.ts';
import { poisonRowOf, type RawPoisonRow } from '../rows.ts';
import { messagesTable, poisonTable, queueTable } from './identifiers.ts';

export async function createPoisonTable(db: SqlExecutor, topic: string): Promise<void> {
  // payload and metadata are LONGTEXT, not JSON: a message is often poison because its payload is not valid
  // JSON (a table created without the JSON check), and it must be kept byte for byte to be looked at later.
  // The key is the message's place (mode, group, offset): one row per message and reader, whatever happens.
  await db.query(`CREATE TABLE IF NOT EXISTS ${poisonTable(topic)} (
    \`mode\` VARCHAR(8) NOT NULL,
    \`consumer_group\` VARCHAR(255) NOT NULL,
    \`offset\` BIGINT NOT NULL,
    \`uuid\` VARCHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NULL DEFAULT NULL,
    \`payload\` LONGTEXT DEFAULT NULL,
    \`metadata\` LONGTEXT DEFAULT NULL,
    \`error\` TEXT NOT NULL,
    \`failed_deliveries\` INT NOT NULL,
    \`times_poisoned\` INT NOT NULL DEFAULT 1,
    \`poisoned_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (\`mode\`, \`consumer_group\`, \`offset\`),
    KEY \`poisoned_at\` (\`poisoned_at\`)
  ) ENGINE=InnoDB`);
}

/** Errors can be long (a stack, a dump of the payload); the table keeps the first 4,000 characters. */
const MAX_ERROR_CHARS = 4_000;

/**
 * Copies one message from its topic table into the poison table; sent in the transaction that acks it, so the
 * message is either acked and kept here, or neither. INSERT ... SELECT copies uuid, created_at, payload and
 * metadata as stored (no round trip through the driver's JSON parsing, which would rewrite an invalid payload;
 * MySQL 8's binary JSON type arrives as its canonical text, MariaDB's JSON, a LONGTEXT, byte for byte).
 * The row is already locked by this transaction's read (FOR UPDATE in queue mode, the group's row lock and a
 * shared read in offset mode), so the SELECT sees what the handler saw.
 * ON DUPLICATE KEY: a group whose offset was moved back re-reads old messages and may poison one again; a plain
 * INSERT would then fail on the key and block the group forever, so the row counts it instead (times_poisoned).
 */
export function poisonMessageStatement(origin: PoisonOrigin, entry: PoisonEntry): Statement {
  const source = origin.mode === 'offset' ? messagesTable(origin.topic) : queueTable(origin.topic);
  return {
    sql: `INSERT INTO ${poisonTable(origin.topic)}
       (\`mode\`, \`consumer_group\`, \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\`, \`error\`, \`failed_deliveries\`)
     SELECT ?, ?, m.\`offset\`, m.\`uuid\`, m.\`created_at\`, m.\`payload\`, m.\`metadata\`, ?, ?
       FROM ${source} m WHERE m.\`offset\` = ?
     ON DUPLICATE KEY UPDATE \`times_poisoned\` = \`times_poisoned\` + 1, \`error\` = VALUES(\`error\`),
       \`failed_deliveries\` = VALUES(\`failed_deliveries\`), \`poisoned_at\` = CURRENT_TIMESTAMP(6)`,
    values: [origin.mode, origin.consumerGroup, entry.error.slice(0, MAX_ERROR_CHARS), entry.failedDeliveries, entry.offset],
  };
}

/** False when no worker has created the table yet (nothing was ever poisoned on this topic). */
export async function poisonTableExists(db: SqlExecutor, topic: string): Promise<boolean> {
  const rows = await db.query<unknown[]>('SHOW TABLES LIKE ?', [poisonTable(topic).replace(/`/g, '')]);
  return rows.length > 0;
}

/** Poisoned messages, newest first (the index on poisoned_at serves the order). */
export async function selectPoisoned(db: SqlExecutor, topic: string, filter: PoisonFilter): Promise<PoisonRow[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.mode !== undefined) {
    where.push('`mode` = ?');
    values.push(filter.mode);
  }
  if (filter.consumerGroup !== undefined) {
    where.push('`consumer_group` = ?');
    values.push(filter.consumerGroup);
  }
  const rows = await db.query<RawPoisonRow[]>(
    `SELECT \`mode\`, \`consumer_group\`, \`offset\`, \`uuid\`, \`created_at\`, \`payload\`, \`metadata\`, \`error\`,
       \`failed_deliveries\`, \`times_poisoned\`, \`poisoned_at\`
     FROM ${poisonTable(topic)} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
     ORDER BY \`poisoned_at\` DESC, \`offset\` DESC LIMIT ?`,
    [...values, filter.limit],
  );
  return rows.map(poisonRowOf);
}

/** How many messages were poisoned (0 when the table does not exist): the bench and chaos `poisoned` column. */
export async function countPoisoned(db: SqlExecutor, topic: string): Promise<number> {
  if (!(await poisonTableExists(db, topic))) return 0;
  const rows = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${poisonTable(topic)}`);
  return Number(rows[0]?.n ?? 0);
}

/** Empties the table between bench points, which restart the topic's offsets at 1. */
export async function truncatePoisonTable(db: SqlExecutor, topic: string): Promise<void> {
  await createPoisonTable(db, topic);
  await db.query(`TRUNCATE TABLE ${poisonTable(topic)}`);
}
