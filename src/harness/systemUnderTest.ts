// The system under test as the bench and the chaos harness see it: a database (a private one this process
// starts, or the server named by MYSQL_URL), the HTTP server and N workers as child processes, and a
// measurement pool. Stable API, used by src/scenarios/sweep.ts and the chaos harness:
//
//   const sut = await SystemUnderTest.start({ mysqlUrl: env.mysqlUrl, ... });
//   const server = await sut.startServer({ coalesce: true });     // ready: GET /healthz answered 200
//   const worker = await sut.startWorker({ batchSize: 1000 });    // ready: it printed `worker started`
//   await worker.kill(); await worker.start(); server.pause(); ...
//   sut.requireManagedDatabase().kill('SIGKILL')                  // db faults; throws with MYSQL_URL
//   sut.interrupted                                               // AbortSignal: Ctrl-C / SIGTERM of the harness
//   await sut.close();                                            // stops every child, then the private db
import { WorkerGapCounts } from './workerGapCounts.ts';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { childEnvironment } from '../config.ts';
import { createPool, ensureDatabase, executorOf, parseMysqlUrl, redactMysqlUrl, type Pool } from '../system/db/pool.ts';
import { ManagedDatabase } from './mariadb/managedDatabase.ts';
import { findFreePort } from './ports.ts';
import type { SqlExecutor } from '../system/pubsub/types.ts';
import { ChildService } from './childService.ts';
import { workerArgv, type WorkerSpec } from '../system/workerSpec.ts';
import { serverArgv, type ServerSpec } from '../system/server/spec.ts';
import { processTreeCpuSeconds } from './processCpu.ts';
import { projectRoot } from '../projectRoot.ts';

