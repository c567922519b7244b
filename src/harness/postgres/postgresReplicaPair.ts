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
//   the replay's latency. The setting is turned on once the standby streams (the primary's start commits before
//   any standby can exist), and again on a promoted standby: a 204 keeps meaning two copies after a failover,
//   so the new primary's commits wait until a fresh standby (rebuildReplica) streams. That is the choice the
//   MariaDB pair makes too (semi-sync with no fallback); the other one, a promoted node answering alone, is
//   the asynchronous level's promise.
//
// holdReplica clears the standby's primary_conninfo and reloads: its WAL receiver exits and no new WAL arrives
// (SIGSTOP is not enough: the WAL sent meanwhile waits in the socket buffer and is read on SIGCONT). Under
// async, the primary goes on answering commits the standby will never have; under sync, commits wait.
// killPrimary SIGKILLs the postmaster and every backend; the old primary is never started again (a writer that
// came back beside the promoted standby would be a second primary, and its data may hold commits the promoted
// node never received). promoteReplica refuses while the old primary runs, for the same reason; rebuildReplica
// deletes the dead node's data directory and makes a fresh base backup of the new primary in its place.
import { mkdir } from 'node:fs/promises';
import pg from 'pg';
import { definedOnly, intInRange, OptionsError } from '../../validate.ts';
import { newPassword } from '../password.ts';
import { checkPairPlacement, freePortOtherThan, PairSlots, placePair, type PairPlacement } from '../replication/pairPlacement.ts';
import { defaultCacheDirectory } from '../privateDirectory.ts';
import type { ReplicaPair, ReplicaPairNode, ReplicaRole, ReplicationLevel } from '../replication/replicaPair.ts';
import { PrivatePostgres } from './privatePostgres.ts';

const COMPONENT = 'postgres replica pair';

/** The replication role, the standby's slot on the primary and the name it streams under. */
const REPLICATION_USER = 'eob_replication';
const STANDBY_NAME = 'eob_replica';

export type PostgresReplicationLevel = Extract<ReplicationLevel, 'async' | 'sync'>;
export const POSTGRES_REPLICATION_LEVELS: readonly PostgresReplicationLevel[] = ['async', 'sync'];

/** Placement (PairPlacement): the parent folder defaults to `.eob/pg-pair-<primary port>`, with `primary` and `replica`. */
export interface PostgresReplicaPairOptions extends PairPlacement {
  level: PostgresReplicationLevel;
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
  checkPairPlacement(COMPONENT, o);
  intInRange(COMPONENT, 'startTimeoutMs', o.startTimeoutMs, 100, 3_600_000);
  intInRange(COMPONENT, 'stopTimeoutMs', o.stopTimeoutMs, 100, 3_600_000);
  if (typeof o.log !== 'function') throw new OptionsError(`${COMPONENT}: log must be a function`);
  return o;
}

export class ReplicaPairError extends Error {
  override readonly name = 'ReplicaPairError';
}

const POLL_MS = 20;

/** A line of a server's own log: timestamped, or the tab-indented continuation of one. */
const SERVER_LOG_LINE = /^postgres: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\t)/;

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

interface Slot {
  server: PrivatePostgres;
  role: ReplicaRole;
}

export class PostgresReplicaPair extends PairSlots<Slot> implements ReplicaPair {
  readonly engine = 'postgres' as const;
  /** The standby's primary_conninfo while it is held (it holds the replication password: memory only). */
  private heldConninfo: string | undefined;

  private constructor(
    readonly level: PostgresReplicationLevel,
    /** The original primary's slot first; a rebuilt replica takes the slot of the node that died. */
    protected readonly slots: Slot[],
    private readonly password: string,
    private readonly options: PostgresReplicaPairOptions,
  ) {
    super();
  }

  /** Starts the primary, makes the standby from a base backup of it, and resolves once the standby streams. */
  static async start(given: Partial<PostgresReplicaPairOptions> = {}): Promise<PostgresReplicaPair> {
    const o = resolvePostgresReplicaPairOptions(given);
    const { ports, parent, datadirs } = await placePair(o, 'pg-pair', ['primary', 'replica']);
    // The server's OS user (under root) must be able to pass through the parent to reach its data directory.
    if (o.nodeDatadirs === undefined) await mkdir(parent, { recursive: true, mode: 0o755 });
    const [primaryDir, replicaDir] = datadirs;
    const password = newPassword();
    const pair = new PostgresReplicaPair(o.level, [], password, o);
    const primary: Slot = { server: pair.makeServer(0, ports[0], primaryDir, undefined), role: 'primary' };
    pair.slots.push(primary);
    try {
      await primary.server.start();
      const replica: Slot = { server: pair.makeServer(1, ports[1], replicaDir, ports[0]), role: 'replica' };
      pair.slots.push(replica);
      await replica.server.start();
      await pair.waitUntilStreaming('async');
      if (o.level === 'sync') {
        await pair.requireSynchronousStandby(primary);
        await pair.waitUntilStreaming('sync');
      }
    } catch (error) {
      await pair.remove().catch(() => undefined);
      throw error;
    }
    o.log(`pair: ${o.level} replication from 127.0.0.1:${ports[0]} to 127.0.0.1:${ports[1]}`);
    return pair;
  }

