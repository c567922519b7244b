// A private MariaDB with a test pool and the effects table on it, for the test files that run offset
// subscribers directly and count what each group handled: the subscriptions a test leaves open are closed
// before the pool ends.
import type { Pool } from '../../src/system/db/mariadb/pool.ts';
import type { Subscription } from '../../src/system/pubsub/types.ts';
import { createEffectsTable, testPool } from './contractTargets.ts';
import { usePrivateDatabase, type ManagedDatabase } from './privateDatabase.ts';
import { useSuiteResource } from './suiteResource.ts';

export interface SubscriberDatabase {
  db: () => ManagedDatabase;
  pool: () => Pool;
  /** Closed in the after() hook; a test that closes one itself takes it out. */
  subscriptions: Subscription[];
}

/** Registers the hooks in the current suite; each getter throws if used before its hook ran. */
export function useSubscriberDatabase(connectionLimit: number): SubscriberDatabase {
  const db = usePrivateDatabase();
  const subscriptions: Subscription[] = [];
  const pool = useSuiteResource(
    async () => {
      const opened = testPool(db().url, connectionLimit);
      await createEffectsTable(opened);
      return opened;
    },
    async (opened) => {
      await Promise.all(subscriptions.map((s) => s.close()));
      await opened.end();
    },
    'useSubscriberDatabase: the pool is opened in a before() hook; use it inside tests',
  );
  return { db, pool, subscriptions };
}
