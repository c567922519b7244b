// A private PostgreSQL for integration tests: a fresh data directory in the temp dir (reachable by the
// `postgres` user when the tests run as root), a free port, durable settings.
//
//   const db = usePrivatePostgres();   // registers before/after hooks; db() is the running server
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PortInUseError, PrivatePostgres, type PrivatePostgresOptions } from '../../src/harness/postgres/privatePostgres.ts';
import { findFreePort } from '../../src/harness/ports.ts';
import { deleteOnExit } from '../../src/harness/privateDirectory.ts';
import { readEnvironment } from '../../src/config.ts';

export { PrivatePostgres };

/** Starts a private PostgreSQL on a free port with a fresh temporary data directory; callers `remove()` it. */
export async function startPrivatePostgres(overrides: Partial<PrivatePostgresOptions> = {}): Promise<PrivatePostgres> {
  for (let attempt = 1; ; attempt += 1) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'eob-test-pg-'));
    deleteOnExit(dir);
    const db = new PrivatePostgres({
      port: await findFreePort(),
      datadir: dir,
      binDir: readEnvironment().postgresBinDir,
      startTimeoutMs: 60_000,
      ...overrides,
    });
    try {
      await db.start();
      return db;
    } catch (error) {
      await db.remove().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      if (!(error instanceof PortInUseError) || attempt >= 3 || overrides.port !== undefined) throw error;
    }
  }
}

export function usePrivatePostgres(overrides: Partial<PrivatePostgresOptions> = {}): () => PrivatePostgres {
  let db: PrivatePostgres | undefined;
  before(async () => {
    db = await startPrivatePostgres(overrides);
  });
  after(async () => {
    await db?.remove();
  });
  return () => {
    if (db === undefined) throw new Error('usePrivatePostgres: the server is started in a before() hook; use it inside tests');
    return db;
  };
}
