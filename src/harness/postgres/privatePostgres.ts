// A private PostgreSQL server that this process starts from the binaries on the machine: its own data directory
// (copied from an initdb template), its own port on 127.0.0.1 and its own socket directory, durable settings,
// a password kept 0600 beside the data; it can be SIGKILLed and restarted on the same data directory (WAL crash
// recovery), paused, stopped cleanly and removed. It never touches the machine's own PostgreSQL service.
//
// Processes. `postgres` is a postmaster plus one process per connection and a few helpers, and each child
// calls setsid(), so they are not in the postmaster's process group: a group signal reaches the postmaster alone.
// SIGKILL and SIGSTOP/SIGCONT therefore go to the postmaster and each of its children (found through /proc):
// killing only the postmaster leaves its backends running on the old shared memory until they notice, and
// stopping only the postmaster leaves backends answering, which is not a hung database. The postmaster is stopped
// first, so it cannot fork a new child while the others are signalled. A clean stop is SIGINT to the postmaster ("fast" shutdown: sessions are ended, a
// checkpoint written); SIGTERM would be "smart" shutdown, which waits for every client to disconnect.
//
// Users. initdb and postgres refuse to run as root, so when this process is root the server runs as the
// `postgres` system user (the distribution's server user), which must be able to reach the data directory;
// otherwise the start fails and says which directory blocks it. A non-root user runs it as themselves.
//
// Password. The superuser `postgres` logs in over TCP only with the data directory's password (SCRAM); the
// unix socket, in a fresh 0700 directory of the server's user, is trusted, and each start sets the password
// through it before the URL is handed out. Nobody but the server's user and root can reach that socket.
//
// Lifetime: callers stop it (`stop()` or `remove()`). As with the private MariaDB, the postmaster runs under
// `setpriv --pdeathsig KILL` when setpriv exists (its backends follow it when it dies), and an 'exit' hook kills
// it if this process exits without stopping it.
//
// Measured on this machine (2 cores shared with other engineers' test runs, load average ~9, PostgreSQL 15.20):
// initdb of the template ~0.9 s (once per binary version); a fresh data directory until the URL works 0.6-2.8 s
// (copy of ~40 MB 1.1-1.3 s of it, CREATE DATABASE and the password most of the rest); SIGKILL with 8 busy
// sessions, then restart with WAL crash recovery until ready 135-1,782 ms (12 runs); clean restart ~0.1 s.
import { waitUntilStopped } from '../processStopped.ts';
import { childPids } from '../childPids.ts';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { access, constants, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { DataDirectoryError, ensureWritableDirectory, inspectDataDirectory, removeDataDirectory, restrictDataDirectory } from '../dataDirectory.ts';
import { createRunDirectory, defaultCacheDirectory } from '../privateDirectory.ts';
import { PASSWORD_FILE, readOrCreatePassword } from '../password.ts';
import { firstBlockedDirectory, lookupUser, type OsUser } from '../serverUser.ts';
import { isPortFree } from '../ports.ts';
import { killOnExit } from '../killOnExit.ts';
import { intInRange, matches, nonEmptyString, OptionsError } from '../../validate.ts';
import { findPostgresBinaries, type PostgresBinaries } from './postgresBinaries.ts';
import { createPostgresDataDirectory, SUPERUSER } from './postgresDataDirectory.ts';

export { DataDirectoryError };

const COMPONENT = 'private postgres';

export interface PrivatePostgresOptions {
  /** TCP port on 127.0.0.1 (the socket file is named after it too). */
  port: number;
  /** Data directory; default `.eob/pg-<port>` under `cwd`. */
  datadir: string;
  /** Directory holding initdb and postgres (config's EOB_POSTGRES_BIN_DIR); undefined searches /usr/lib/postgresql/<newest>/bin and the usual places. */
  binDir: string | undefined;
  /** Database created once the server answers; the URL names it. */
  database: string;
  /** Deadline for a start or restart to answer (crash recovery included). */
  startTimeoutMs: number;
  /** How long a clean shutdown may take before the server is SIGKILLed. */
  stopTimeoutMs: number;
  /** Server settings passed as `-c name=value` after the durable defaults, so they can override them. */
  settings: Readonly<Record<string, string>>;
  /** Delete an existing data directory of ours and start from a fresh one; otherwise an existing one is reused. */
  fresh: boolean;
  /** Where initdb templates are cached (a private directory of the user running eob); undefined runs initdb every time. */
  templateCacheDir: string | undefined;
  /** When this process is root: the OS user the server runs as (PostgreSQL cannot run as root). */
  serverUser: string;
  /** Lifecycle lines and the server's log. */
  log: (line: string) => void;
}

export const DEFAULT_POSTGRES_PORT = 5433;

export function defaultPrivatePostgresOptions(cwd: string = process.cwd()): PrivatePostgresOptions {
  return {
    port: DEFAULT_POSTGRES_PORT,
    datadir: path.join(cwd, '.eob', `pg-${DEFAULT_POSTGRES_PORT}`),
    binDir: undefined,
    database: 'eob',
    startTimeoutMs: 60_000,
    stopTimeoutMs: 60_000,
    settings: {},
    fresh: false,
    templateCacheDir: defaultCacheDirectory(),
    serverUser: 'postgres',
    log: () => undefined,
  };
}

const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/;

export function resolvePrivatePostgresOptions(given: Partial<PrivatePostgresOptions>, cwd: string = process.cwd()): PrivatePostgresOptions {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<PrivatePostgresOptions>;
  const options: PrivatePostgresOptions = { ...defaultPrivatePostgresOptions(cwd), ...defined };
  intInRange(COMPONENT, 'port', options.port, 1, 65_535);
  if (given.datadir === undefined) options.datadir = path.join(cwd, '.eob', `pg-${options.port}`);
  options.datadir = path.resolve(cwd, nonEmptyString(COMPONENT, 'datadir', options.datadir));
  // Lower case: an unquoted name, so CREATE DATABASE needs no quoting and the URL no encoding.
  matches(COMPONENT, 'database', options.database, /^[a-z_][a-z0-9_]{0,62}$/, 'a database name of lower-case letters, digits and _');
  intInRange(COMPONENT, 'startTimeoutMs', options.startTimeoutMs, 100, 3_600_000);
  intInRange(COMPONENT, 'stopTimeoutMs', options.stopTimeoutMs, 100, 3_600_000);
  if (options.binDir !== undefined) nonEmptyString(COMPONENT, 'binDir', options.binDir);
  matches(COMPONENT, 'serverUser', options.serverUser, /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, 'an OS user name');
  for (const [name, value] of Object.entries(options.settings)) {
    if (!SETTING_NAME.test(name) || typeof value !== 'string') {
      throw new OptionsError(`${COMPONENT}: settings must map setting names (e.g. shared_buffers) to string values (got ${JSON.stringify(name)})`);
    }
  }
  if (typeof options.log !== 'function') throw new OptionsError(`${COMPONENT}: log must be a function`);
  return options;
}

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}
export class PostgresStartError extends Error {
  override readonly name = 'PostgresStartError';
}

