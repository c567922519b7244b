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
// it if this process exits without stopping it. The socket directory a SIGKILLed starter leaves behind is
// swept by a later start, once its processes are all gone.
//
// Replication. With `replication` set, the server is one half of a streaming pair (postgresReplicaPair.ts
// drives both): a primary lets a REPLICATION role connect from 127.0.0.1 with its password (one pg_hba line,
// the role made at each start). Either half hands eob's own files at the top of its data directory to the
// server's user, because a base backup (of a primary, or of a standby once promoted) is read by the server
// itself and would fail on a file it cannot open (that user owns every byte of the data already, so the
// password file tells it nothing new). A standby's data directory is a base backup of its primary
// (postgresBaseBackup.ts), and it starts as a read-only hot standby: the start writes nothing through it (roles
// and databases arrive from the primary); it streams under its cluster_name.
//
// Measured on this machine (2 cores shared with other engineers' test runs, load average ~9, PostgreSQL 15.20):
// initdb of the template ~0.9 s (once per binary version); a fresh data directory until the URL works 0.6-2.8 s
// (copy of ~40 MB 1.1-1.3 s of it, CREATE DATABASE and the password most of the rest); SIGKILL with 8 busy
// sessions, then restart with WAL crash recovery until ready 135-1,782 ms (12 runs); clean restart ~0.1 s.
import path from 'node:path';
import pg from 'pg';
import { pathOnlyEnvironment } from '../../config.ts';
import { DataDirectoryError, restrictDataDirectory } from '../dataDirectory.ts';
import { chown, readdir } from 'node:fs/promises';
import { readOrCreatePassword } from '../password.ts';
import { firstBlockedDirectory, lookupUser, type OsUser } from '../serverUser.ts';
import { defaultServerOptions, PortInUseError, portTaken, resolveServerOptions, ServerProcess, stopServerByPidFile, type ServerKind } from '../serverProcess.ts';
import { definedOnly, intInRange, matches, OptionsError } from '../../validate.ts';
import { findPostgresBinaries, type PostgresBinaries } from './postgresBinaries.ts';
import { allowReplicationLogin, createPostgresDataDirectory, SUPERUSER } from './postgresDataDirectory.ts';
import { createStandbyDataDirectory, type BaseBackupSource } from './postgresBaseBackup.ts';

export { DataDirectoryError, PortInUseError };

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
  /** One half of a streaming-replication pair; undefined: a standalone server. */
  replication: PostgresReplication | undefined;
}

/**
 * - primary: lets `user` (made at each start with REPLICATION LOGIN and `password`) stream WAL from 127.0.0.1.
 * - standby: a new data directory is a base backup of the primary described by `source`, and the server
 *   starts as a hot standby streaming from it. An existing one is reused as it is (a standby, or a standby
 *   promoted since).
 */
export type PostgresReplication = { role: 'primary'; user: string; password: string } | ({ role: 'standby' } & BaseBackupSource);

export const DEFAULT_POSTGRES_PORT = 5433;

export function defaultPrivatePostgresOptions(cwd: string = process.cwd()): PrivatePostgresOptions {
  return {
    ...defaultServerOptions('pg', DEFAULT_POSTGRES_PORT, cwd),
    database: 'eob',
    settings: {},
    serverUser: 'postgres',
    replication: undefined,
  };
}

const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/;

export function resolvePrivatePostgresOptions(given: Partial<PrivatePostgresOptions>, cwd: string = process.cwd()): PrivatePostgresOptions {
  const defined = definedOnly<PrivatePostgresOptions>(given);
  const options: PrivatePostgresOptions = { ...defaultPrivatePostgresOptions(cwd), ...defined };
  resolveServerOptions(COMPONENT, options, given.datadir !== undefined, 'pg', cwd);
  // Lower case: an unquoted name, so CREATE DATABASE needs no quoting and the URL no encoding.
  matches(COMPONENT, 'database', options.database, /^[a-z_][a-z0-9_]{0,62}$/, 'a database name of lower-case letters, digits and _');
  matches(COMPONENT, 'serverUser', options.serverUser, /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, 'an OS user name');
  for (const [name, value] of Object.entries(options.settings)) {
    if (!SETTING_NAME.test(name) || typeof value !== 'string') {
      throw new OptionsError(`${COMPONENT}: settings must map setting names (e.g. shared_buffers) to string values (got ${JSON.stringify(name)})`);
    }
  }
  if (options.replication !== undefined) validateReplication(options.replication);
  return options;
}

