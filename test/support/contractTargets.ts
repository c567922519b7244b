// Contract targets: the in-memory pub/sub and the SQL pub/sub on MariaDB and PostgreSQL in offset and queue mode.
import { createPool, executorOf, type Pool } from '../../src/system/db/mariadb/pool.ts';
import { openDatabase } from '../../src/system/db/openDatabase.ts';
import type { Database } from '../../src/system/db/database.ts';
import { MemoryPubSub, isMemoryTx } from '../../src/system/pubsub/memoryPubSub.ts';
import { SqlPubSub, type SqlPubSubConfig } from '../../src/system/pubsub/sqlPubSub.ts';
import type { ConsumeTx, Message } from '../../src/system/pubsub/types.ts';
import type { ContractTarget } from '../contract/pubsubContract.ts';

export function memoryTarget(): ContractTarget {
  const effects = new Map<string, Map<string, number>>();
  return {
    name: 'memory',
    features: { multipleGroups: true, orderedAcrossBatches: true },
    pubsub: new MemoryPubSub(),
    async recordEffects(tx: ConsumeTx, group: string, messages: readonly Message[]) {
      if (!isMemoryTx(tx)) throw new Error('memory target got a SQL transaction');
      for (const m of messages) {
        tx.stage(() => {
          const g = effects.get(group) ?? new Map<string, number>();
          g.set(m.uuid, (g.get(m.uuid) ?? 0) + 1);
          effects.set(group, g);
        });
      }
    },
    async readEffects(group: string) {
      return new Map(effects.get(group) ?? []);
    },
  };
}

/** An effects table with no unique key, so a double delivery shows up as a count of 2 instead of an error. */
export async function createEffectsTable(pool: Pool): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS contract_effects (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    consumer_group VARCHAR(64) NOT NULL,
    uuid VARCHAR(36) NOT NULL,
    KEY (consumer_group, uuid)
  ) ENGINE=InnoDB`);
}

export async function recordSqlEffects(tx: ConsumeTx, group: string, messages: readonly Message[]): Promise<void> {
  if (messages.length === 0) return;
  const values: string[] = [];
  for (const m of messages) values.push(group, m.uuid);
  await tx.query(`INSERT INTO contract_effects (consumer_group, uuid) VALUES ${messages.map(() => '(?, ?)').join(', ')}`, values);
}

export async function readSqlEffects(pool: Pool, group: string): Promise<Map<string, number>> {
  const rows = await executorOf(pool).query<{ uuid: string; n: number }[]>(
    'SELECT uuid, COUNT(*) AS n FROM contract_effects WHERE consumer_group = ? GROUP BY uuid',
    [group],
  );
  return new Map(rows.map((r) => [r.uuid, Number(r.n)]));
}

export function mysqlTarget(pool: Pool, config: SqlPubSubConfig): ContractTarget {
  return {
    name: `mysql ${config.mode}`,
    features: {
      multipleGroups: config.mode === 'offset',
      orderedAcrossBatches: config.mode === 'offset' || (config.subscriber?.concurrency ?? 1) === 1,
    },
    pubsub: new SqlPubSub(pool, config),
    recordEffects: recordSqlEffects,
    readEffects: (group) => readSqlEffects(pool, group),
  };
}

/** multipleStatements as the worker's pool has it (consume transactions in 3 round trips), unless told not to. */
export function testPool(url: string, connectionLimit = 24, multipleStatements = true): Pool {
  return createPool({ url, connectionLimit, connectTimeoutMs: 5_000, role: 'test', multipleStatements });
}

/** PostgreSQL's effects table: the same shape, no unique key (a double delivery counts 2). */
export async function createPgEffectsTable(db: Database): Promise<void> {
  await db.executor().query(`CREATE TABLE IF NOT EXISTS contract_effects (
    id BIGSERIAL PRIMARY KEY,
    consumer_group VARCHAR(64) NOT NULL,
    uuid VARCHAR(36) NOT NULL
  )`);
  await db.executor().query('CREATE INDEX IF NOT EXISTS contract_effects_group_uuid ON contract_effects (consumer_group, uuid)');
}

export async function recordPgEffects(tx: ConsumeTx, group: string, messages: readonly Message[]): Promise<void> {
  if (messages.length === 0) return;
  const values: string[] = [];
  for (const m of messages) values.push(group, m.uuid);
  await tx.query(`INSERT INTO contract_effects (consumer_group, uuid) VALUES ${messages.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ')}`, values);
}

export async function readPgEffects(db: Database, group: string): Promise<Map<string, number>> {
  const rows = await db.executor().query<{ uuid: string; n: string }[]>(
    'SELECT uuid, COUNT(*) AS n FROM contract_effects WHERE consumer_group = $1 GROUP BY uuid',
    [group],
  );
  return new Map(rows.map((r) => [r.uuid, Number(r.n)]));
}

export function postgresTarget(db: Database, config: SqlPubSubConfig): ContractTarget {
  return {
    name: `postgres ${config.mode}`,
    features: {
      multipleGroups: config.mode === 'offset',
      orderedAcrossBatches: config.mode === 'offset' || (config.subscriber?.concurrency ?? 1) === 1,
    },
    pubsub: new SqlPubSub(db, config),
    recordEffects: recordPgEffects,
    readEffects: (group) => readPgEffects(db, group),
  };
}

/** A PostgreSQL Database for tests, as the worker opens one. */
export function testPgDatabase(url: string, connectionLimit = 24): Database {
  return openDatabase({ url, connectionLimit, connectTimeoutMs: 5_000, role: 'test' });
}