  /** A server for slot `index`: the primary (`primaryPort` undefined) or a standby made from the primary on `primaryPort`. */
  private makeServer(index: number, port: number, datadir: string, primaryPort: number | undefined): PrivatePostgres {
    const o = this.options;
    const name = index === 0 ? 'node 1' : 'node 2';
    return new PrivatePostgres({
      binDir: o.binDir,
      database: o.database,
      startTimeoutMs: o.startTimeoutMs,
      stopTimeoutMs: o.stopTimeoutMs,
      serverUser: o.serverUser,
      templateCacheDir: o.templateCacheDir,
      // A pair is made for failovers: an old pair's half-promoted state is never reused.
      fresh: true,
      port,
      datadir,
      settings: o.settings,
      replication:
        primaryPort === undefined
          ? { role: 'primary', user: REPLICATION_USER, password: this.password }
          : { role: 'standby', primaryPort, user: REPLICATION_USER, password: this.password, slot: STANDBY_NAME, applicationName: STANDBY_NAME },
      // The servers' own log lines (timestamped; every session refused while a standby starts is one) stay in
      // each server's log tail, which a failure here quotes; the caller's log gets the lifecycle lines.
      log: (line) => {
        if (!SERVER_LOG_LINE.test(line)) o.log(`${name}: ${line}`);
      },
    });
  }

  protected nodeOf(slot: Slot): ReplicaPairNode {
    const { server } = slot;
    return { url: this.urlOf(server), port: server.port, pid: server.pid, role: server.running ? slot.role : 'down' };
  }

  /**
   * A server's URL. A standby being rebuilt does not know its password until its base backup is in place, and
   * observers (the harness's samplers) may ask meanwhile: every node's is the first primary's (pg_authid is
   * replicated, and its password file comes with each base backup), so its URL with the node's port is the same.
   */
  private urlOf(server: PrivatePostgres): string {
    try {
      return server.url;
    } catch {
      const first = this.slots.find((s) => s.server !== server)?.server.url;
      if (first === undefined) throw new ReplicaPairError(`${COMPONENT}: no node knows the password yet`);
      const url = new URL(first);
      url.port = String(server.port);
      return url.toString();
    }
  }

  private requireSlot(role: 'primary' | 'replica', what: string): Slot {
    const slot = this.slots.find((s) => s.role === role && s.server.running);
    if (slot === undefined) throw new ReplicaPairError(`${COMPONENT}: ${what} needs a running ${role}, and the pair has none (roles: ${this.nodes.map((n) => n.role).join(', ')})`);
    return slot;
  }