function validateReplication(r: PostgresReplication): void {
  const c = `${COMPONENT} replication`;
  if (r.role !== 'primary' && r.role !== 'standby') throw new OptionsError(`${c}: role must be primary or standby (got ${JSON.stringify((r as { role: unknown }).role)})`);
  // Unquoted identifiers and conninfo values: no quoting or escaping needed anywhere they are written.
  matches(c, 'user', r.user, /^[a-z_][a-z0-9_]{0,62}$/, 'a role name of lower-case letters, digits and _');
  matches(c, 'password', r.password, /^[A-Za-z0-9_-]{16,128}$/, '16-128 of A-Z a-z 0-9 _ -');
  if (r.role === 'standby') {
    intInRange(c, 'primaryPort', r.primaryPort, 1, 65_535);
    matches(c, 'slot', r.slot, /^[a-z0-9_]{1,63}$/, 'a slot name of lower-case letters, digits and _');
    matches(c, 'applicationName', r.applicationName, /^[a-z0-9_]{1,63}$/, 'a name of lower-case letters, digits and _');
  }
}

/**
 * What either half of a pair needs on top of the durable settings: WAL with enough detail for a standby
 * (wal_level=replica, on the standby too, so that once promoted it can feed one), senders and slots for it, and
 * a standby that answers reads while it replays (hot_standby). Before the caller's settings, which may override them.
 */
const REPLICATION_SETTINGS: Readonly<Record<string, string>> = {
  wal_level: 'replica',
  max_wal_senders: '8',
  max_replication_slots: '8',
  hot_standby: 'on',
};

export class PostgresStartError extends Error {
  override readonly name = 'PostgresStartError';
}

const POSTGRES: ServerKind = {
  component: COMPONENT,
  logPrefix: 'postgres',
  stderrPrefix: 'postgres',
  commands: ['postgres'],
  pidFile: 'postmaster.pid',
  stopSignal: 'SIGINT',
  forks: true,
  StartError: PostgresStartError,
  serverName: 'PostgreSQL',
  inUseAdvice: () => 'stop it or pick another --datadir',
};

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

// SQLSTATEs a starting server answers with until it accepts connections: 57P03 cannot_connect_now ("the
// database system is starting up" / "is in recovery mode").
const STARTING_UP = '57P03';

interface ClientTarget {
  /** A socket directory or 127.0.0.1. */
  host: string;
  database: string;
  password?: string;
}

export class PrivatePostgres extends ServerProcess<PrivatePostgresOptions, PostgresBinaries> {
  private prepared = false;

  constructor(options: Partial<PrivatePostgresOptions> = {}) {
    super(POSTGRES, resolvePrivatePostgresOptions(options));
  }

