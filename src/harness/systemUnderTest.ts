// The system under test as the bench and the chaos harness see it: a database (a private MariaDB or
// PostgreSQL this process starts, by `engine`, or the server a URL names), the HTTP server and N workers as
// child processes, and a measurement pool. Stable API, used by src/scenarios/sweep.ts and the chaos harness:
//
//   const sut = await SystemUnderTest.start({ engine: 'postgres', ... });   // or { databaseUrl: env.mysqlUrl }
//   const server = await sut.startServer({ coalesce: true });     // ready: GET /healthz answered 200
//   const worker = await sut.startWorker({ batchSize: 1000 });    // ready: it printed `worker started`
//   await worker.kill(); await worker.start(); server.pause(); ...
//   sut.requirePrivateDatabase().kill('SIGKILL')                  // db faults; throws with a given URL
//   sut.interrupted                                               // AbortSignal: Ctrl-C / SIGTERM of the harness
//   await sut.close();                                            // stops every child, then the private db
import { WorkerGapCounts } from './workerGapCounts.ts';
import path from 'node:path';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { childEnvironment } from '../config.ts';
import { createPool, ensureDatabase, executorOf, parseMysqlUrl, type Pool } from '../system/db/mariadb/pool.ts';
import { redactDatabaseUrl } from '../system/db/urlRedaction.ts';
import { ensurePgDatabase } from '../system/db/postgres/pool.ts';
import { startupFailureKind, startupFailureMessage } from '../system/db/startupFailure.ts';
import { databaseOf, openDatabase } from '../system/db/openDatabase.ts';
import type { Database } from '../system/db/database.ts';
import { startPrivateDatabase, type PrivateDatabase } from './privateDatabase.ts';
import { createScratchDirectory, sweepAbandonedScratchDirectories } from './privateDirectory.ts';
import { engineOfUrl, type EngineName } from './engines.ts';
import type { SqlEngine } from '../system/sql/engine.ts';
import { definedOnly, OptionsError } from '../validate.ts';
import { selectDurability } from '../system/sql/mariadb/observation.ts';
import { selectPgServerVersion } from '../system/sql/postgres/sessions.ts';
import { PrivatePostgres } from './postgres/privatePostgres.ts';
import { GaleraCluster } from './mariadb/galeraCluster.ts';
import { TcpProxy } from './faults/tcpProxy.ts';
import type { ReplicaPair, ReplicationLevel } from './replication/replicaPair.ts';
import { checkReplicationLevel, defaultReplicationLevel, startReplicaPair } from './replication/startReplicaPair.ts';
import { findFreePort } from './ports.ts';
import type { SqlExecutor } from '../system/pubsub/types.ts';
import { ChildService } from './childService.ts';
import { workerArgv, type WorkerSpec } from '../system/workerSpec.ts';
import { serverArgv, type ServerSpec } from '../system/server/spec.ts';
import { processTreeCpuSeconds } from './processCpu.ts';
import { projectRoot } from '../projectRoot.ts';

/**
 * How the private database is laid out: one server; a MariaDB Galera cluster of `nodes` servers (every node
 * takes writes; the system's URL is node 1's, and servers or workers can be pointed at any node); or a primary
 * and a replica (`replication` level) behind a virtual address (a TCP proxy) that a failover points at the
 * promoted replica: the system's URL is the virtual address's.
 */
export type Topology = 'single' | 'galera' | 'primary-replica';
export const TOPOLOGIES: readonly Topology[] = ['single', 'galera', 'primary-replica'];

