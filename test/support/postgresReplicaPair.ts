// A private PostgreSQL primary + streaming standby for integration tests: each server in a scratch data
// directory of its own in the temp dir (swept like the single servers' if the test process is killed), on free
// ports of 127.0.0.1. Forming one takes a few seconds (a base backup of a fresh primary).
import { readEnvironment } from '../../src/config.ts';
import { createScratchDirectory, deleteOnExit, sweepAbandonedScratchDirectories } from '../../src/harness/privateDirectory.ts';
import { PostgresReplicaPair, startPostgresReplicaPair, type PostgresReplicationLevel } from '../../src/harness/postgres/postgresReplicaPair.ts';

export { PostgresReplicaPair };

export async function startTestPostgresPair(level: PostgresReplicationLevel): Promise<PostgresReplicaPair> {
  await sweepAbandonedScratchDirectories();
  const dirs: string[] = [];
  for (let i = 0; i < 2; i += 1) {
    const dir = await createScratchDirectory('eob-test-pg-');
    deleteOnExit(dir);
    dirs.push(dir);
  }
  return startPostgresReplicaPair({ level, nodeDatadirs: [dirs[0]!, dirs[1]!], binDir: readEnvironment().postgresBinDir });
}
