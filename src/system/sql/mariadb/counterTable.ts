// All SQL on `counter`, the effect table of the counter service.
import type { SqlExecutor, Statement } from '../../types.ts';
import { integerLiteral, stringLiteral } from './literal.ts';

export async function createCounterTable(db: SqlExecutor): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS \`counter\` (
    \`id\` VARCHAR(36) NOT NULL PRIMARY KEY,
    \`value\` BIGINT NOT NULL
  ) ENGINE=InnoDB`);
}

/**
 * Adds `increments` (counter id -> amount) with one multi-row upsert. The increment happens inside the
 * statement (`value = value + VALUES(value)`), never as read-then-write: a SELECT followed by an UPDATE loses
 * updates under REPEATABLE READ on MySQL and MariaDB, because the SELECT reads the transaction's snapshot.
 * Ids are sorted so that concurrent batches lock rows in the same order and do not deadlock on each other.
 */
export function addToCountersStatement(increments: ReadonlyMap<string, number>): Statement {
  if (increments.size === 0) throw new Error('addToCountersStatement: no increments');
  const ids = [...increments.keys()].sort();
  // Values in the text (see literal.ts): ids are validated uuids, amounts integers.
  let rows = '';
  for (let i = 0; i < ids.length; i += 1) {
    const id = ids[i] as string;
    rows += `${i === 0 ? '' : ', '}(${stringLiteral(id)}, ${integerLiteral(increments.get(id) as number)})`;
  }
  return {
    sql: `INSERT INTO \`counter\` (\`id\`, \`value\`) VALUES ${rows}
     ON DUPLICATE KEY UPDATE \`value\` = \`value\` + VALUES(\`value\`)`,
    values: [],
  };
}

export async function addToCounters(db: SqlExecutor, increments: ReadonlyMap<string, number>): Promise<void> {
  if (increments.size === 0) return;
  const { sql, values } = addToCountersStatement(increments);
  await db.query(sql, values);
}

/** The watermill handler's shape (watermill-sql's reference consumer): read the value, then write value + 1, one message at a time. */
export async function selectCounterValue(db: SqlExecutor, id: string): Promise<number | undefined> {
  const rows = await db.query<{ value: number }[]>('SELECT `value` FROM `counter` WHERE `id` = ?', [id]);
  return rows[0] === undefined ? undefined : Number(rows[0].value);
}

/**
 * The watermill example's write: `INSERT ... ON DUPLICATE KEY UPDATE value = ?` with the value it read plus
 * one. Under SERIALIZABLE the preceding SELECT took a shared lock, so this is safe there and lossy below it.
 */
export async function setCounterValue(db: SqlExecutor, id: string, value: number): Promise<void> {
  await db.query('INSERT INTO `counter` (`id`, `value`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)', [
    id,
    value,
  ]);
}

export async function selectAllCounters(db: SqlExecutor): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; value: number }[]>('SELECT `id`, `value` FROM `counter`');
  return new Map(rows.map((r) => [r.id, Number(r.value)]));
}

export async function sumCounters(db: SqlExecutor): Promise<number> {
  const rows = await db.query<{ total: number | null }[]>('SELECT SUM(`value`) AS total FROM `counter`');
  return Number(rows[0]?.total ?? 0);
}
