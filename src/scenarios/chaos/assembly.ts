// Assembles the system a chaos case runs against: local children (private database, server, workers behind a
// TCP proxy) or containers (docker backend), with the fault context the nemesis acts through.
import type { GapCounts } from '../../system/workerGapLine.ts';
import { createPool, executorOf } from '../../system/db/mariadb/pool.ts';
import { selectServerVersion } from '../../system/sql/mariadb/observation.ts';
import type { SqlExecutor } from '../../system/pubsub/types.ts';
import { SystemUnderTest } from '../../harness/systemUnderTest.ts';
import { TcpProxy } from '../../harness/faults/tcpProxy.ts';
import { LocalBackend } from '../../harness/faults/localBackend.ts';
import { DockerBackend } from '../../harness/faults/dockerBackend.ts';
import { DockerDeployment } from '../../harness/dockerDeployment.ts';
import { localAllocatorStaller, unavailableStaller } from '../../harness/faults/allocatorStallFault.ts';
import { type FaultContext } from './nemesis.ts';
import { type ChaosCase } from './chaosMatrix.ts';
import { type ChaosRunOptions, type DockerTarget } from './options.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { SqlEngine } from '../../system/sql/engine.ts';
import { mariadbEngine } from '../../system/sql/mariadb/engine.ts';

/** What a case runs against: local children (the default) or containers. */
export interface CaseSystem {
  /** The engine the database speaks, and its implementation of the seam (the harness's reads). */
  engine: EngineName;
  sql: SqlEngine;
  /** The harness's own session: sampler, recovery probe, conn-kill, snapshot. */
  db: SqlExecutor;
  /** The database itself, for the raw SQL publishers (never through the workers' proxy). */
  databaseUrl: string;
  /** Every node of a cluster, for raw publishers on each (absent: databaseUrl alone). */
  rawDatabaseUrls?: readonly string[];
  serverBaseUrl: string;
  /** Every HTTP server of the case, the first being serverBaseUrl (absent: that one alone). */
  serverBaseUrls?: readonly string[];
  faults: Omit<FaultContext, 'ackMode' | 'holdMs'>;
  databaseVersion: string | undefined;
  /** Everything running again, network faults removed. */
  heal(): Promise<void>;
  close(): Promise<void>;
  /** Offsets the workers passed as holes (and by the bound alone); undefined where their output is not read. */
  gapCounts(): GapCounts | undefined;
}

export async function startLocalSystem(c: ChaosCase, o: ChaosRunOptions): Promise<CaseSystem> {
  const sut = await SystemUnderTest.start({
    engine: o.engine,
    databaseUrl: o.databaseUrl,
    mariadbBinDir: o.mariadbBinDir,
    postgresBinDir: o.postgresBinDir,
    searchPath: o.searchPath,
    handleSignals: false,
    log: o.log,
  });
  let proxy: TcpProxy | undefined;
  try {
    const target = new URL(sut.databaseUrl);
    const tcp = await TcpProxy.start({ targetHost: target.hostname, targetPort: Number(target.port || (sut.engine === 'postgres' ? 5432 : 3306)) });
    proxy = tcp;
    // The workers reach the database only through the proxy: network faults act on them alone. Only the host
    // and port change: user, password and database stay as the URL has them (still percent-encoded), either engine.
    const via = new URL(sut.databaseUrl);
    via.hostname = '127.0.0.1';
    via.port = String(tcp.port);
    const workerUrl = via.toString();
    // Server and workers start at the same instant on the new database, as a process manager or compose starts
    // them: every case begins with their schema set-up racing (each must find what the others created).
    const [server, ...workers] = await Promise.all([
      sut.startServer(c.server),
      ...Array.from({ length: c.workers }, (_, i) => sut.startWorker(c.worker, `worker ${i + 1}`, workerUrl)),
    ]);
    const backend = new LocalBackend(sut, server, workers, { workerFlags: c.worker, workerMysqlUrl: workerUrl });
    const databaseVersion = (await sut.serverFacts()).version;
    // Only cases that inject it pay for the debugger's first attach.
    const allocatorStaller = !c.faults.includes('db-stall-allocator')
      ? undefined
      : sut.engine !== 'mariadb'
        ? unavailableStaller(`db-stall-allocator stalls InnoDB's allocator inside mariadbd; this case runs on ${sut.engine}`)
        : sut.privateDatabase === undefined
          ? unavailableStaller('MYSQL_URL names a database this harness did not start; gdb attaches only to a private one (unset MYSQL_URL)')
          : await localAllocatorStaller({ serverPid: () => sut.privateDatabase?.pid, mysqlUrl: sut.databaseUrl, log: o.log });
    return {
      engine: sut.engine,
      sql: sut.sql,
      db: sut.db,
      databaseUrl: sut.databaseUrl,
      serverBaseUrl: server.baseUrl,
      faults: {
        backend,
        proxy: tcp,
        admin: sut.db,
        engine: sut.engine,
        databaseProcess: sut.privateDatabase !== undefined,
        crashWorkerAt: (spec, timeoutMs) => backend.crashWorkerAt(spec, timeoutMs),
        allocatorStaller,
      },
      databaseVersion,
      gapCounts: () => sut.workerGaps.totals(),
      async heal() {
        tcp.setDelay(0);
        const managed = sut.privateDatabase;
        if (managed !== undefined) {
          if (managed.isPaused) managed.resume();
          if (!managed.running) await managed.start();
        }
        for (const child of [server.service, ...backend.workers]) {
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

/**
 * Containers (docker backend): a fresh database, server and workers per case, with the case's flags, from
 * the local images; faults act on the containers through dockerode. No proxy, no failpoint restarts and no
 * debugger in a container: those faults are skipped and listed as such.
 */
export async function startDockerSystem(c: ChaosCase, o: ChaosRunOptions, target: DockerTarget): Promise<CaseSystem> {
  const deployment = await DockerDeployment.start({ server: c.server, worker: c.worker, workers: c.workers }, { ...target, log: o.log });
  const pool = createPool({ url: deployment.mysqlUrl, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'chaos' });
  try {
    const db = executorOf(pool);
    const backend = new DockerBackend({ project: target.project, socketPath: target.socketPath });
    const databaseVersion = await selectServerVersion(db);
    return {
      engine: 'mariadb',
      sql: mariadbEngine,
      db,
      databaseUrl: deployment.mysqlUrl,
      serverBaseUrl: deployment.serverBaseUrl,
      faults: {
        backend,
        proxy: undefined,
        admin: db,
        engine: 'mariadb',
        databaseProcess: true,
        crashWorkerAt: undefined,
        allocatorStaller: unavailableStaller('the docker backend: gdb would have to attach to mariadbd inside its container'),
      },
      databaseVersion,
      gapCounts: () => undefined,
      async heal() {
        for (const role of ['db', 'server', 'worker'] as const) {
          const containers = await backend.containers(role);
          if (containers.some((x) => x.State === 'paused')) await backend.resume(role);
          if (containers.some((x) => x.State !== 'running' && x.State !== 'paused')) await backend.start(role);
        }
      },
      async close() {
        await pool.end();
        await deployment.close();
      },
    };
  } catch (error) {
    await pool.end().catch(() => undefined);
    await deployment.close().catch(() => undefined);
    throw error;
  }
}
