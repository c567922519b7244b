// A PostgreSQL primary and a streaming hot standby on two private servers (privatePostgres.ts, each with every
// protection of a single one: own port on 127.0.0.1, own 0700 data directory and socket, durable settings, the
// `postgres` OS user under root), implementing the engine-neutral ReplicaPair the harness drives.
//
// Formation: the primary starts; a REPLICATION role may log in from 127.0.0.1 with a random password; the
// standby's data directory is a pg_basebackup of it (-R: primary_conninfo + standby.signal; a replication slot
// keeps the WAL the standby still needs); the pair is ready once the primary's pg_stat_replication shows the
// standby streaming (and, under sync, as its synchronous standby).
//
// Levels:
// - async: a commit is answered once it is on the primary's disk; a failover loses what the standby had not
//   received.
// - sync: synchronous_standby_names names the standby and synchronous_commit=on: a commit is answered once the
//   standby has FLUSHED its WAL. Not remote_apply: a promotion replays every WAL record the standby has flushed
//   before it accepts a write, so "flushed" is already all a failover needs; remote_apply also waits for the
//   replay, which only matters to a reader of the standby (nobody here reads a standby) and costs every commit
//   the replay's latency. Only the primary gets the setting: the promoted standby has no standby of its own,
//   and would otherwise wait for one forever at every commit. After a failover the pair is one server: a
//   commit on it is on its own disk only, whatever the level was.
//
// holdReplica clears the standby's primary_conninfo and reloads: its WAL receiver exits and no new WAL arrives
// (SIGSTOP is not enough: the WAL sent meanwhile waits in the socket buffer and is read on SIGCONT). Under
// async, the primary goes on answering commits the standby will never have; under sync, commits wait.
// killPrimary SIGKILLs the postmaster and every backend; the old primary is never started again (a writer that
// came back beside the promoted standby would be a second primary). promoteReplica refuses while the old
// primary runs, for the same reason.
import path from 'node:path';
import pg from 'pg';
import { definedOnly, intInRange, nonEmptyString, OptionsError } from '../../validate.ts';
import { newPassword } from '../password.ts';
import { findFreePort } from '../ports.ts';
import { defaultCacheDirectory } from '../privateDirectory.ts';
import type { ReplicaPair, ReplicaPairNode, ReplicaRole, ReplicationLevel } from '../replication/replicaPair.ts';
import { PrivatePostgres } from './privatePostgres.ts';

const COMPONENT = 'postgres replica pair';

/** The replication role, the standby's slot on the primary and the name it streams under. */
const REPLICATION_USER = 'eob_replication';
const STANDBY_NAME = 'eob_replica';

export type PostgresReplicationLevel = Extract<ReplicationLevel, 'async' | 'sync'>;
export const POSTGRES_REPLICATION_LEVELS: readonly PostgresReplicationLevel[] = ['async', 'sync'];

export interface PostgresReplicaPairOptions {
  level: PostgresReplicationLevel;
  /** Ports on 127.0.0.1 of the primary and the standby; undefined picks free ones. */
  ports: readonly [number, number] | undefined;
  /** Parent of the two data directories (`primary`, `replica`); default `.eob/pg-pair-<primary port>`. */
  datadir: string | undefined;
  /** The two data directories themselves (instead of `datadir`; e.g. the tests' scratch directories). */
  nodeDatadirs: readonly [string, string] | undefined;
  database: string;
  binDir: string | undefined;
  /** Deadline for each server to start (the standby's base backup included) and for the standby to stream. */
  startTimeoutMs: number;
  stopTimeoutMs: number;
  serverUser: string;
  templateCacheDir: string | undefined;
  /** Extra settings for both servers (`-c name=value`). */
  settings: Readonly<Record<string, string>>;
  log: (line: string) => void;
}

export function defaultPostgresReplicaPairOptions(): PostgresReplicaPairOptions {
  return {
    level: 'async',
    ports: undefined,
    datadir: undefined,
    nodeDatadirs: undefined,
    database: 'eob',
    binDir: undefined,
    startTimeoutMs: 120_000,
    stopTimeoutMs: 60_000,
    serverUser: 'postgres',
    templateCacheDir: defaultCacheDirectory(),
    settings: {},
    log: () => undefined,
  };
}

