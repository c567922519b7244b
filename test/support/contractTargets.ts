// Contract targets: the in-memory pub/sub and the MySQL pub/sub in offset and queue mode.
import { createPool, executorOf, type Pool } from '../../src/system/db/pool.ts';
import { MemoryPubSub, isMemoryTx } from '../../src/system/pubsub/memoryPubSub.ts';
import { MysqlPubSub, type MysqlPubSubConfig } from '../../src/system/pubsub/mysqlPubSub.ts';
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

export function mysqlTarget(pool: Pool, config: MysqlPubSubConfig): ContractTarget {
  return {
    name: `mysql ${config.mode}`,
    features: {
      multipleGroups: config.mode === 'offset',
      orderedAcrossBatches: config.mode === 'offset' || (config.subscriber?.concurrency ?? 1) === 1,
    },
    pubsub: new MysqlPubSub(pool, config),
    recordEffects: recordSqlEffects,
    readEffects: (group) => readSqlEffects(pool, group),
  };
}

/** multipleStatements as the worker's pool has it (consume transactions in 3 round trips), unless told not to. */
export function testPool(url: string, connectionLimit = 24, multipleStatements = true): Pool {
  return createPool({ url, connectionLimit, connectTimeoutMs: 5_000, role: 'test', multipleStatements });
}