export interface PostgresInfo {
  engine: 'postgres';
  version: string;
  fsync: boolean;
  synchronousCommit: string;
  fullPageWrites: boolean;
  walSyncMethod: string;
  sharedBuffers: string;
  port: number;
  datadir: string;
}

/**
 * Durability is the point: every commit waits for its WAL flush (synchronous_commit=on, fsync=on) and pages are
 * written whole into the WAL after a checkpoint (full_page_writes=on), so a crash never leaves a torn page.
 * These are PostgreSQL's defaults, set explicitly so a postgresql.conf cannot weaken them. Logs go to stderr
 * (this process keeps the tail); the socket directory is the private run directory.
 */
const DURABLE_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  logging_collector: 'off',
  log_destination: 'stderr',
  ssl: 'off',
};

const TAIL_LINES = 20;
const PING_INTERVAL_MS = 25;
// SQLSTATEs a starting server answers with until it accepts connections: 57P03 cannot_connect_now ("the
// database system is starting up" / "is in recovery mode").
const STARTING_UP = '57P03';

let setprivPath: Promise<string | undefined> | undefined;
function findSetpriv(): Promise<string | undefined> {
  setprivPath ??= (async () => {
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // try the next one
      }
    }
    return undefined;
  })();
  return setprivPath;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** True when `pid` is a live (not zombie) postgres process. */
async function isLivePostgres(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return comm === 'postgres' && state !== 'Z' && state !== 'X';
}