export interface SystemOptions {
  /** The engine of the private database (and what a given URL must speak). */
  engine: EngineName;
  topology: Topology;
  /** Nodes of a cluster topology. */
  nodes: number;
  /** Galera's provider library (config's galeraProvider); undefined searches the usual places. */
  galeraProvider: string | undefined;
  /** primary-replica: how far a commit travels before it is answered; undefined: the engine's synchronous level. */
  replication: ReplicationLevel | undefined;
  /** primary-replica, MariaDB semi-sync: fall back to async after this long (undefined: never; see mariadbReplicaPair.ts). */
  semiSyncTimeoutMs: number | undefined;
  /**
   * Use this server (mysql:// or postgres://) instead of starting a private one (then faults on the database
   * are unavailable).
   */
  databaseUrl: string | undefined;
  /** Database name on the private server. */
  database: string;
  /** Where to look first for mariadbd (config's mariadbBinDir) and PATH's directories (config's searchPath). */
  mariadbBinDir: string | undefined;
  /** The directory holding initdb and postgres (config's postgresBinDir); undefined searches the usual places. */
  postgresBinDir: string | undefined;
  searchPath: readonly string[];
  /** Children log nothing (EOB_LOG=quiet); their output tail is still kept for error messages. */
  quietChildren: boolean;
  /** Deadline for a child to become ready. Node + tsx start in ~1 s here; 30 s covers a loaded machine. */
  childStartTimeoutMs: number;
  /** Deadline for a child to exit after SIGTERM before SIGKILL. */
  childStopTimeoutMs: number;
  /** Turn SIGINT / SIGTERM of this process into `interrupted` (a second one exits at once). */
  handleSignals: boolean;
  /** Lifecycle lines of the system (database started, child exited unexpectedly). */
  log: (line: string) => void;
  /** The program the children run; default bin/eob.js of this project (tests pass a stand-in). */
  eobBin: string;
}

export function defaultSystemOptions(): SystemOptions {
  return {
    engine: 'mariadb',
    topology: 'single',
    nodes: 3,
    galeraProvider: undefined,
    replication: undefined,
    semiSyncTimeoutMs: undefined,
    databaseUrl: undefined,
    database: 'eob',
    mariadbBinDir: undefined,
    postgresBinDir: undefined,
    searchPath: [],
    quietChildren: true,
    childStartTimeoutMs: 30_000,
    childStopTimeoutMs: 10_000,
    handleSignals: true,
    log: () => undefined,
    eobBin: path.join(projectRoot(), 'bin', 'eob.js'),
  };
}

/** A server's spec (system/server/spec.ts); undefined fields take the server's own defaults. */
export type ServerFlags = ServerSpec;

/** A worker's spec (system/workerSpec.ts); undefined fields take the worker's own defaults. */
export type WorkerFlags = WorkerSpec;

// The database URL is not among the flags: a child gets it in DATABASE_URL (see makeChild), because a command
// line is world-readable (ps, /proc/<pid>/cmdline) and the URL carries the password; a process's environment
// is readable only by its own user and root.
/** `eob server` argv, derived from the spec by its flag table. */
export function serverArgs(port: number, f: ServerFlags): string[] {
  return serverArgv(port, f);
}

/** `eob worker` argv, derived from the spec by its flag table. */
export function workerArgs(f: WorkerFlags): string[] {
  return workerArgv(f);
}

/** A running server child and where it listens. */
export interface ServerService {
  service: ChildService;
  port: number;
  /** http://127.0.0.1:<port> */
  baseUrl: string;
}

/** A primary/replica pair and the virtual address in front of its primary. */
export interface ReplicatedDatabase {
  pair: ReplicaPair;
  /** The virtual address: every child and the measurement pool connect through it. */
  vip: TcpProxy;
}

/** What serverFacts() reports. */
export interface ServerFacts {
  engine: EngineName;
  version: string;
  settings: Record<string, string | number | boolean | undefined>;
}

export class DatabaseFaultUnavailableError extends Error {
  override readonly name = 'DatabaseFaultUnavailableError';
}

export class SystemUnderTest {
  private readonly children = new Set<ChildService>();
  private readonly abort = new AbortController();
  private closed = false;
  private signalHandler: ((signal: NodeJS.Signals) => void) | undefined;
  private workerCount = 0;

