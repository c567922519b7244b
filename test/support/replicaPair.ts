// A private MariaDB primary/replica pair for integration tests: each server in a scratch data directory of its
// own in the temp dir (swept like the single servers' if the test process is killed), on free ports of 127.0.0.1.
import { readEnvironment } from '../../src/config.ts';
import { MariadbReplicaPair, type MariadbReplicaPairOptions } from '../../src/harness/mariadb/mariadbReplicaPair.ts';
import { createScratchDirectory, deleteOnExit, sweepAbandonedScratchDirectories } from '../../src/harness/privateDirectory.ts';

export { MariadbReplicaPair };

export async function startTestPair(options: Partial<MariadbReplicaPairOptions>): Promise<MariadbReplicaPair> {
  await sweepAbandonedScratchDirectories();
  const env = readEnvironment();
  const nodeDatadirs: string[] = [];
  for (let i = 0; i < 2; i += 1) {
    const dir = await createScratchDirectory('eob-test-db-');
    deleteOnExit(dir);
    nodeDatadirs.push(dir);
  }
  return MariadbReplicaPair.create({ nodeDatadirs, binDir: env.mariadbBinDir, searchPath: env.searchPath, ...options });
}
