// A private PostgreSQL with a Database of the test's own open on it, for the PostgreSQL test files that set up
// topics and read counters beside the servers and workers they run: both are started in before() hooks and
// closed in after() hooks.
import type { Database } from '../../src/system/db/database.ts';
import { testPgDatabase } from './contractTargets.ts';
import { usePrivatePostgres, type PrivatePostgres } from './privatePostgres.ts';
import { useSuiteResource } from './suiteResource.ts';

export interface PrivatePostgresDatabase {
  server: () => PrivatePostgres;
  db: () => Database;
}

/** Registers the hooks in the current suite; each getter throws if used before its hook ran. */
export function usePrivatePostgresDatabase(): PrivatePostgresDatabase {
  const server = usePrivatePostgres();
  const db = useSuiteResource(
    // A few connections are plenty for the test's own queries; the systems under test open their own.
    () => testPgDatabase(server().url, 4),
    (opened) => opened.end(),
    'usePrivatePostgresDatabase: the database is opened in a before() hook; use it inside tests',
  );
  return { server, db };
}