  private constructor(
    readonly options: SystemOptions,
    /** The engine the database speaks. */
    readonly engine: EngineName,
    /** The URL every child and the measurement pool use. */
    readonly databaseUrl: string,
    /** The private database, or undefined when a URL was given (or the topology is a cluster: see `cluster`). */
    readonly privateDatabase: PrivateDatabase | undefined,
    /** The private cluster of a `galera` topology. */
    readonly cluster: GaleraCluster | undefined,
    /** The pair and its virtual address of a `primary-replica` topology. */
    readonly replicated: ReplicatedDatabase | undefined,
    /** Measurement pool: the sampler and the checker read through it, never through the system's own pools. */
    private readonly measurement: MeasurementPool,
    private readonly tempDir: string | undefined,
    private readonly removeTempDirOnExit: (() => void) | undefined,
  ) {}

  /** Starts (or connects to) the database and opens the measurement pool. */
  static async start(given: Partial<SystemOptions> = {}): Promise<SystemUnderTest> {
    const options: SystemOptions = { ...defaultSystemOptions(), ...definedOnly(given) };
    const givenUrl = options.databaseUrl;
    let managed: PrivateDatabase | undefined;
    let cluster: GaleraCluster | undefined;
    let replicated: ReplicatedDatabase | undefined;
    let tempDir: string | undefined;
    let removeOnExit: (() => void) | undefined;
    let url: string;
    let engine = options.engine;
    if (options.topology !== 'single' && givenUrl !== undefined) {
      throw new OptionsError(`system under test: topology ${options.topology} starts private servers; leave out the database URL (${redactDatabaseUrl(givenUrl)}) to use it`);
    }
    if (!(TOPOLOGIES as readonly string[]).includes(options.topology)) {
      throw new OptionsError(`system under test: topology must be one of ${TOPOLOGIES.join(', ')} (got ${JSON.stringify(options.topology)})`);
    }
    if (options.topology === 'galera' && engine !== 'mariadb') {
      throw new OptionsError(`system under test: topology galera is a MariaDB cluster; the engine must be mariadb (got ${engine})`);
    }
    if (options.topology !== 'primary-replica' && (options.replication !== undefined || options.semiSyncTimeoutMs !== undefined)) {
      throw new OptionsError(`system under test: replication and semiSyncTimeoutMs apply to topology primary-replica (topology is ${options.topology})`);
    }
    const level = options.topology === 'primary-replica' ? checkReplicationLevel('system under test', engine, options.replication ?? defaultReplicationLevel(engine)) : undefined;
    if (givenUrl !== undefined) {
      engine = engineOfGivenUrl(givenUrl, given.engine);
      url = givenUrl;
      if (engine === 'mariadb') {
        parseMysqlUrl(url);
        let sent: string | undefined;
        await ensureDatabase(url, undefined, (sql) => (sent = sql)).catch((error: Error) => {
          throw unreachable(url, error, sent);
        });
      }
      options.log(`database: using ${redactDatabaseUrl(url)} (faults on the database are unavailable)`);
    } else {
      // One of these left by a SIGKILLed harness holds ~260 MB after a standard bench.
      await sweepAbandonedScratchDirectories({ log: (line) => options.log(`database: ${line}`) });
      tempDir = await createScratchDirectory('eob-sut-');
      // A process that exits without close() (a second Ctrl-C, a start that failed) still removes the data
      // directory; close() removes it normally and drops this hook.
      const dir = tempDir;
      removeOnExit = () => rmSync(dir, { recursive: true, force: true });
      process.on('exit', removeOnExit);
      const port = await findFreePort();
      try {
        if (options.topology === 'galera') {
          // Each node's data directory inside the scratch directory, which is opened to the nodes' OS user.
          const nodeDatadirs = await clusterDataDirectories(tempDir, options.nodes);
          cluster = await GaleraCluster.create({
            nodes: options.nodes,
            nodeDatadirs,
            ports: [port],
            database: options.database,
            binDir: options.mariadbBinDir,
            searchPath: options.searchPath,
            provider: options.galeraProvider,
            log: (line) => options.log(line),
          });
        } else if (level !== undefined) {
          const pair = await startReplicaPair({
            engine,
            level,
            nodeDatadirs: await clusterDataDirectories(tempDir, 2),
            datadir: undefined,
            ports: [port],
            database: options.database,
            mariadbBinDir: options.mariadbBinDir,
            postgresBinDir: options.postgresBinDir,
            searchPath: options.searchPath,
            semiSyncTimeoutMs: options.semiSyncTimeoutMs,
            log: (line) => options.log(line),
          });
          try {
            replicated = { pair, vip: await TcpProxy.start({ targetPort: requirePrimary(pair).port }) };
          } catch (error) {
            await pair.remove().catch(() => undefined);
            throw error;
          }
        } else managed = await startPrivateDatabase({
          engine,
          port,
          // The fresh temp directory itself (not a folder inside it): created 0700, it would keep the server's
          // own OS user (mysql or postgres, when this runs as root) from reaching anything inside it.
          datadir: tempDir,
          database: options.database,
          mariadbBinDir: options.mariadbBinDir,
          postgresBinDir: options.postgresBinDir,
          searchPath: options.searchPath,
          log: (line) => options.log(line),
        });
      } catch (error) {
        await rm(tempDir, { recursive: true, force: true });
        throw error;
      }
      if (replicated !== undefined) {
        url = throughAddress(requirePrimary(replicated.pair).url, replicated.vip.port);
        options.log(
          `database: private ${engine} primary (port ${replicated.pair.nodes[0]?.port}) and ${replicated.pair.level} replica (port ${replicated.pair.nodes[1]?.port}) behind the virtual address 127.0.0.1:${replicated.vip.port}`,
        );
      } else if (cluster !== undefined) {
        url = cluster.urlOf(1);
        options.log(`database: private Galera cluster of ${cluster.nodes.length} nodes on ports ${cluster.nodes.map((n) => n.clientPort).join(', ')}`);
      } else {
        url = managed!.url;
        options.log(`database: private ${engine} on port ${port}, pid ${managed!.pid}`);
      }
    }
    if (givenUrl !== undefined && engine === 'postgres') {
      let sent: string | undefined;
      await ensurePgDatabase(url, undefined, (sql) => (sent = sql)).catch((error: Error) => {
        throw unreachable(url, error, sent);
      });
    }
    const measurement = openMeasurementPool(engine, url);
    const sut = new SystemUnderTest(options, engine, url, managed, cluster, replicated, measurement, tempDir, removeOnExit);
    if (options.handleSignals) sut.installSignalHandlers();
    return sut;
  }

