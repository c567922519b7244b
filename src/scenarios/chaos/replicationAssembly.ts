// Assembles a chaos case on a primary/replica pair (SystemUnderTest, topology primary-replica): the HTTP server,
// the workers and the raw SQL publishers all connect through the virtual address (the TCP proxy in front of the
// primary), as clients of HAProxy, ProxySQL or a floating IP would; the `primary-failover` fault moves it to the
// promoted replica. The harness's own reads go through it too, so the final snapshot is the survivor's.
import type { ChildService } from '../../harness/childService.ts';
import { LocalBackend } from '../../harness/faults/localBackend.ts';
import { SystemUnderTest } from '../../harness/systemUnderTest.ts';
import { unavailableStaller } from '../../harness/faults/allocatorStallFault.ts';
import type { CaseSystem } from './assembly.ts';
import type { ChaosCase } from './chaosMatrix.ts';
import type { ChaosRunOptions } from './options.ts';

export async function startReplicationSystem(c: ChaosCase, o: ChaosRunOptions): Promise<CaseSystem> {
  const replication = c.replication;
  if (replication === undefined) throw new Error(`chaos case ${c.name}: a primary-replica case names its replication level`);
  const sut = await SystemUnderTest.start({
    engine: o.engine,
    topology: 'primary-replica',
    replication: replication.level,
    semiSyncTimeoutMs: replication.semiSyncTimeoutMs,
    mariadbBinDir: o.mariadbBinDir,
    postgresBinDir: o.postgresBinDir,
    searchPath: o.searchPath,
    handleSignals: false,
    log: o.log,
  });
  try {
    const replicated = sut.replicated;
    if (replicated === undefined) throw new Error('chaos: topology primary-replica started no pair');
    const url = sut.databaseUrl;
    const [server, ...workers] = await Promise.all([
      sut.startServer(c.server),
      ...Array.from({ length: c.workers }, (_, i): Promise<ChildService> => sut.startWorker(c.worker, `worker ${i + 1}`, url)),
    ]);
    const backend = new LocalBackend(sut, server, workers, { workerFlags: c.worker, workerMysqlUrl: url });
    const facts = await sut.serverFacts();
    return {
      engine: sut.engine,
      sql: sut.sql,
      db: sut.db,
      databaseUrl: url,
      serverBaseUrl: server.baseUrl,
      faults: {
        backend,
        // The virtual address carries every client's sessions, not the workers' alone: the proxy faults
        // (net-delay, net-reset, conn-kill) would hit everyone, so they are not offered here.
        proxy: undefined,
        admin: sut.db,
        engine: sut.engine,
        // The single server's database faults do not apply: primary-failover acts on the pair.
        databaseProcess: false,
        crashWorkerAt: (spec, timeoutMs) => backend.crashWorkerAt(spec, timeoutMs),
        allocatorStaller: unavailableStaller('db-stall-allocator runs on a single private server'),
        failover: {
          pair: replicated.pair,
          vip: replicated.vip,
          plan: { holdReplicaMs: replication.holdReplicaMs, rebuild: true },
        },
      },
      databaseVersion: `${facts.version} (primary + ${replicated.pair.level} replica)`,
      gapCounts: () => sut.workerGaps.totals(),
      async heal() {
        for (const child of [server.service, ...backend.workers]) {
          child.resume();
          if (!child.running) await child.start();
        }
      },
      async close() {
        await sut.close();
      },
    };
  } catch (error) {
    await sut.close().catch(() => undefined);
    throw error;
  }
}
