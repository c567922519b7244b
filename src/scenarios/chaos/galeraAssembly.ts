// Assembles a chaos case on a private MariaDB Galera cluster: the cluster (SystemUnderTest, topology galera),
// an HTTP server through each node the case names, the workers on theirs (worker 1 through the TCP proxy, so
// the network faults and conn-kill still reach it), and the fault context with the cluster's nodes.
import type { ChildService } from '../../harness/childService.ts';
import { galeraNodes } from '../../harness/faults/clusterNodes.ts';
import { LocalBackend } from '../../harness/faults/localBackend.ts';
import { TcpProxy } from '../../harness/faults/tcpProxy.ts';
import { SystemUnderTest, type ServerService } from '../../harness/systemUnderTest.ts';
import { unavailableStaller } from '../../harness/faults/allocatorStallFault.ts';
import type { CaseSystem } from './assembly.ts';
import type { ChaosCase } from './chaosMatrix.ts';
import type { ChaosRunOptions } from './options.ts';

/** How long healing waits for every node to be a synced member again (ms): a rejoin by SST takes ~12 s here. */
const HEAL_SYNC_TIMEOUT_MS = 120_000;

export async function startGaleraSystem(c: ChaosCase, o: ChaosRunOptions): Promise<CaseSystem> {
  const placement = c.nodes ?? { servers: [1], workers: Array.from({ length: c.workers }, () => 1) };
  const sut = await SystemUnderTest.start({
    engine: 'mariadb',
    topology: 'galera',
    nodes: o.nodes,
    galeraProvider: o.galeraProvider,
    mariadbBinDir: o.mariadbBinDir,
    searchPath: o.searchPath,
    handleSignals: false,
    log: o.log,
  });
  const cluster = sut.cluster;
  let proxy: TcpProxy | undefined;
  try {
    if (cluster === undefined) throw new Error('chaos: topology galera started no cluster');
    const nodeOf = (n: number) => {
      if (n < 1 || n > cluster.nodes.length) throw new Error(`chaos case ${c.name}: node ${n} does not exist in a cluster of ${cluster.nodes.length}`);
      return cluster.node(n);
    };
    const firstWorkerNode = nodeOf(placement.workers[0] ?? 1);
    const tcp = await TcpProxy.start({ targetHost: '127.0.0.1', targetPort: firstWorkerNode.clientPort });
    proxy = tcp;
    const via = new URL(cluster.urlOf(firstWorkerNode.index));
    via.port = String(tcp.port);
    const proxiedUrl = via.toString();
    const servers: ServerService[] = [];
    for (const [i, n] of placement.servers.entries()) servers.push(await sut.startServer(c.server, `server ${i + 1} (node ${n})`, cluster.urlOf(nodeOf(n).index)));
    const workers: ChildService[] = [];
    for (let i = 0; i < c.workers; i += 1) {
      const n = placement.workers[i] ?? 1;
      workers.push(await sut.startWorker(c.worker, `worker ${i + 1} (node ${n})`, i === 0 ? proxiedUrl : cluster.urlOf(nodeOf(n).index)));
    }
    const first = servers[0];
    if (first === undefined) throw new Error(`chaos case ${c.name}: a cluster case needs at least one server`);
    const backend = new LocalBackend(sut, first, workers, { workerFlags: c.worker, workerMysqlUrl: proxiedUrl });
    const nodes = galeraNodes(cluster);
    const databaseVersion = (await sut.serverFacts()).version;
    return {
      engine: 'mariadb',
      sql: sut.sql,
      db: sut.db,
      databaseUrl: cluster.urlOf(1),
      rawDatabaseUrls: cluster.urls,
      serverBaseUrl: first.baseUrl,
      serverBaseUrls: servers.map((s) => s.baseUrl),
      faults: {
        backend,
        proxy: tcp,
        admin: sut.db,
        engine: 'mariadb',
        // The single-server database faults do not apply: the cluster faults act on the nodes.
        databaseProcess: false,
        crashWorkerAt: (spec, timeoutMs) => backend.crashWorkerAt(spec, timeoutMs),
        allocatorStaller: unavailableStaller('db-stall-allocator runs on a single private server'),
        cluster: nodes,
      },
      databaseVersion: `${databaseVersion} (Galera, ${cluster.nodes.length} nodes)`,
      gapCounts: () => sut.workerGaps.totals(),
      async heal() {
        tcp.setDelay(0);
        for (const node of cluster.nodes) {
          if (nodes.paused(node.index)) nodes.resume(node.index);
          if (nodes.isolated.has(node.index)) await nodes.isolate(node.index, false);
        }
        // Stopped nodes start together (see quorum-loss: one alone may wait for another).
        await Promise.all(cluster.nodes.filter((n) => !nodes.running(n.index)).map((n) => nodes.start(n.index)));
        await nodes.waitAllSynced(HEAL_SYNC_TIMEOUT_MS);
        for (const child of [...servers.map((s) => s.service), ...backend.workers]) {
          child.resume();
          if (!child.running) await child.start();
        }
      },
      async close() {
        await tcp.close();
        await sut.close();
      },
    };
  } catch (error) {
    await proxy?.close().catch(() => undefined);
    await sut.close().catch(() => undefined);
    throw error;
  }
}