export function resolvePostgresReplicaPairOptions(given: Partial<PostgresReplicaPairOptions>): PostgresReplicaPairOptions {
  const o: PostgresReplicaPairOptions = { ...defaultPostgresReplicaPairOptions(), ...definedOnly<PostgresReplicaPairOptions>(given) };
  if (!(POSTGRES_REPLICATION_LEVELS as readonly string[]).includes(o.level)) {
    throw new OptionsError(`${COMPONENT}: level must be one of ${POSTGRES_REPLICATION_LEVELS.join(', ')} on PostgreSQL (got ${JSON.stringify(o.level)})`);
  }
  if (o.ports !== undefined) {
    if (o.ports.length !== 2) throw new OptionsError(`${COMPONENT}: ports must be two ports, the primary's and the replica's`);
    for (const port of o.ports) intInRange(COMPONENT, 'ports', port, 1, 65_535);
    if (o.ports[0] === o.ports[1]) throw new OptionsError(`${COMPONENT}: ports must differ (got ${o.ports[0]} twice)`);
  }
  if (o.datadir !== undefined) nonEmptyString(COMPONENT, 'datadir', o.datadir);
  if (o.nodeDatadirs !== undefined) {
    if (o.datadir !== undefined) throw new OptionsError(`${COMPONENT}: give datadir or nodeDatadirs, not both`);
    if (o.nodeDatadirs.length !== 2) throw new OptionsError(`${COMPONENT}: nodeDatadirs must be two directories, the primary's and the replica's`);
  }
  intInRange(COMPONENT, 'startTimeoutMs', o.startTimeoutMs, 100, 3_600_000);
  intInRange(COMPONENT, 'stopTimeoutMs', o.stopTimeoutMs, 100, 3_600_000);
  if (typeof o.log !== 'function') throw new OptionsError(`${COMPONENT}: log must be a function`);
  return o;
}

export class ReplicaPairError extends Error {
  override readonly name = 'ReplicaPairError';
}

const POLL_MS = 20;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A session ended by a kill emits 'error' on the client; the awaited call reports it.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function queryOne<T>(url: string, sql: string, values: unknown[] = []): Promise<T | undefined> {
  return withClient(url, async (client) => (await client.query(sql, values)).rows[0] as T | undefined);
}

export class PostgresReplicaPair implements ReplicaPair {
  readonly engine = 'postgres' as const;
  private killed = false;
  private promoted = false;
  /** The standby's primary_conninfo while it is held (it holds the replication password: memory only). */
  private heldConninfo: string | undefined;

  private constructor(
    readonly level: PostgresReplicationLevel,
    private readonly primaryServer: PrivatePostgres,
    private readonly replicaServer: PrivatePostgres,
    private readonly options: PostgresReplicaPairOptions,
  ) {}

  /** Starts the primary, makes the standby from a base backup of it, and resolves once the standby streams. */
  static async start(given: Partial<PostgresReplicaPairOptions> = {}): Promise<PostgresReplicaPair> {
    const o = resolvePostgresReplicaPairOptions(given);
    const ports: [number, number] = o.ports === undefined ? [await findFreePort(), await findFreePort()] : [o.ports[0], o.ports[1]];
    while (ports[0] === ports[1]) ports[1] = await findFreePort();
    const parent = path.resolve(o.datadir ?? path.join('.eob', `pg-pair-${ports[0]}`));
    const [primaryDir, replicaDir] = o.nodeDatadirs ?? [path.join(parent, 'primary'), path.join(parent, 'replica')];
    const password = newPassword();
    const common = {
      binDir: o.binDir,
      database: o.database,
      startTimeoutMs: o.startTimeoutMs,
      stopTimeoutMs: o.stopTimeoutMs,
      serverUser: o.serverUser,
      templateCacheDir: o.templateCacheDir,
      // A pair is made for one failover: an old pair's half-promoted state is never reused.
      fresh: true,
    };
    const primary = new PrivatePostgres({
      ...common,
      port: ports[0],
      datadir: primaryDir,
      settings: o.settings,
      replication: { role: 'primary', user: REPLICATION_USER, password },
      log: (line) => o.log(`primary: ${line}`),
    });
    const replica = new PrivatePostgres({
      ...common,
      port: ports[1],
      datadir: replicaDir,
      settings: o.settings,
      replication: { role: 'standby', primaryPort: ports[0], user: REPLICATION_USER, password, slot: STANDBY_NAME, applicationName: STANDBY_NAME },
      log: (line) => o.log(`replica: ${line}`),
    });
    const pair = new PostgresReplicaPair(o.level, primary, replica, o);
    try {
      await primary.start();
      await replica.start();
      await pair.waitUntilStreaming('async');
      if (o.level === 'sync') await pair.requireSynchronousStandby();
    } catch (error) {
      await primary.remove().catch(() => undefined);
      await replica.remove().catch(() => undefined);
      throw error;
    }
    o.log(`pair: ${o.level} replication from 127.0.0.1:${ports[0]} to 127.0.0.1:${ports[1]}`);
    return pair;
  }

