// Runs one case of the quick failover matrix on an engine's private primary/replica pair (chaos --topology
// primary-replica), with this machine's server binaries, collecting the run's log lines; the MariaDB and
// PostgreSQL failover test files share it.
import type { EngineName } from '../../src/system/sql/engine.ts';
import { readEnvironment } from '../../src/config.ts';
import { runCase } from '../../src/scenarios/chaos/runCase.ts';
import { replicationMatrix } from '../../src/scenarios/chaos/replicationMatrix.ts';
import type { CaseResult } from '../../src/scenarios/chaos/caseResult.ts';

export function failoverCaseRunner(engine: EngineName, logs: string[]): (name: string) => Promise<CaseResult> {
  const env = readEnvironment();
  return (name) => {
    const c = replicationMatrix('quick', engine).find((x) => x.name === name);
    if (c === undefined) throw new Error(`no case ${name}`);
    return runCase(c, {
      engine,
      topology: 'primary-replica',
      ...(engine === 'mariadb' ? { mariadbBinDir: env.mariadbBinDir } : { postgresBinDir: env.postgresBinDir }),
      searchPath: env.searchPath,
      log: (line) => logs.push(line),
    });
  };
}