function sendTo(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The postmaster's pid: the first line of postmaster.pid (the other lines hold the data directory, port, socket...). */
async function readPostmasterPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const liveRunDirectories = new Set<string>();
let runDirectoryHookInstalled = false;
function deleteOnExit(dir: string): void {
  liveRunDirectories.add(dir);
  if (runDirectoryHookInstalled) return;
  runDirectoryHookInstalled = true;
  process.on('exit', () => {
    for (const d of liveRunDirectories) rmSync(d, { recursive: true, force: true });
  });
}

interface ClientTarget {
  /** A socket directory or 127.0.0.1. */
  host: string;
  database: string;
  password?: string;
}

export class PrivatePostgres {
  readonly options: PrivatePostgresOptions;
  private binaries: PostgresBinaries | undefined;
  private password: string | undefined;
  private account: OsUser | undefined;
  private runDir: string | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private paused = false;
  private stderrTail: string[] = [];
  private prepared = false;

  constructor(options: Partial<PrivatePostgresOptions> = {}) {
    this.options = resolvePrivatePostgresOptions(options);
  }

  static async create(options: Partial<PrivatePostgresOptions> = {}): Promise<PrivatePostgres> {
    const db = new PrivatePostgres(options);
    await db.start();
    return db;
  }

  get port(): number {
    return this.options.port;
  }
  get datadir(): string {
    return this.options.datadir;
  }
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database>; known once start() has prepared the data directory. */
  get url(): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(this.superuserPassword)}@127.0.0.1:${this.options.port}/${this.options.database}`;
  }
  /** The 0600 file in the data directory that keeps the superuser's password. */
  get passwordFile(): string {
    return path.join(this.options.datadir, PASSWORD_FILE);
  }
  get serverUser(): string {
    return this.account?.name ?? os.userInfo().username;
  }
  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined;
  }
  get isPaused(): boolean {
    return this.paused;
  }
  /** The private directory holding the server's unix socket (`.s.PGSQL.<port>`). */
  get socketDirectory(): string {
    if (this.runDir === undefined) throw new Error(`${COMPONENT}: the socket directory exists once start() has been called`);
    return this.runDir;
  }
  get pidFilePath(): string {
    return path.join(this.options.datadir, 'postmaster.pid');
  }
  private get superuserPassword(): string {
    if (this.password === undefined) throw new Error(`${COMPONENT}: the password (and so the URL) is known once start() has prepared the data directory`);
    return this.password;
  }

  /** Starts the server (the first time: finds the binaries, prepares the data directory); resolves with ms from spawn to ready. */
  async start(): Promise<number> {
    if (this.child !== undefined) throw new PostgresStartError(`the server on port ${this.options.port} is already running (pid ${this.child.pid})`);
    this.binaries ??= await findPostgresBinaries(this.options.binDir);
    const binaries = this.binaries;
    if (!(await isPortFree(this.options.port))) {
      throw new PortInUseError(`port ${this.options.port} on 127.0.0.1 is already in use; pick another with --port (or stop whatever listens there)`);
    }
    if (!this.prepared) {
      this.account = await this.chooseServerAccount(binaries);
      await this.prepareDataDirectory(binaries);
      await restrictDataDirectory(this.options.datadir, this.account);
      this.password = await readOrCreatePassword(this.options.datadir);
      if (this.runDir === undefined) {
        this.runDir = await createRunDirectory('eob-pg-', this.account);
        deleteOnExit(this.runDir);
      }
      this.prepared = true;
    }
    await this.refuseDataDirectoryInUse();
    return this.spawnAndWait(binaries);
  }

  /** Sends `signal` and resolves once the server has exited; SIGKILL goes to the postmaster and all its children. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new Error(`${COMPONENT}: kill(${signal}) would never see the server exit; use pause() / resume()`);
    }
    const exited = this.exited;
    if (this.child === undefined || exited === undefined) return;
    if (signal !== 'SIGKILL' && this.paused) this.resume();
    const killed = this.signal(signal, signal === 'SIGKILL');
    if (await this.timedOut(exited, this.options.stopTimeoutMs)) {
      this.options.log(`postgres: still running ${this.options.stopTimeoutMs} ms after ${signal}; sending SIGKILL`);
      killed.push(...this.signal('SIGKILL', true));
      await exited;
    }
    await this.waitUntilGone(killed);
  }

  /**
   * The postmaster's exit can be reported before its SIGKILLed children have finished dying, and a child that
   * still holds the old shared memory makes the next start fail ("pre-existing shared memory block is still in
   * use"; seen here under load). So a kill resolves only once each of them is gone (or a zombie, which holds
   * nothing).
   */
  private async waitUntilGone(pids: readonly number[]): Promise<void> {
    const deadline = performance.now() + this.options.stopTimeoutMs;
    for (const pid of pids) {
      while (await isLivePostgres(pid)) {
        if (performance.now() > deadline) throw new PostgresStartError(`${COMPONENT}: server process ${pid} still running after SIGKILL`);
        await delay(10);
      }
    }
  }

  /** Clean ("fast") shutdown: SIGINT ends the sessions and writes a checkpoint; SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    await this.kill('SIGINT');
  }

  /** Restarts on the same data directory: `clean` stops first, otherwise SIGKILL (crash recovery on the way up). */
  async restart(options: { clean: boolean } = { clean: true }): Promise<number> {
    await this.kill(options.clean ? 'SIGINT' : 'SIGKILL');
    return this.start();
  }

  whenExited(): Promise<void> {
    return this.child === undefined || this.exited === undefined ? Promise.resolve() : this.exited;
  }

  /** SIGSTOP to the postmaster and each of its children: it stops answering but keeps its connections open (a hung database). */
  pause(): void {
    if (this.child === undefined) throw new Error(`${COMPONENT}: pause() while the server is not running`);
    const children = this.signal('SIGSTOP', true);
    this.paused = true;
    // kill(2) only queues the signal: return once every process has really stopped, or a query may still be answered.
    waitUntilStopped([...(this.child.pid === undefined ? [] : [this.child.pid]), ...children]);
  }

  resume(): void {
    if (this.child === undefined) return;
    this.signal('SIGCONT', true);
    this.paused = false;
  }

  /** Stops the server if it runs and deletes its data directory (only one made by this tool) and its socket directory. */
  async remove(): Promise<void> {
    await this.stop();
    await removeDataDirectory(this.options.datadir);
    if (this.runDir !== undefined) {
      await rm(this.runDir, { recursive: true, force: true });
      liveRunDirectories.delete(this.runDir);
      this.runDir = undefined;
      this.prepared = false;
    }
  }

  /** Version and the durability settings the server actually runs with, for results and logs. */
  async info(): Promise<PostgresInfo> {
    const rows = await this.withClient({ host: '127.0.0.1', database: this.options.database, password: this.superuserPassword }, async (client) =>
      (
        await client.query<Record<string, string>>(
          `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
                  current_setting('synchronous_commit') AS synchronous_commit, current_setting('full_page_writes') AS full_page_writes,
                  current_setting('wal_sync_method') AS wal_sync_method, current_setting('shared_buffers') AS shared_buffers`,
        )
      ).rows,
    );
    const row = rows[0] ?? {};
    return {
      engine: 'postgres',
      version: String(row.version),
      fsync: row.fsync === 'on',
      synchronousCommit: String(row.synchronous_commit),
      fullPageWrites: row.full_page_writes === 'on',
      walSyncMethod: String(row.wal_sync_method),
      sharedBuffers: String(row.shared_buffers),
      port: this.options.port,
      datadir: this.options.datadir,
    };
  }

  /** The server's last log lines (its stderr). */
  logTail(): string {
    return this.stderrTail.join('\n');
  }

  private async chooseServerAccount(binaries: PostgresBinaries): Promise<OsUser | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    const name = this.options.serverUser;
    const user = await lookupUser(name);
    if (user === undefined || user.uid === 0) {
      throw new PostgresStartError(
        `PostgreSQL refuses to run as root, and there is no non-root "${name}" user to run it as; ` +
          'create one (`useradd --system postgres`, or install the postgresql package, which does) or run eob as a non-root user',
      );
    }
    for (const target of [this.options.datadir, binaries.postgres]) {
      const blocked = await firstBlockedDirectory(user, target);
      if (blocked !== undefined) {
        throw new PostgresStartError(
          `PostgreSQL refuses to run as root, so it runs as the ${name} user, who cannot enter ${blocked} (on the way to ${target}); ` +
            'pick a --datadir that user can reach (e.g. under /var/tmp or /tmp)',
        );
      }
    }
    return user;
  }

  private async prepareDataDirectory(binaries: PostgresBinaries): Promise<void> {
    const { datadir } = this.options;
    let state = await inspectDataDirectory(datadir);
    if (state === 'foreign') {
      throw new DataDirectoryError(`data directory ${datadir} is not empty and was not created by eob; pick another one with --datadir (or empty it yourself)`);
    }
    if (state === 'managed' && this.options.fresh) {
      await this.refuseDataDirectoryInUse();
      await removeDataDirectory(datadir);
      state = 'missing';
    }
    if (state === 'managed') {
      await ensureWritableDirectory(datadir);
      this.options.log(`postgres: reusing data directory ${datadir}`);
      return;
    }
    const started = performance.now();
    await createPostgresDataDirectory({
      binaries,
      datadir,
      templateCacheDir: this.options.templateCacheDir,
      account: this.account,
      timeoutMs: this.options.startTimeoutMs,
    });
    this.options.log(`postgres: created data directory ${datadir} in ${Math.round(performance.now() - started)} ms`);
  }

  /** A server of another process on this data directory: say so plainly instead of PostgreSQL's lock-file message. */
  private async refuseDataDirectoryInUse(): Promise<void> {
    const pid = await readPostmasterPid(this.pidFilePath);
    if (pid === undefined || pid === this.child?.pid) return;
    if (await isLivePostgres(pid)) {
      throw new PostgresStartError(
        `data directory ${this.options.datadir} is in use by a running PostgreSQL (pid ${pid}); stop it or pick another --datadir`,
      );
    }
  }

  private serverArgs(): string[] {
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(this.options.port),
      unix_socket_directories: this.socketDirectory,
      unix_socket_permissions: '0700',
      ...DURABLE_SETTINGS,
      ...this.options.settings,
    };
    return ['-D', this.options.datadir, ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])];
  }

  private async spawnAndWait(binaries: PostgresBinaries): Promise<number> {
    const args = this.serverArgs();
    const setpriv = await findSetpriv();
    const [command, commandArgs] =
      setpriv === undefined ? [binaries.postgres, args] : [setpriv, ['--pdeathsig', 'KILL', '--', binaries.postgres, ...args]];
    this.stderrTail = [];
    this.options.log(
      `postgres: starting PostgreSQL ${binaries.version} on 127.0.0.1:${this.options.port} as ${this.serverUser}, data directory ${this.options.datadir}`,
    );
    const started = performance.now();
    // Spawned as the server's user (node drops supplementary groups); setpriv's death signal is set after
    // that, since the kernel clears it when a process changes its user.
    const child = spawn(command, commandArgs, {
      cwd: this.options.datadir,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      ...(this.account === undefined ? {} : { uid: this.account.uid, gid: this.account.gid }),
    });
    killOnExit(child);
    this.child = child;
    this.paused = false;
    let exitDescription = '';
    this.exited = new Promise<void>((resolve) => {
      const onGone = (code: number | null, signal: NodeJS.Signals | null): void => {
        exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        if (this.child === child) {
          this.child = undefined;
          this.paused = false;
        }
        this.options.log(`postgres: server pid ${child.pid} exited (${exitDescription})`);
        resolve();
      };
      child.once('exit', onGone);
      child.once('error', (error) => {
        this.stderrTail.push(error.message);
        onGone(null, null);
      });
    });
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.options.log(`postgres: ${line}`);
        this.stderrTail.push(line);
        if (this.stderrTail.length > TAIL_LINES) this.stderrTail.shift();
      }
    });
    const exited = this.exited;
    let dead = false;
    void exited.then(() => (dead = true));
    const deadline = started + this.options.startTimeoutMs;
    for (;;) {
      if (await this.socketPing()) break;
      if (dead) throw this.startFailure(`the server exited during start (${exitDescription})`);
      if (performance.now() > deadline) {
        const killed = this.signal('SIGKILL', true);
        await exited;
        await this.waitUntilGone(killed);
        throw this.startFailure(`the server did not answer within ${this.options.startTimeoutMs} ms (killed it)`);
      }
      await Promise.race([delay(PING_INTERVAL_MS), exited]);
    }
    const readyMs = Math.round(performance.now() - started);
    await this.setPasswordAndDatabase();
    this.options.log(`postgres: ready on 127.0.0.1:${this.options.port} in ${readyMs} ms (pid ${child.pid})`);
    return readyMs;
  }

  /** True once the server accepts a session on its socket (it refuses with 57P03 while starting or recovering). */
  private async socketPing(): Promise<boolean> {
    try {
      await this.withClient({ host: this.socketDirectory, database: 'postgres' }, (client) => client.query('SELECT 1'));
      return true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === STARTING_UP || code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET') return false;
      // Anything else (out of connections, a broken hba) will not pass by waiting; the loop's deadline still applies.
      this.stderrTail.push(`ping: ${(error as Error).message}`);
      return false;
    }
  }

  /**
   * Through the trusted socket: gives the superuser this data directory's password (a copied template carries a
   * random one nobody knows) and creates the URL's database; then proves the URL itself logs in over TCP.
   */
  private async setPasswordAndDatabase(): Promise<void> {
    const password = this.superuserPassword;
    await this.withClient({ host: this.socketDirectory, database: 'postgres' }, async (client) => {
      // The password's alphabet ([A-Za-z0-9_-], checked by readOrCreatePassword) needs no quoting; ALTER ROLE
      // takes no parameters. password_encryption is scram-sha-256, so only its SCRAM verifier is stored.
      await client.query(`ALTER ROLE ${SUPERUSER} PASSWORD '${password}'`);
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.options.database]);
      // FILE_COPY (PostgreSQL 15+) copies template1's files and checkpoints, instead of writing each of its
      // blocks into the WAL (the 15 default): that took ~0.8 s of a start here.
      const strategy = (this.binaries?.major ?? 0) >= 15 ? ' STRATEGY = FILE_COPY' : '';
      if (found.rowCount === 0) await client.query(`CREATE DATABASE ${this.options.database}${strategy}`);
    });
    await this.withClient({ host: '127.0.0.1', database: this.options.database, password }, (client) => client.query('SELECT 1'));
  }

  private async withClient<T>(target: ClientTarget, use: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: target.host,
      port: this.options.port,
      user: SUPERUSER,
      database: target.database,
      ...(target.password === undefined ? {} : { password: target.password }),
      connectionTimeoutMillis: 2_000,
    });
    // A session ended by a shutdown or kill emits 'error' on the client; the awaited call reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await use(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private startFailure(what: string): Error {
    const stderr = this.stderrTail.join('\n').trim();
    const message = `${COMPONENT} on port ${this.options.port}: ${what}${stderr === '' ? '' : `\nlast server log lines:\n${stderr}`}`;
    if (/could not bind|Address already in use/i.test(stderr)) {
      return new PortInUseError(`${message}\nport ${this.options.port} is taken; pick another with --port`);
    }
    return new PostgresStartError(message);
  }

  /**
   * Sends `signal` to the postmaster, or (`all`) to it and every child it has (returned). For SIGKILL and SIGSTOP the
   * postmaster is stopped first so the set of children cannot change; for SIGCONT the children go first, so the
   * postmaster never runs while a backend it waits on is still stopped.
   */
  private signal(signal: NodeJS.Signals, all: boolean): number[] {
    const pid = this.child?.pid;
    if (pid === undefined) return [];
    if (!all) {
      sendTo(pid, signal);
      return [];
    }
    if (signal === 'SIGCONT') {
      for (const c of childPids(pid)) sendTo(c, 'SIGCONT');
      sendTo(pid, 'SIGCONT');
      return [];
    }
    sendTo(pid, 'SIGSTOP');
    const children = childPids(pid);
    for (const c of children) sendTo(c, signal);
    sendTo(pid, signal);
    return children;
  }

  private async timedOut(promise: Promise<void>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), ms);
    });
    try {
      return await Promise.race([promise.then(() => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Stops the PostgreSQL whose postmaster.pid is in `datadir` (one started by another process): SIGINT (fast
 * shutdown), then waits until it is gone. Resolves false when none was running there.
 */
export async function stopPostgresInDataDirectory(datadir: string, timeoutMs = 60_000): Promise<boolean> {
  const pid = await readPostmasterPid(path.join(path.resolve(datadir), 'postmaster.pid'));
  if (pid === undefined || !(await isLivePostgres(pid))) return false;
  // A paused server would keep the shutdown pending forever.
  for (const c of childPids(pid)) sendTo(c, 'SIGCONT');
  sendTo(pid, 'SIGCONT');
  sendTo(pid, 'SIGINT');
  const deadline = performance.now() + timeoutMs;
  while (await isLivePostgres(pid)) {
    if (performance.now() > deadline) {
      throw new Error(`${COMPONENT}: server pid ${pid} in ${datadir} still running ${timeoutMs} ms after SIGINT; kill -9 ${pid} if it must go`);
    }
    await delay(50);
  }
  return true;
}