  /** The private database under its MariaDB-era name. */
  get managedDatabase(): PrivateDatabase | undefined {
    return this.privateDatabase;
  }

  /** The engine seam's implementation for this database: the reads the bench and chaos measure with. */
  get sql(): SqlEngine {
    return this.measurement.database.engine;
  }

  /** The measurement pool as the system's Database (sessions, transactions), for the SQL ceiling. */
  get database(): Database {
    return this.measurement.database;
  }

  /** SQL through the measurement pool. */
  get db(): SqlExecutor {
    return this.measurement.db;
  }

  /** The measurement pool's mysql2 pool, for MariaDB-only measurement scripts; an error on PostgreSQL. */
  get pool(): Pool {
    if (this.measurement.mysqlPool === undefined) throw new Error(`system under test: sut.pool is MariaDB's mysql2 pool; this system runs ${this.engine} (use sut.db)`);
    return this.measurement.mysqlPool;
  }

  /** Aborted on SIGINT / SIGTERM of this process: stop measuring, write what was measured, then close(). */
  get interrupted(): AbortSignal {
    return this.abort.signal;
  }

  /** The private database, for faults; throws a clear error when a URL was given. */
  requirePrivateDatabase(): PrivateDatabase {
    if (this.privateDatabase === undefined) {
      throw new DatabaseFaultUnavailableError(
        `faults on the database need the private database, but a database URL was given (${redactDatabaseUrl(this.databaseUrl)}); unset MYSQL_URL / DATABASE_URL to use them`,
      );
    }
    return this.privateDatabase;
  }

