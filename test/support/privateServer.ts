// What the tests' private MariaDB and private PostgreSQL have in common: each starts in a fresh data directory
// in the temp dir, which is deleted when the test process exits if the test did not remove it, and swept by a
// later start when the test process was killed; on a free port that is tried again when another process takes
// it first; and a test file gets one through before/after hooks.
import { rm } from 'node:fs/promises';
import { findFreePort } from '../../src/harness/ports.ts';
import { PortInUseError } from '../../src/harness/serverProcess.ts';
import { createScratchDirectory, deleteOnExit, sweepAbandonedScratchDirectories, type ScratchDirectoryPrefix } from '../../src/harness/privateDirectory.ts';
import { useSuiteResource } from './suiteResource.ts';

/** What both harness classes offer that starting and removing them needs. */
export interface PrivateServer {
  start(): Promise<unknown>;
  remove(): Promise<void>;
}

/**
 * Starts a server on a free port with a fresh temporary data directory (its name begun by `dirPrefix`, so that
 * one left behind says which engine it was); callers `remove()` it. A port in `overrides` is the caller's to
 * keep: a failure to bind it is final; otherwise a port taken meanwhile (PortInUseError) is worth another.
 */
export async function startPrivateServer<S extends PrivateServer>(
  dirPrefix: ScratchDirectoryPrefix,
  create: (port: number, datadir: string) => S,
  overrides: { port?: number },
): Promise<S> {
  // A test process killed by a timeout or by hand runs no exit hook: what it left is taken here.
  await sweepAbandonedScratchDirectories();
  // Another process can take the port between the check and the server's bind: try a few ports.
  for (let attempt = 1; ; attempt += 1) {
    const dir = await createScratchDirectory(dirPrefix);
    // The harness classes' own exit hooks SIGKILL a server the test forgot; this deletes what it left on disk.
    deleteOnExit(dir);
    const server = create(await findFreePort(), dir);
    try {
      await server.start();
      return server;
    } catch (error) {
      await server.remove().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      if (!(error instanceof PortInUseError) || attempt >= 3 || overrides.port !== undefined) throw error;
    }
  }
}

/**
 * Registers before/after hooks in the current suite that start and remove a server; the getter throws
 * `tooEarly` if used before the hook ran.
 */
export function usePrivateServer<S extends PrivateServer>(start: () => Promise<S>, tooEarly: string): () => S {
  return useSuiteResource(start, (server) => server.remove(), tooEarly);
}