  get nodes(): readonly ReplicaPairNode[] {
    return [this.node(this.primaryServer, this.killed ? 'down' : 'primary'), this.node(this.replicaServer, this.promoted ? 'primary' : 'replica')];
  }

  get primary(): ReplicaPairNode | undefined {
    return this.nodes.find((n) => n.role === 'primary');
  }

  /** The replica's node (the original standby, promoted or not). */
  get replica(): ReplicaPairNode {
    return this.nodes[1]!;
  }

  private node(server: PrivatePostgres, role: ReplicaRole): ReplicaPairNode {
    return { url: server.url, port: server.port, pid: server.pid, role: server.running ? role : 'down' };
  }

  async holdReplica(): Promise<void> {
    this.refuseAfterFailover('holdReplica');
    if (this.heldConninfo !== undefined) return;
    const url = this.replicaServer.url;
    const row = await queryOne<{ conninfo: string }>(url, `SELECT current_setting('primary_conninfo') AS conninfo`);
    const conninfo = row?.conninfo ?? '';
    if (conninfo === '') throw new ReplicaPairError(`${COMPONENT}: the replica has no primary_conninfo to hold`);
    // ALTER SYSTEM writes postgresql.auto.conf, which a standby may; a reload stops the WAL receiver, and with an
    // empty primary_conninfo the startup process starts none again.
    await withClient(url, async (client) => {
      await client.query(`ALTER SYSTEM SET primary_conninfo = ''`);
      await client.query('SELECT pg_reload_conf()');
    });
    this.heldConninfo = conninfo;
    await this.waitFor('the replica WAL receiver to stop', async () => (await queryOne<{ n: string }>(url, 'SELECT count(*) AS n FROM pg_stat_wal_receiver'))?.n === '0');
    this.options.log('pair: replica held (WAL receiver stopped)');
  }

  async releaseReplica(): Promise<void> {
    const conninfo = this.heldConninfo;
    if (conninfo === undefined) return;
    this.refuseAfterFailover('releaseReplica');
    await withClient(this.replicaServer.url, async (client) => {
      // ALTER SYSTEM takes no parameters: format's %L quotes the value as a literal.
      const statement = (await client.query<{ sql: string }>(`SELECT format('ALTER SYSTEM SET primary_conninfo = %L', $1::text) AS sql`, [conninfo])).rows[0]!.sql;
      await client.query(statement);
      await client.query('SELECT pg_reload_conf()');
    });
    this.heldConninfo = undefined;
    await this.waitUntilStreaming(this.level);
    this.options.log('pair: replica released (streaming again)');
  }

  async killPrimary(): Promise<void> {
    if (this.promoted) {
      await this.replicaServer.kill('SIGKILL');
      return;
    }
    await this.primaryServer.kill('SIGKILL');
    this.killed = true;
    this.options.log(`pair: primary on port ${this.primaryServer.port} SIGKILLed; it stays down`);
  }

