// A private MariaDB (or MySQL) server that this process starts from the binaries on the machine, on its own
// port, socket and data directory on 127.0.0.1, with durable settings, and that it can kill with any signal,
// restart on the same data directory (InnoDB crash recovery), pause, stop cleanly and remove.
//
// Lifetime: callers stop it (`stop()` or `remove()`; tests do it in `after()`). As a safety net the server is
// started under `setpriv --pdeathsig KILL` when setpriv exists, so it dies with this process even if this
// process is SIGKILLed, and an 'exit' hook SIGKILLs any server still running when this process exits
// normally. The server runs in its own process group, so a Ctrl-C on the terminal reaches only this process,
// which then stops the server cleanly. (pdeathsig follows the thread that spawned the server: start it from
// the main thread, not from a worker thread that may end first.) No hook runs on a SIGKILL, so the run
// directory stays behind then; the first start of each instance sweeps those whose processes are all gone.
//
// Measured on this machine (2 cores shared with other test runs, MariaDB 10.11.19, durable settings below):
// fresh data directory (template cache warm) until ready 0.28-0.50 s (median 0.50 s of 6 under load; up to
// 1.5 s at load average 9), 1.3 s when the template must first be initialised; SIGKILL under 4-8 inserting
// connections, then restart until ready (InnoDB crash recovery) 0.13-0.31 s (median 0.14 s; up to 0.56 s
// under heavy load), no acknowledged row lost. Clean restart ~0.1-0.2 s.
//
// Only its owner can enter it: root has a random password kept 0600 in the data directory (the URL carries
// it), the server listens on 127.0.0.1 only, `secure_file_priv` confines INTO OUTFILE / LOAD DATA / LOAD_FILE
// to a private folder, and when this process is root the server runs as the `mysql` system user, so even SQL
// run as the database's root cannot write files as the machine's root. Its temp files, that folder and its
// socket live in a run directory with a fresh random name, 0700, owned by the server's OS user.
import { chown, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { ensureDatabase } from '../../system/db/mariadb/pool.ts';
import { findServerBinaries } from './serverBinaries.ts';
import type { ServerBinaries, ServerFlavor } from './serverBinaries.ts';
import { basedirArg, createDataDirectory } from './dataDirectory.ts';
import { DataDirectoryError, restrictDataDirectory } from '../dataDirectory.ts';
import { formatMysqlUrl } from '../../system/db/mariadb/mysqlUrl.ts';
import { createPrivateSubdirectory } from '../privateDirectory.ts';
import { initFileSql } from './rootPassword.ts';
import { readOrCreatePassword } from '../password.ts';
import { firstBlockedDirectory, lookupUser, type OsUser } from '../serverUser.ts';
import { defaultServerOptions, PortInUseError, portTaken, resolveServerOptions, ServerProcess, stopServerByPidFile, type ServerKind } from '../serverProcess.ts';
import { definedOnly, matches, OptionsError } from '../../validate.ts';

const COMPONENT = 'managed database';

export interface ManagedDatabaseOptions {
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Data directory; default `.eob/db-<port>` under `cwd`. */
  datadir: string;
  /** Directory searched first for mariadbd / mariadb-install-db (config's EOB_MARIADB_BIN_DIR). */
  binDir: string | undefined;
  /** Also search `searchPath` and the usual system directories; false = binDir only. */
  searchSystemPaths: boolean;
  /** PATH's directories (config's readEnvironment().searchPath). */
  searchPath: readonly string[];
  /** Database created once the server answers; the URL names it. */
  database: string;
  /**
   * Create `database` on the first start (default). False for a server that receives it from elsewhere: a
   * Galera joiner gets it from the node it joins, and refuses statements until it has caught up.
   */
  createDatabase: boolean;
  /** Deadline for a start or restart to answer a ping (crash recovery included). */
  startTimeoutMs: number;
  /** How long a clean shutdown may take before the server is SIGKILLed. */
  stopTimeoutMs: number;
  /** Appended after the durable defaults, so they can override them (e.g. `--innodb-buffer-pool-size=1G`). */
  serverArgs: readonly string[];
  /** Delete an existing data directory of ours and start from a fresh one; otherwise an existing one is reused. */
  fresh: boolean;
  /**
   * Where initialised template data directories are cached: a directory of the user running eob that no one
   * else may write to (one that is not is refused); undefined initialises each directory from scratch.
   */
  templateCacheDir: string | undefined;
  /**
   * When this process is root: the OS user the server runs as (default `mysql`, the distribution's server
   * user). If that user does not exist or cannot reach the data directory, the server runs as root and a line
   * says why. undefined runs it as root. A non-root process always runs the server as itself.
   */
  serverUser: string | undefined;
  /** Lifecycle lines (starting, ready, exited) and the server's stderr. */
  log: (line: string) => void;
  /**
   * Root's password, when several servers must share one (the nodes of a cluster: the worker reaches every node
   * with the credentials of the one it was given). Kept in the data directory like a password made there; a data
   * directory that already holds another one is refused. undefined: made once per data directory.
   */
  password: string | undefined;
}

export const DEFAULT_PORT = 3307;

export function defaultManagedDatabaseOptions(cwd: string = process.cwd()): ManagedDatabaseOptions {
  return {
    ...defaultServerOptions('db', DEFAULT_PORT, cwd),
    searchSystemPaths: true,
    searchPath: [],
    database: 'eob',
    createDatabase: true,
    serverArgs: [],
    serverUser: 'mysql',
    password: undefined,
  };
}

/**
 * Fills in defaults and validates; a datadir left out follows the port (`.eob/db-<port>`), so two servers on
 * two ports never share a directory by accident.
 */
export function resolveManagedDatabaseOptions(given: Partial<ManagedDatabaseOptions>, cwd: string = process.cwd()): ManagedDatabaseOptions {
  const defaults = defaultManagedDatabaseOptions(cwd);
  const defined = definedOnly<ManagedDatabaseOptions>(given);
  const options: ManagedDatabaseOptions = { ...defaults, ...defined };
  resolveServerOptions(COMPONENT, options, given.datadir !== undefined, 'db', cwd);
  matches(COMPONENT, 'database', options.database, /^[A-Za-z0-9_$]{1,64}$/, 'a database name of letters, digits and _');
  if (options.serverUser !== undefined) matches(COMPONENT, 'serverUser', options.serverUser, /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, 'an OS user name');
  if (!options.searchSystemPaths && options.binDir === undefined) {
    throw new OptionsError(`${COMPONENT}: searchSystemPaths is false, so binDir must name the directory holding mariadbd`);
  }
  if (!Array.isArray(options.serverArgs) || options.serverArgs.some((a) => typeof a !== 'string' || !a.startsWith('--'))) {
    throw new OptionsError(`${COMPONENT}: serverArgs must be options starting with -- (got ${JSON.stringify(options.serverArgs)})`);
  }
  return options;
}

export class DatabaseStartError extends Error {
  override readonly name = 'DatabaseStartError';
}
export { DataDirectoryError, PortInUseError };

const MARIADB: ServerKind = {
  component: COMPONENT,
  logPrefix: 'database',
  stderrPrefix: 'mariadbd',
  commands: ['mariadbd', 'mysqld'],
  pidFile: 'mysqld.pid',
  stopSignal: 'SIGTERM',
  forks: false,
  StartError: DatabaseStartError,
  serverName: 'server',
  inUseAdvice: (datadir) => `stop it with \`eob db stop --datadir ${datadir}\` or pick another --datadir`,
};

export interface DatabaseInfo {
  flavor: ServerFlavor;
  version: string;
  innodbFlushLogAtTrxCommit: number;
  syncBinlog: number;
  logBin: boolean;
  bufferPoolBytes: number;
  doublewrite: boolean;
  port: number;
  datadir: string;
}

// Durability is the point of the exercise: every commit is flushed to disk (flush_log_at_trx_commit=1), the
// doublewrite buffer stays on (the default), the binary log stays off (it would add a second fsync per commit
// and this tool does not replicate), and sync_binlog=1 makes a binary log that someone turns on through
// serverArgs durable too. A 256 MB buffer pool holds every table a bench run makes (a million messages are
// ~150 MB) without eating the memory of a shared 2-core machine.
const DURABLE_SETTINGS = [
  '--innodb-flush-log-at-trx-commit=1',
  '--sync-binlog=1',
  '--skip-log-bin',
  '--innodb-buffer-pool-size=256M',
];

// Error-log lines quoted in a start failure.
const TAIL_LINES = 20;

export class ManagedDatabase extends ServerProcess<ManagedDatabaseOptions, ServerBinaries> {
  private startedOnce = false;

  constructor(options: Partial<ManagedDatabaseOptions> = {}) {
    super(MARIADB, resolveManagedDatabaseOptions(options));
  }

  /** mysql://root:<password>@127.0.0.1:<port>/<database>; known once start() has prepared the data directory. */
  get url(): string {
    return formatMysqlUrl({ user: 'root', password: this.rootPassword, host: '127.0.0.1', port: this.options.port, database: this.options.database });
  }
  get errorLogPath(): string {
    return path.join(this.options.datadir, 'error.log');
  }
  /**
   * The server's own temp dir, in its run directory. With the default (/tmp) several servers share one
   * directory, and a run of this tool saw a private server's on-disk temp table vanish mid-query ("Error on
   * delete of '/tmp/#sql-temptable-...' (Errcode: 2)"), failing the bench's final check. Not inside the data
   * directory, where it would show up as a database.
   */
  get tmpDir(): string {
    return path.join(this.runDirectory, 'tmp');
  }
  /** `secure_file_priv`: the only folder INTO OUTFILE, LOAD DATA INFILE and LOAD_FILE() may touch. */
  get secureFileDir(): string {
    return path.join(this.runDirectory, 'files');
  }
  /** In the run directory: a short path (unix sockets allow 108 bytes) that only the server's user can enter. */
  get socketPath(): string {
    return path.join(this.runDirectory, 'mysqld.sock');
  }
  private get initFilePath(): string {
    return path.join(this.runDirectory, 'init.sql');
  }
  /** Root's password, read from (or made in) the data directory on the first start. */
  private get rootPassword(): string {
    return this.superuserPassword;
  }

  /**
   * Starts the server (first time: finds the binaries and prepares the data directory); resolves with the
   * milliseconds from spawn until it answered a ping.
   */
  async start(): Promise<number> {
    const binaries = await this.findBinaries();
    await this.refuseRunningOrPortTaken();
    if (!this.startedOnce) await this.prepareDataDirectory(() => this.createDataDirectory(binaries));
    await this.refuseDataDirectoryInUse();
    if (!this.startedOnce) await this.secure(binaries);
    const restarting = this.startedOnce;
    this.startedOnce = true;
    return this.spawnAndWait(binaries, restarting);
  }

  /** Version and the durability settings the server actually runs with, for results and logs. */
  async info(): Promise<DatabaseInfo> {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: this.options.port, user: 'root', password: this.rootPassword, connectTimeout: 5_000 });
    try {
      const [rows] = await conn.query(
        'SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS syncBinlog, ' +
          '@@log_bin AS logBin, @@innodb_buffer_pool_size AS bufferPool, @@innodb_doublewrite AS doublewrite',
      );
      const row = (rows as Record<string, unknown>[])[0] ?? {};
      return {
        flavor: this.binaries?.flavor ?? (/mariadb/i.test(String(row.version)) ? 'mariadb' : 'mysql'),
        version: String(row.version),
        innodbFlushLogAtTrxCommit: Number(row.flush),
        syncBinlog: Number(row.syncBinlog),
        logBin: Number(row.logBin) === 1,
        bufferPoolBytes: Number(row.bufferPool),
        doublewrite: Number(row.doublewrite) === 1,
        port: this.options.port,
        datadir: this.options.datadir,
      };
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** The last `lines` lines of the server's error log (empty if there is none yet). */
  async errorLogTail(lines = TAIL_LINES): Promise<string> {
    try {
      return (await readFile(this.errorLogPath, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  protected locateBinaries(): Promise<ServerBinaries> {
    return findServerBinaries({ binDir: this.options.binDir, searchSystemPaths: this.options.searchSystemPaths, searchPath: this.options.searchPath });
  }

  /** The engine's part of preparing a data directory: a new one, copied from the template cache when it can be. */
  private async createDataDirectory(binaries: ServerBinaries): Promise<string> {
    const { datadir } = this.options;
    await createDataDirectory({ binaries, datadir, templateCacheDir: this.options.templateCacheDir, timeoutMs: this.options.startTimeoutMs });
    return `created data directory ${datadir}`;
  }

  /**
   * Once per instance, before the first start: picks the server's OS user, makes the data directory 0700 and
   * hands it to that user, reads (or makes) root's password, and creates the run directory.
   */
  private async secure(binaries: ServerBinaries): Promise<void> {
    this.account = await this.chooseServerAccount(binaries);
    await restrictDataDirectory(this.options.datadir, this.account);
    this.password = await readOrCreatePassword(this.options.datadir, this.options.password);
    if (this.runDir === undefined) {
      await this.makeRunDirectory('eob-db-');
      await createPrivateSubdirectory(this.tmpDir, this.account);
      await createPrivateSubdirectory(this.secureFileDir, this.account);
    }
  }

  private async chooseServerAccount(binaries: ServerBinaries): Promise<OsUser | undefined> {
    const name = this.options.serverUser;
    if (process.getuid?.() !== 0 || name === undefined) return undefined;
    const user = await lookupUser(name);
    if (user === undefined) {
      this.options.log(`database: there is no "${name}" user on this machine, so the server runs as root`);
      return undefined;
    }
    if (user.uid === 0) return undefined;
    for (const target of [this.options.datadir, binaries.server]) {
      const blocked = await firstBlockedDirectory(user, target);
      if (blocked !== undefined) {
        this.options.log(
          `database: the ${name} user cannot enter ${blocked} (on the way to ${target}), so the server runs as root; ` +
            `a --datadir it can reach (e.g. under /var/tmp) runs it as ${name}`,
        );
        return undefined;
      }
    }
    return user;
  }

  private serverArgs(binaries: ServerBinaries, restarting: boolean): string[] {
    const { datadir, port } = this.options;
    return [
      '--no-defaults', // must come first: ignore /etc/mysql/my.cnf and the system server's settings
      `--datadir=${datadir}`,
      // Started as the server's user already when there is one; mariadbd refuses to run as root without this.
      ...(process.getuid?.() === 0 && this.account === undefined ? ['--user=root'] : []),
      '--bind-address=127.0.0.1',
      `--port=${port}`,
      `--socket=${this.socketPath}`,
      `--pid-file=${this.pidFilePath}`,
      `--log-error=${this.errorLogPath}`,
      `--tmpdir=${this.tmpDir}`,
      `--secure-file-priv=${this.secureFileDir}`,
      // Sets root's password before the first connection is accepted; deleted once the server is ready.
      `--init-file=${this.initFilePath}`,
      // After a SIGKILL the port can linger for a moment; wait for it instead of failing the restart.
      ...(restarting ? ['--port-open-timeout=10'] : []),
      // MariaDB: the install made root@127.0.0.1, so no reverse lookups. MySQL only has root@localhost, which
      // a TCP login from 127.0.0.1 matches only through name resolution.
      ...(binaries.flavor === 'mariadb' ? ['--skip-name-resolve'] : ['--loose-mysqlx=OFF']),
      ...basedirArg(binaries),
      ...DURABLE_SETTINGS,
      ...this.options.serverArgs,
    ];
  }

  private async spawnAndWait(binaries: ServerBinaries, restarting: boolean): Promise<number> {
    const args = this.serverArgs(binaries, restarting);
    await writeFile(this.initFilePath, initFileSql(binaries.flavor, this.rootPassword), { mode: 0o600 });
    if (this.account !== undefined) await chown(this.initFilePath, this.account.uid, this.account.gid);
    this.options.log(
      `database: starting ${binaries.flavor} ${binaries.version} on 127.0.0.1:${this.options.port} as ${this.serverUser}, data directory ${this.options.datadir}`,
    );
    const readyMs = await this.spawnUntilReady(
      { command: binaries.server, args, cwd: this.options.datadir, account: this.account, runDirectory: this.runDirectory },
      async () => {
        const ping = await this.ping();
        // The init file sets the password before the first login is accepted, so a refusal is final.
        if (ping !== 'denied') return ping === 'ok';
        return `the server refused root's password from ${this.passwordFile}; if the data directory is yours, delete that file and start again (a new password is set)`;
      },
      (what) => this.startFailure(what),
    );
    const pid = this.pid;
    await rm(this.initFilePath, { force: true });
    // Once, on the first start: a restart finds the database in its data directory. (A Galera node restarted
    // after a kill answers connections before it has caught up with the cluster, and refuses statements until
    // then: creating the database there would fail the restart.)
    if (!restarting && this.options.createDatabase) await ensureDatabase(this.url);
    this.options.log(`database: ready on 127.0.0.1:${this.options.port} in ${readyMs} ms (pid ${pid})`);
    return readyMs;
  }

  private async ping(): Promise<'ok' | 'denied' | 'no answer'> {
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection({ host: '127.0.0.1', port: this.options.port, user: 'root', password: this.rootPassword, connectTimeout: 2_000 });
      await conn.ping();
      return 'ok';
    } catch (error) {
      return (error as { errno?: number }).errno === 1045 ? 'denied' : 'no answer';
    } finally {
      await conn?.end().catch(() => undefined);
    }
  }

  private async startFailure(what: string): Promise<Error> {
    await rm(this.initFilePath, { force: true });
    const logTail = await this.errorLogTail();
    const stderr = this.tailText.trim();
    let details = [logTail === '' ? '' : `last lines of ${this.errorLogPath}:\n${logTail}`, stderr === '' ? '' : `stderr:\n${stderr}`]
      .filter((s) => s !== '')
      .join('\n');
    // A failed init file is quoted in the error log, password and all.
    if (this.password !== undefined) details = details.replaceAll(this.password, '***');
    const message = `${COMPONENT} on port ${this.options.port}: ${what}${details === '' ? '' : `\n${details}`}`;
    if (/Address already in use|Bind on TCP\/IP port/i.test(details)) {
      return portTaken(message, this.options.port);
    }
    return new DatabaseStartError(message);
  }
}

/**
 * Stops the server whose pid file is in `datadir` (one started by another process, e.g. `eob db start`):
 * SIGTERM, then waits until the process is gone. Resolves false when no server was running there.
 */
export function stopServerInDataDirectory(datadir: string, timeoutMs = 60_000): Promise<boolean> {
  return stopServerByPidFile(datadir, MARIADB, timeoutMs);
}