  /** The same, under its MariaDB-era name. */
  requireManagedDatabase(): PrivateDatabase {
    return this.requirePrivateDatabase();
  }

  /**
   * The server's version and the durability settings a result depends on, recorded with every result:
   * MariaDB's innodb_flush_log_at_trx_commit, sync_binlog, log_bin; PostgreSQL's fsync, synchronous_commit,
   * full_page_writes (known for the private server; a given one reports its version only).
   */
  async serverFacts(): Promise<ServerFacts> {
    if (this.engine === 'mariadb') {
      const d = await selectDurability(this.db);
      return {
        engine: 'mariadb',
        version: d.version,
        settings: {
          innodb_flush_log_at_trx_commit: d.flushLogAtTrxCommit,
          sync_binlog: d.syncBinlog,
          log_bin: d.logBin,
          ...(this.replication === undefined ? {} : { replication: this.replication }),
        },
      };
    }
    if (this.privateDatabase instanceof PrivatePostgres) {
      const i = await this.privateDatabase.info();
      return {
        engine: 'postgres',
        version: i.version,
        settings: { fsync: i.fsync, synchronous_commit: i.synchronousCommit, full_page_writes: i.fullPageWrites, wal_sync_method: i.walSyncMethod, shared_buffers: i.sharedBuffers },
      };
    }
    return { engine: 'postgres', version: await selectPgServerVersion(this.db), settings: {} };
  }

  /** The database server's pid (private database only; a cluster's node 1; a pair's current primary). */
  get dbPid(): number | undefined {
    return this.privateDatabase?.pid ?? this.cluster?.node(1).server.pid ?? this.replicated?.pair.primary?.pid;
  }

  /** The topology the database runs as. */
  get topology(): Topology {
    return this.cluster !== undefined ? 'galera' : this.replicated !== undefined ? 'primary-replica' : 'single';
  }

  /** primary-replica: the replication level; undefined on the other topologies. */
  get replication(): ReplicationLevel | undefined {
    return this.replicated?.pair.level;
  }

  /** Each node's URL (one entry for a single server), node 1 first; a pair's are direct, not through the virtual address. */
  get nodeUrls(): string[] {
    return this.cluster?.urls ?? this.replicated?.pair.nodes.map((n) => n.url) ?? [this.databaseUrl];
  }

  /**
   * CPU seconds of the database server and any process under it so far (private database only): PostgreSQL's
   * backends are children of the postmaster, so the tree is what its CPU is. A cluster's is the sum over its
   * nodes (a node that is down counts what it had when last seen running: nothing, so sums across a node's
   * restart undercount).
   */
  dbCpuSeconds(): number | undefined {
    if (this.replicated !== undefined) {
      // The servers running now: a primary killed by a failover counts nothing from then on (an undercount).
      let total = 0;
      for (const node of this.replicated.pair.nodes) if (node.pid !== undefined) total += processTreeCpuSeconds(node.pid) ?? 0;
      return total;
    }
    if (this.cluster !== undefined) {
      let total = 0;
      for (const node of this.cluster.nodes) {
        const pid = node.server.pid;
        if (pid === undefined) return undefined;
        total += processTreeCpuSeconds(pid) ?? 0;
      }
      return total;
    }
    const pid = this.dbPid;
    return pid === undefined ? undefined : processTreeCpuSeconds(pid);
  }

  /** Every child started and not yet forgotten (stopped ones stay until close, so they can be restarted). */
  get services(): readonly ChildService[] {
    return [...this.children];
  }

