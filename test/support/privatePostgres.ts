// A private PostgreSQL for integration tests: a fresh data directory in the temp dir (reachable by the
// `postgres` user when the tests run as root), a free port, durable settings.
//
//   const db = usePrivatePostgres();   // registers before/after hooks; db() is the running server
import { PrivatePostgres, type PrivatePostgresOptions } from '../../src/harness/postgres/privatePostgres.ts';
import { readEnvironment } from '../../src/config.ts';
import { startPrivateServer, usePrivateServer } from './privateServer.ts';

export { PrivatePostgres };

/** Starts a private PostgreSQL on a free port with a fresh temporary data directory; callers `remove()` it. */
export async function startPrivatePostgres(overrides: Partial<PrivatePostgresOptions> = {}): Promise<PrivatePostgres> {
  const create = (port: number, datadir: string) => new PrivatePostgres({ port, datadir, binDir: readEnvironment().postgresBinDir, startTimeoutMs: 60_000, ...overrides });
  return startPrivateServer('eob-test-pg-', create, overrides);
}

export function usePrivatePostgres(overrides: Partial<PrivatePostgresOptions> = {}): () => PrivatePostgres {
  return usePrivateServer(
    () => startPrivatePostgres(overrides),
    'usePrivatePostgres: the server is started in a before() hook; use it inside tests',
  );
}
