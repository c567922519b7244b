// The pub/sub contract against every implementation: memory, and on MariaDB and on PostgreSQL offset mode, queue
// mode and the worker's own wiring (workerPubSubConfig, the function `eob worker` subscribes through).
import { after, before, describe } from 'node:test';
import { runPubSubContract } from './contract/pubsubContract.ts';
import { createEffectsTable, createPgEffectsTable, memoryTarget, mysqlTarget, postgresTarget, testPgDatabase, testPool } from './support/contractTargets.ts';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import type { Database } from '../src/system/db/database.ts';
import type { Pool } from '../src/system/db/mariadb/pool.ts';
import { DEFAULT_WORKER_OPTIONS, validateWorkerOptions, workerPubSubConfig } from '../src/system/worker.ts';

describe('memory pub/sub', () => {
  runPubSubContract(async () => memoryTarget());
});

describe('MySQL pub/sub', () => {
  const db = usePrivateDatabase();
  let pool: Pool;
  before(async () => {
    pool = testPool(db().url);
    await createEffectsTable(pool);
  });
  after(async () => {
    await pool.end();
  });

  describe('offset mode, defaults (READ COMMITTED, contiguous)', () => {
    // Short poll and resend intervals keep the suite fast; the rules tested do not depend on them.
    runPubSubContract(async () => mysqlTarget(pool, { mode: 'offset', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20 } }));
  });
  describe('offset mode, REPEATABLE READ', () => {
    runPubSubContract(async () =>
      mysqlTarget(pool, { mode: 'offset', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20, isolation: 'REPEATABLE READ' } }),
    );
  });
  describe('offset mode, SERIALIZABLE (the watermill profile\'s level)', () => {
    runPubSubContract(async () =>
      mysqlTarget(pool, { mode: 'offset', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20, isolation: 'SERIALIZABLE' } }),
    );
  });
  describe('offset mode, one statement per round trip (a pool without multipleStatements)', () => {
    let single: Pool;
    before(() => {
      single = testPool(db().url, 8, false);
    });
    after(async () => {
      await single.end();
    });
    runPubSubContract(async () => mysqlTarget(single, { mode: 'offset', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20 } }));
  });
  describe('the worker\'s wiring, offset mode (workerPubSubConfig of the worker\'s defaults)', () => {
    runPubSubContract(async () =>
      mysqlTarget(pool, workerPubSubConfig(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: db().url, mode: 'offset', pollIntervalMs: 5 }))),
    );
  });
  describe('the worker\'s wiring, queue mode (workerPubSubConfig of the worker\'s defaults)', () => {
    runPubSubContract(async () =>
      mysqlTarget(pool, workerPubSubConfig(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: db().url, mode: 'queue', pollIntervalMs: 5 }))),
    );
  });
  describe('queue mode, 1 consumer', () => {
    runPubSubContract(async () => mysqlTarget(pool, { mode: 'queue', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20, concurrency: 1 } }));
  });
  describe('queue mode, 3 consumers', () => {
    runPubSubContract(async () => mysqlTarget(pool, { mode: 'queue', subscriber: { pollIntervalMs: 5, resendIntervalMs: 20, concurrency: 3 } }));
  });
});

describe('PostgreSQL pub/sub', () => {
  const server = usePrivatePostgres();
  let db: Database;
  before(async () => {
    db = testPgDatabase(server().url);
    await createPgEffectsTable(db);
  });
  after(async () => {
    await db.end();
  });
  const fast = { pollIntervalMs: 5, resendIntervalMs: 20 };

  describe('offset mode, defaults (READ COMMITTED, the xmin rule)', () => {
    runPubSubContract(async () => postgresTarget(db, { mode: 'offset', subscriber: fast }));
  });
  describe('offset mode, REPEATABLE READ (watermill-sql\'s level)', () => {
    runPubSubContract(async () => postgresTarget(db, { mode: 'offset', subscriber: { ...fast, isolation: 'REPEATABLE READ' } }));
  });
  describe('offset mode, SERIALIZABLE', () => {
    runPubSubContract(async () => postgresTarget(db, { mode: 'offset', subscriber: { ...fast, isolation: 'SERIALIZABLE' } }));
  });
  describe('the worker\'s wiring, offset mode (workerPubSubConfig of the worker\'s defaults)', () => {
    runPubSubContract(async () =>
      postgresTarget(db, workerPubSubConfig(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, mode: 'offset', pollIntervalMs: 5 }))),
    );
  });
  describe('the worker\'s wiring, queue mode (workerPubSubConfig of the worker\'s defaults)', () => {
    runPubSubContract(async () =>
      postgresTarget(db, workerPubSubConfig(validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, mode: 'queue', pollIntervalMs: 5 }))),
    );
  });
  describe('queue mode, 3 consumers', () => {
    runPubSubContract(async () => postgresTarget(db, { mode: 'queue', subscriber: { ...fast, concurrency: 3 } }));
  });
});