  /**
   * Starts the HTTP server on a free port of 127.0.0.1; resolves when GET /healthz answers 200. `databaseUrl`
   * points it at another node of a cluster (or a proxy).
   */
  async startServer(flags: ServerFlags = {}, name = 'server', databaseUrl: string = this.databaseUrl): Promise<ServerService> {
    const port = await findFreePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const service = this.makeChild(name, serverArgs(port, flags), databaseUrl, { kind: 'http', url: `${baseUrl}/healthz` });
    await this.startChild(service);
    return { service, port, baseUrl };
  }

  /** Gap counts reported by every worker this system started (restarts and replacements included). */
  readonly workerGaps = new WorkerGapCounts();

  /**
   * Starts a worker; resolves when it printed a line starting `worker started`. `databaseUrl` overrides the
   * system's URL for this worker (the chaos harness points it at a TCP proxy in front of the database).
   */
  async startWorker(flags: WorkerFlags = {}, name?: string, databaseUrl: string = this.databaseUrl): Promise<ChildService> {
    this.workerCount += 1;
    const service = this.makeChild(name ?? `worker ${this.workerCount}`, workerArgs(flags), databaseUrl, {
      kind: 'line',
      pattern: /^worker started/,
    });
    this.workerGaps.watch(service);
    // A worker with a failpoint armed is started to die at it: its exit is the plan, not a crash.
    if ((flags.failpoints ?? []).length > 0) service.expectExit(`failpoint ${(flags.failpoints ?? []).join(',')} armed`);
    await this.startChild(service);
    return service;
  }

  /** Stops (SIGTERM, deadline, SIGKILL) and forgets a child. */
  async stopService(service: ChildService): Promise<void> {
    await service.stop();
    this.children.delete(service);
  }