  async holdReplica(): Promise<void> {
    const replica = this.requireSlot('replica', 'holdReplica');
    if (this.heldConninfo !== undefined) return;
    const url = replica.server.url;
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
    const replica = this.requireSlot('replica', 'releaseReplica');
    await withClient(replica.server.url, async (client) => {
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
    const primary = this.requireSlot('primary', 'killPrimary');
    await primary.server.kill('SIGKILL');
    primary.role = 'down';
    this.options.log(`pair: primary on port ${primary.server.port} SIGKILLed; it stays down`);
  }

  /**
   * pg_promote(wait => true), then waits until a transaction can take an id. Under sync the promoted node at
   * once requires a synchronous standby of its own (the next one: rebuildReplica), so that no commit is ever
   * answered from one copy: until a standby streams, commits wait.
   */
  async promoteReplica(): Promise<void> {
    const live = this.slots.find((s) => s.role === 'primary' && s.server.running);
    if (live !== undefined) {
      throw new ReplicaPairError(`${COMPONENT}: the primary on port ${live.server.port} still runs; promoting the replica now would make two writers (killPrimary first)`);
    }
    const replica = this.requireSlot('replica', 'promoteReplica');
    const url = replica.server.url;
    const started = performance.now();
    const row = await queryOne<{ promoted: boolean }>(url, 'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted', [Math.ceil(this.options.startTimeoutMs / 1000)]);
    if (row?.promoted !== true) throw new ReplicaPairError(`${COMPONENT}: pg_promote() did not finish within ${this.options.startTimeoutMs} ms`);
    // Out of recovery is not yet writable for every session: wait until a transaction can take an id. Its commit
    // is local: a standby rebuilt from an earlier promoted node carries synchronous_standby_names along.
    await this.waitFor('the promoted replica to accept writes', async () => {
      try {
        await withClient(url, async (client) => {
          await client.query('SET synchronous_commit = local');
          await client.query('SELECT pg_current_xact_id()');
        });
        return true;
      } catch {
        return false;
      }
    });
    replica.role = 'primary';
    this.heldConninfo = undefined;
    if (this.level === 'sync') await this.requireSynchronousStandby(replica);
    this.options.log(`pair: replica on port ${replica.server.port} promoted in ${Math.round(performance.now() - started)} ms`);
  }

  /**
   * Replaces the node that is down with a fresh standby of the current primary: its data directory is deleted
   * (never rejoined: it may hold commits the new primary never had) and a new base backup of the primary takes
   * its place, on a new port; resolves once it streams (under sync, as the synchronous standby) with the ms it took.
   */
  async rebuildReplica(): Promise<number> {
    const started = performance.now();
    const primary = this.requireSlot('primary', 'rebuildReplica');
    const index = this.slots.findIndex((s) => s.role === 'down' || !s.server.running);
    if (index < 0) throw new ReplicaPairError(`${COMPONENT}: rebuildReplica needs a node that is down (the pair has a primary and a replica already)`);
    const old = this.slots[index]!;
    await old.server.remove();
    const port = await freePortOtherThan(primary.server.port);
    const fresh: Slot = { server: this.makeServer(index, port, old.server.datadir, primary.server.port), role: 'replica' };
    this.slots[index] = fresh;
    // The primary's slot for the dead standby (if it was made from this primary) would keep WAL for nobody.
    await withClient(primary.server.url, (client) =>
      client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [STANDBY_NAME]),
    );
    await fresh.server.start();
    await this.waitUntilStreaming(this.level);
    const ms = Math.round(performance.now() - started);
    this.options.log(`pair: fresh replica on 127.0.0.1:${port} streaming in ${ms} ms`);
    return ms;
  }

  /**
   * Resolves once the standby has replayed all the WAL the primary has flushed when this is called: every commit
   * answered before then survives a failover, whatever the level.
   */
  async waitForReplicaCaughtUp(): Promise<void> {
    const primary = this.requireSlot('primary', 'waitForReplicaCaughtUp');
    const replica = this.requireSlot('replica', 'waitForReplicaCaughtUp');
    const row = await queryOne<{ lsn: string }>(primary.server.url, 'SELECT pg_current_wal_flush_lsn()::text AS lsn');
    const target = row?.lsn;
    if (target === undefined) throw new ReplicaPairError(`${COMPONENT}: the primary reported no WAL position`);
    await this.waitFor(`the replica to replay up to ${target}`, async () => {
      const r = await queryOne<{ done: boolean }>(replica.server.url, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [target]);
      return r?.done === true;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.server.stop()));
  }

  async remove(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.server.remove()));
  }

  /** The last lines of each server's log, for a failure message. */
  logTails(): string[] {
    return this.slots.map((s) => s.server.logTail());
  }

  /**
   * From now on every commit on `primary` waits until the standby has flushed it (synchronous_commit is on
   * already: a durable setting of every private server). Set once the standby streams, not at the first
   * primary's start: the start's own commits (the password, the database, the replication role) would wait for
   * a standby that cannot exist before them. ALTER SYSTEM keeps it in the primary's postgresql.auto.conf, which
   * the first standby's base backup predates; a rebuilt standby inherits it, and requires a standby once promoted.
   */
  private async requireSynchronousStandby(primary: Slot): Promise<void> {
    await withClient(primary.server.url, async (client) => {
      await client.query(`ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (${STANDBY_NAME})'`);
      await client.query('SELECT pg_reload_conf()');
    });
  }

  private async waitUntilStreaming(wanted: 'sync' | 'async'): Promise<void> {
    const primary = this.requireSlot('primary', 'waitUntilStreaming');
    await this.waitFor(`the replica to stream (${wanted})`, async () => {
      const row = await queryOne<{ state: string; sync_state: string }>(
        primary.server.url,
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
        const tails = this.logTails().map((tail, i) => `node ${i + 1} log:\n${tail}`).join('\n');
        throw new ReplicaPairError(`${COMPONENT}: gave up waiting for ${what} after ${this.options.startTimeoutMs} ms\n${tails}`);
      }
      await delay(POLL_MS);
    }
  }
}

/** The factory the engine-neutral wiring calls: a started pair at `level`. */
export function startPostgresReplicaPair(options: Partial<PostgresReplicaPairOptions> = {}): Promise<PostgresReplicaPair> {
  return PostgresReplicaPair.start(options);
}