  /** postgres://postgres:<password>@127.0.0.1:<port>/<database>; known once start() has prepared the data directory. */
  get url(): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(this.superuserPassword)}@127.0.0.1:${this.options.port}/${this.options.database}`;
  }
  /** The private directory holding the server's unix socket (`.s.PGSQL.<port>`). */
  get socketDirectory(): string {
    return this.runDirectory;
  }

  /** Starts the server (the first time: finds the binaries, prepares the data directory); resolves with ms from spawn to ready. */
  async start(): Promise<number> {
    const binaries = await this.findBinaries();
    await this.refuseRunningOrPortTaken();
    if (!this.prepared) {
      this.account = await this.chooseServerAccount(binaries);
      await this.prepareDataDirectory(() => this.createDataDirectory(binaries));
      const replication = this.options.replication;
      if (replication?.role === 'primary') await allowReplicationLogin(this.options.datadir, replication.user);
      await restrictDataDirectory(this.options.datadir, this.account);
      this.password = await readOrCreatePassword(this.options.datadir);
      await this.makeRunDirectory('eob-pg-');
      this.prepared = true;
    }
    await this.refuseDataDirectoryInUse();
    return this.spawnAndWait(binaries);
  }

  protected locateBinaries(): Promise<PostgresBinaries> {
    return findPostgresBinaries(this.options.binDir);
  }

  protected override removed(): void {
    this.prepared = false;
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
    return this.tailText;
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

  /** The engine's part of preparing a data directory: a standby's base backup of its primary, or a new one. */
  private async createDataDirectory(binaries: PostgresBinaries): Promise<string> {
    const { datadir } = this.options;
    const replication = this.options.replication;
    if (replication?.role === 'standby') {
      await createStandbyDataDirectory({ binaries, datadir, source: replication, account: this.account, timeoutMs: this.options.startTimeoutMs });
      return `base backup of the primary on port ${replication.primaryPort} into ${datadir}`;
    }
    await createPostgresDataDirectory({
      binaries,
      datadir,
      templateCacheDir: this.options.templateCacheDir,
      account: this.account,
      timeoutMs: this.options.startTimeoutMs,
    });
    return `created data directory ${datadir}`;
  }

  private serverArgs(): string[] {
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(this.options.port),
      unix_socket_directories: this.socketDirectory,
      unix_socket_permissions: '0700',
      ...DURABLE_SETTINGS,
      ...(this.options.replication === undefined ? {} : REPLICATION_SETTINGS),
      // A WAL receiver whose primary_conninfo names no application_name streams under the cluster_name.
      ...(this.options.replication?.role === 'standby' ? { cluster_name: this.options.replication.applicationName } : {}),
      ...this.options.settings,
    };
    return ['-D', this.options.datadir, ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])];
  }

  private async spawnAndWait(binaries: PostgresBinaries): Promise<number> {
    this.options.log(
      `postgres: starting PostgreSQL ${binaries.version} on 127.0.0.1:${this.options.port} as ${this.serverUser}, data directory ${this.options.datadir}`,
    );
    const readyMs = await this.spawnUntilReady(
      {
        command: binaries.postgres,
        args: this.serverArgs(),
        cwd: this.options.datadir,
        env: pathOnlyEnvironment({ LC_ALL: 'C' }),
        account: this.account,
        runDirectory: this.socketDirectory,
      },
      () => this.socketPing(),
      (what) => this.startFailure(what),
    );
    const pid = this.pid;
    await this.setPasswordAndDatabase();
    this.options.log(`postgres: ready on 127.0.0.1:${this.options.port} in ${readyMs} ms (pid ${pid})`);
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
      this.note(`ping: ${(error as Error).message}`);
      return false;
    }
  }

  /**
   * Through the trusted socket: gives the superuser this data directory's password (a copied template carries a
   * random one nobody knows) and creates the URL's database; then proves the URL itself logs in over TCP.
   */
  private async setPasswordAndDatabase(): Promise<void> {
    const password = this.superuserPassword;
    const replication = this.options.replication;
    await this.withClient({ host: this.socketDirectory, database: 'postgres' }, async (client) => {
      // A standby is read-only; its roles, passwords and databases are the primary's, replayed.
      const standby = (await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]?.standby === true;
      if (standby) return;
      // The password's alphabet ([A-Za-z0-9_-], checked by readOrCreatePassword) needs no quoting; ALTER ROLE
      // takes no parameters. password_encryption is scram-sha-256, so only its SCRAM verifier is stored.
      await client.query(`ALTER ROLE ${SUPERUSER} PASSWORD '${password}'`);
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.options.database]);
      // FILE_COPY (PostgreSQL 15+) copies template1's files and checkpoints, instead of writing each of its
      // blocks into the WAL (the 15 default): that took ~0.8 s of a start here.
      const strategy = (this.binaries?.major ?? 0) >= 15 ? ' STRATEGY = FILE_COPY' : '';
      if (found.rowCount === 0) await client.query(`CREATE DATABASE ${this.options.database}${strategy}`);
      if (replication?.role === 'primary') {
        // The name and password were checked against [a-z0-9_] and [A-Za-z0-9_-] by the options.
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [replication.user]);
        await client.query(`${exists.rowCount === 0 ? 'CREATE' : 'ALTER'} ROLE ${replication.user} WITH REPLICATION LOGIN PASSWORD '${replication.password}'`);
      }
    });
    // A standby too: once promoted, the next standby is a base backup of it.
    if (replication !== undefined) await this.shareEobFilesWithServer();
    await this.withClient({ host: '127.0.0.1', database: this.options.database, password }, (client) => client.query('SELECT 1'));
  }

  /** A base backup is read by the server: eob's files at the top of its data directory must be readable by it. */
  private async shareEobFilesWithServer(): Promise<void> {
    const account = this.account;
    if (account === undefined) return;
    for (const entry of await readdir(this.options.datadir)) {
      if (entry.startsWith('.eob-')) await chown(path.join(this.options.datadir, entry), account.uid, account.gid);
    }
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
    const stderr = this.tailText.trim();
    const message = `${COMPONENT} on port ${this.options.port}: ${what}${stderr === '' ? '' : `\nlast server log lines:\n${stderr}`}`;
    if (/could not bind|Address already in use/i.test(stderr)) {
      return portTaken(message, this.options.port);
    }
    return new PostgresStartError(message);
  }

}

/**
 * Stops the PostgreSQL whose postmaster.pid is in `datadir` (one started by another process): SIGINT (fast
 * shutdown), then waits until it is gone. Resolves false when none was running there.
 */
export function stopPostgresInDataDirectory(datadir: string, timeoutMs = 60_000): Promise<boolean> {
  return stopServerByPidFile(datadir, POSTGRES, timeoutMs);
}