  async promoteReplica(): Promise<void> {
    if (this.promoted) return;
    if (this.primaryServer.running) {
      throw new ReplicaPairError(`${COMPONENT}: the primary on port ${this.primaryServer.port} still runs; promoting the replica now would make two writers (killPrimary first)`);
    }
    const url = this.replicaServer.url;
    const started = performance.now();
    const row = await queryOne<{ promoted: boolean }>(url, 'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted', [Math.ceil(this.options.startTimeoutMs / 1000)]);
    if (row?.promoted !== true) throw new ReplicaPairError(`${COMPONENT}: pg_promote() did not finish within ${this.options.startTimeoutMs} ms`);
    // Out of recovery is not yet writable for every session: wait until a transaction can take an id.
    await this.waitFor('the promoted replica to accept writes', async () => {
      try {
        await queryOne(url, 'SELECT pg_current_xact_id()');
        return true;
      } catch {
        return false;
      }
    });
    this.promoted = true;
    this.heldConninfo = undefined;
    this.options.log(`pair: replica on port ${this.replicaServer.port} promoted in ${Math.round(performance.now() - started)} ms`);
  }

  /**
   * Resolves once the standby has replayed all the WAL the primary has flushed when this is called: every commit
   * answered before then survives a failover, whatever the level.
   */
  async waitForReplicaCaughtUp(): Promise<void> {
    this.refuseAfterFailover('waitForReplicaCaughtUp');
    const row = await queryOne<{ lsn: string }>(this.primaryServer.url, 'SELECT pg_current_wal_flush_lsn()::text AS lsn');
    const target = row?.lsn;
    if (target === undefined) throw new ReplicaPairError(`${COMPONENT}: the primary reported no WAL position`);
    await this.waitFor(`the replica to replay up to ${target}`, async () => {
      const r = await queryOne<{ done: boolean }>(this.replicaServer.url, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [target]);
      return r?.done === true;
    });
  }

  async stop(): Promise<void> {
    await Promise.all([this.primaryServer.stop(), this.replicaServer.stop()]);
  }

  async remove(): Promise<void> {
    await Promise.all([this.primaryServer.remove(), this.replicaServer.remove()]);
  }

  /** The last lines of each server's log, for a failure message. */
  logTails(): { primary: string; replica: string } {
    return { primary: this.primaryServer.logTail(), replica: this.replicaServer.logTail() };
  }

  private refuseAfterFailover(what: string): void {
    if (this.killed || this.promoted) throw new ReplicaPairError(`${COMPONENT}: ${what} needs the original pair; the primary has been killed`);
  }

  /**
   * From now on every commit on the primary waits until the standby has flushed it (synchronous_commit is on
   * already: a durable setting of every private server). Set once the standby streams,
   * not at the primary's start: the start's own commits (the password, the database, the replication role) would
   * wait for a standby that cannot exist before them. ALTER SYSTEM keeps it in the primary's postgresql.auto.conf
   * alone: the standby's copy was taken before.
   */
  private async requireSynchronousStandby(): Promise<void> {
    await withClient(this.primaryServer.url, async (client) => {
      await client.query(`ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (${STANDBY_NAME})'`);
      await client.query('SELECT pg_reload_conf()');
    });
    await this.waitUntilStreaming('sync');
  }

  private async waitUntilStreaming(wanted: 'sync' | 'async'): Promise<void> {
    await this.waitFor(`the replica to stream (${wanted})`, async () => {
      const row = await queryOne<{ state: string; sync_state: string }>(
        this.primaryServer.url,
        'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1',
        [STANDBY_NAME],
      );
      return row?.state === 'streaming' && row.sync_state === wanted;
    });
  }

  private async waitFor(what: string, done: () => Promise<boolean>): Promise<void> {
    const deadline = performance.now() + this.options.startTimeoutMs;
    while (!(await done())) {
      if (performance.now() > deadline) {
        const tails = this.logTails();
        throw new ReplicaPairError(`${COMPONENT}: gave up waiting for ${what} after ${this.options.startTimeoutMs} ms\nprimary log:\n${tails.primary}\nreplica log:\n${tails.replica}`);
      }
      await delay(POLL_MS);
    }
  }
}

/** The factory the engine-neutral wiring calls: a started pair at `level`. */
export function startPostgresReplicaPair(options: Partial<PostgresReplicaPairOptions> = {}): Promise<PostgresReplicaPair> {
  return PostgresReplicaPair.start(options);
}