export interface SystemOptions {
  /** Use this server instead of starting a private one (then faults on the database are unavailable). */
  mysqlUrl: string | undefined;
  /** Database name on the private server. */
  database: string;
  /** Where to look first for mariadbd (config's mariadbBinDir) and PATH's directories (config's searchPath). */
  mariadbBinDir: string | undefined;
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
    mysqlUrl: undefined,
    database: 'eob',
    mariadbBinDir: undefined,
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

// The database URL is not among the flags: a child gets it in MYSQL_URL (see makeChild), because a command
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
    /** The URL every child and the measurement pool use. */
    readonly mysqlUrl: string,
    /** The private database, or undefined when MYSQL_URL was given. */
    readonly managedDatabase: ManagedDatabase | undefined,
    /** Measurement pool: the sampler and the checker read through it, never through the system's own pools. */
    readonly pool: Pool,
    private readonly tempDir: string | undefined,
    private readonly removeTempDirOnExit: (() => void) | undefined,
  ) {}

  /** Starts (or connects to) the database and opens the measurement pool. */
  static async start(given: Partial<SystemOptions> = {}): Promise<SystemUnderTest> {
    const options: SystemOptions = { ...defaultSystemOptions(), ...definedOnly(given) };
    let managed: ManagedDatabase | undefined;
    let tempDir: string | undefined;
    let removeOnExit: (() => void) | undefined;
    let url: string;
    if (options.mysqlUrl !== undefined) {
      parseMysqlUrl(options.mysqlUrl);
      url = options.mysqlUrl;
      await ensureDatabase(url).catch((error: Error) => {
        throw new Error(`cannot reach the database at MYSQL_URL=${redactMysqlUrl(url)}: ${error.message} (is the server running? unset MYSQL_URL to use a private one)`);
      });
      options.log(`database: using MYSQL_URL ${redactMysqlUrl(url)} (faults on the database are unavailable)`);
    } else {
      tempDir = await mkdtemp(path.join(os.tmpdir(), 'eob-sut-'));
      // A process that exits without close() (a second Ctrl-C, a start that failed) still removes the data
      // directory (~260 MB after a standard bench); close() removes it normally and drops this hook.
      const dir = tempDir;
      removeOnExit = () => rmSync(dir, { recursive: true, force: true });
      process.on('exit', removeOnExit);
      const port = await findFreePort();
      managed = await ManagedDatabase.create({
        port,
        // The fresh temp directory itself (not a folder inside it): created 0700, it would keep the server's
        // own OS user (mysql, when this runs as root) from reaching anything inside it.
        datadir: tempDir,
        database: options.database,
        binDir: options.mariadbBinDir,
        searchPath: options.searchPath,
        fresh: true,
        log: (line) => options.log(line),
      });
      url = managed.url;
      options.log(`database: private server on port ${port}, pid ${managed.pid}`);
    }
    const pool = createPool({ url, connectionLimit: 4, connectTimeoutMs: 5_000 });
    const sut = new SystemUnderTest(options, url, managed, pool, tempDir, removeOnExit);
    if (options.handleSignals) sut.installSignalHandlers();
    return sut;
  }

  /** SQL through the measurement pool. */
  get db(): SqlExecutor {
    return executorOf(this.pool);
  }

  /** Aborted on SIGINT / SIGTERM of this process: stop measuring, write what was measured, then close(). */
  get interrupted(): AbortSignal {
    return this.abort.signal;
  }

  /** The private database, for faults; throws a clear error when MYSQL_URL was given. */
  requireManagedDatabase(): ManagedDatabase {
    if (this.managedDatabase === undefined) {
      throw new DatabaseFaultUnavailableError(
        `faults on the database need the private database, but MYSQL_URL was given (${redactMysqlUrl(this.mysqlUrl)}); unset MYSQL_URL to use them`,
      );
    }
    return this.managedDatabase;
  }

  /** The database server's pid (private database only). */
  get dbPid(): number | undefined {
    return this.managedDatabase?.pid;
  }

  /** CPU seconds of the database server and any process under it so far (private database only). */
  dbCpuSeconds(): number | undefined {
    const pid = this.dbPid;
    return pid === undefined ? undefined : processTreeCpuSeconds(pid);
  }

  /** Every child started and not yet forgotten (stopped ones stay until close, so they can be restarted). */
  get services(): readonly ChildService[] {
    return [...this.children];
  }

  /** Starts the HTTP server on a free port of 127.0.0.1; resolves when GET /healthz answers 200. */
  async startServer(flags: ServerFlags = {}, name = 'server'): Promise<ServerService> {
    const port = await findFreePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const service = this.makeChild(name, serverArgs(port, flags), this.mysqlUrl, { kind: 'http', url: `${baseUrl}/healthz` });
    await this.startChild(service);
    return { service, port, baseUrl };
  }

  /**
   * Starts a worker; resolves when it printed a line starting `worker started`. `mysqlUrl` overrides the
   * system's URL for this worker (the chaos harness points it at a TCP proxy in front of the database).
   */
  /** Gap counts reported by every worker this system started (restarts and replacements included). */
  readonly workerGaps = new WorkerGapCounts();

  async startWorker(flags: WorkerFlags = {}, name?: string, mysqlUrl: string = this.mysqlUrl): Promise<ChildService> {
    this.workerCount += 1;
    const service = this.makeChild(name ?? `worker ${this.workerCount}`, workerArgs(flags), mysqlUrl, {
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
    await this.pool.end().catch(() => undefined);
    if (this.managedDatabase !== undefined) await this.managedDatabase.remove().catch((e: Error) => this.options.log(`database: remove failed: ${e.message}`));
    if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
    if (this.removeTempDirOnExit !== undefined) process.off('exit', this.removeTempDirOnExit);
    if (this.signalHandler !== undefined) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
    }
  }

  private makeChild(name: string, args: string[], mysqlUrl: string, readiness: ChildService['spec']['readiness']): ChildService {
    if (this.closed) throw new Error(`system under test is closed; cannot start ${name}`);
    return new ChildService({
      name,
      command: process.execPath,
      args: [this.options.eobBin, ...args],
      env: childEnvironment({
        EOB_LOG: this.options.quietChildren ? 'quiet' : undefined,
        // The URL travels here, never on the command line; flags carry the failpoints, and no inherited
        // EOB_FAILPOINTS may arm one by accident.
        MYSQL_URL: mysqlUrl,
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

function definedOnly<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
