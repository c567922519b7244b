// A private 3-node MariaDB Galera cluster for integration tests: each node in a scratch data directory of its own
// in the temp dir (swept like the single servers' if the test process is killed), on free ports of 127.0.0.1.
// Forming it takes ~15-45 s (two rsync state transfers). Tests that need Galera skip, saying why, when the
// provider library or rsync is missing.
import { readEnvironment } from '../../src/config.ts';
import { findGaleraPrerequisites, GaleraCluster } from '../../src/harness/mariadb/galeraCluster.ts';
import { createScratchDirectory, deleteOnExit, sweepAbandonedScratchDirectories } from '../../src/harness/privateDirectory.ts';
import { useSuiteResource } from './suiteResource.ts';

export { GaleraCluster };

/** Why Galera tests cannot run on this machine, or undefined when they can. */
export async function galeraMissing(): Promise<string | undefined> {
  const env = readEnvironment();
  try {
    await findGaleraPrerequisites({ provider: env.galeraProvider, searchPath: env.searchPath });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** `providerOptions`: extra wsrep_provider_options, `key=value` each (e.g. `evs.suspect_timeout=PT60S`). */
export async function startTestCluster(nodes = 3, providerOptions: readonly string[] = []): Promise<GaleraCluster> {
  await sweepAbandonedScratchDirectories();
  const env = readEnvironment();
  const nodeDatadirs: string[] = [];
  for (let i = 0; i < nodes; i += 1) {
    const dir = await createScratchDirectory('eob-test-db-');
    deleteOnExit(dir);
    nodeDatadirs.push(dir);
  }
  return GaleraCluster.create({ nodes, nodeDatadirs, binDir: env.mariadbBinDir, searchPath: env.searchPath, provider: env.galeraProvider, providerOptions: [...providerOptions] });
}

/** Registers before/after hooks that form and remove a cluster; the getter throws if used before the hook ran. */
export function useGaleraCluster(nodes = 3, providerOptions: readonly string[] = []): () => GaleraCluster {
  return useSuiteResource(() => startTestCluster(nodes, providerOptions), (cluster) => cluster.remove(), 'useGaleraCluster: the cluster is formed in a before() hook; use it inside tests');
}