  /** Stops every child (in parallel), closes the pool, then stops and removes the private database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.children].map((c) => c.stop()));
    this.children.clear();
    await this.measurement.end().catch(() => undefined);
    if (this.privateDatabase !== undefined) await this.privateDatabase.remove().catch((e: Error) => this.options.log(`database: remove failed: ${e.message}`));
    if (this.cluster !== undefined) await this.cluster.remove().catch((e: Error) => this.options.log(`database: removing the cluster failed: ${e.message}`));
    if (this.replicated !== undefined) {
      await this.replicated.vip.close().catch(() => undefined);
      await this.replicated.pair.remove().catch((e: Error) => this.options.log(`database: removing the primary/replica pair failed: ${e.message}`));
    }
    if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
    if (this.removeTempDirOnExit !== undefined) process.off('exit', this.removeTempDirOnExit);
    if (this.signalHandler !== undefined) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
    }
  }

  private makeChild(name: string, args: string[], databaseUrl: string, readiness: ChildService['spec']['readiness']): ChildService {
    if (this.closed) throw new Error(`system under test is closed; cannot start ${name}`);
    return new ChildService({
      name,
      command: process.execPath,
      args: [this.options.eobBin, ...args],
      env: childEnvironment({
        EOB_LOG: this.options.quietChildren ? 'quiet' : undefined,
        // The URL travels here, never on the command line; flags carry the failpoints, and no inherited
        // EOB_FAILPOINTS may arm one by accident. MYSQL_URL goes too for MariaDB (and is removed for
        // PostgreSQL), so an inherited one can never point a child at another server.
        DATABASE_URL: databaseUrl,
        MYSQL_URL: engineOfUrl(databaseUrl) === 'mariadb' ? databaseUrl : undefined,
        EOB_FAILPOINTS: undefined,
      }),
      readiness,
      startTimeoutMs: this.options.childStartTimeoutMs,
      stopTimeoutMs: this.options.childStopTimeoutMs,
    });
  }

  private async startChild(service: ChildService): Promise<void> {
    this.children.add(service);
    service.onExit((status, _expected, cause) => {
      if (this.closed) return;
      const how = status.signal ?? `code ${status.code}`;
      if (cause === 'planned') this.options.log(`${service.name} exited as planned (${service.plannedExit}; ${how})`);
      else if (cause === 'unexpected') this.options.log(`${service.name} exited unexpectedly (${how}); last output:\n${service.outputTail(10)}`);
    });
    try {
      await service.start();
    } catch (error) {
      this.children.delete(service);
      throw error;
    }
  }

  private installSignalHandlers(): void {
    this.signalHandler = (signal) => {
      if (this.abort.signal.aborted) {
        // Second Ctrl-C: the 'exit' hooks SIGKILL the children and the private database.
        process.stderr.write(`\n${signal} again: exiting now\n`);
        process.exit(130);
      }
      process.stderr.write(`\n${signal}: stopping after the current step and writing what was measured (again to exit at once)\n`);
      this.abort.abort(new Error(`interrupted by ${signal}`));
    };
    process.on('SIGINT', this.signalHandler);
    process.on('SIGTERM', this.signalHandler);
  }
}

/** "cannot reach" for a connection failure only; any other error names the statement and SQLSTATE. */
function unreachable(url: string, error: Error, sent: string | undefined): Error {
  const engine = engineOfUrl(url) ?? 'mariadb';
  const kind = startupFailureKind(engine, error);
  if (kind !== 'unreachable') return new Error(startupFailureMessage({ engine, url, kind, error, sent, gaveUpAfterMs: undefined }), { cause: error });
  return new Error(
    `cannot reach the database at ${redactDatabaseUrl(url)}: ${error.message} (is the server running? leave out --mysql-url and unset MYSQL_URL and DATABASE_URL to use a private one)`,
    { cause: error },
  );
}

/** A pool of the engine's driver, seen only as SQL in and rows out. */
interface MeasurementPool {
  database: Database;
  db: SqlExecutor;
  end(): Promise<void>;
  /** MariaDB's mysql2 pool (the measurement scripts use it directly). */
  mysqlPool?: Pool;
}

function openMeasurementPool(engine: EngineName, url: string): MeasurementPool {
  if (engine === 'postgres') {
    const database = openDatabase({ url, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'harness' });
    // An idle session ended by a fault (a restart, pg_terminate_backend) is dropped; the next read meets the failure.
    database.onIdleError(() => undefined);
    return { database, db: database.executor(), end: () => database.end() };
  }
  const pool = createPool({ url, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'harness' });
  const database = databaseOf(pool);
  return { database, db: executorOf(pool), end: () => pool.end(), mysqlPool: pool };
}

/** The engine of a given URL; an error when its scheme is neither engine's or contradicts an explicit `engine`. */
function engineOfGivenUrl(url: string, explicit: EngineName | undefined): EngineName {
  const engine = engineOfUrl(url);
  if (engine === undefined) {
    throw new OptionsError(`system under test: the database URL must start with mysql:// or postgres:// (got ${redactDatabaseUrl(url)})`);
  }
  if (explicit !== undefined && explicit !== engine) {
    throw new OptionsError(`system under test: engine is ${explicit} but the database URL ${redactDatabaseUrl(url)} is a ${engine} URL; give one or the other`);
  }
  return engine;
}


function requirePrimary(pair: ReplicaPair): { url: string; port: number } {
  const primary = pair.primary;
  if (primary === undefined) throw new Error('system under test: the replica pair has no primary');
  return primary;
}

/** `url` with its host and port replaced by the virtual address's (user, password and database unchanged). */
export function throughAddress(url: string, port: number, host = '127.0.0.1'): string {
  const via = new URL(url);
  via.hostname = host;
  via.port = String(port);
  return via.toString();
}

/**
 * One data directory per node inside the run's scratch directory (0700, so the nodes' OS user could not enter
 * it): the scratch directory is opened for traversal only (0711), and each node's directory is handed to that
 * user by its launcher.
 */
async function clusterDataDirectories(scratch: string, nodes: number): Promise<string[]> {
  await chmod(scratch, 0o711);
  const dirs: string[] = [];
  for (let i = 1; i <= nodes; i += 1) {
    const dir = path.join(scratch, `node-${i}`);
    await mkdir(dir, { mode: 0o700 });
    dirs.push(dir);
  }
  return dirs;
}
