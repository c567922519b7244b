// A MariaDB primary and a GTID replica, two private servers (managedDatabase.ts: each its own port, data
// directory, run directory, secure_file_priv, the `mysql` OS user when this process is root, one random root
// password for both), replicating asynchronously or semi-synchronously (AFTER_SYNC), and the failover the
// harness drives through the ReplicaPair contract: hold the replica, SIGKILL the primary, promote the replica,
// and build a fresh replica of the new primary for the next failover.
//
// Replication: every node writes a binary log (ROW events, log_slave_updates, gtid_strict_mode, sync_binlog=1)
// with its own server_id; the replica runs read_only with CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos as a
// dedicated replication user. Semi-sync is built into MariaDB 10.3+ (no plugin to load); AFTER_SYNC makes the
// primary wait for the replica's acknowledgement after the commit is in its binary log and before the commit is
// visible to anyone or answered, so no client ever sees a row the replica may not have.
//
// Semi-sync's fallback (what a 204 is worth when the replica is away): by default MariaDB stops waiting after
// rpl_semi_sync_master_timeout (10 s) and goes on asynchronously, acknowledging commits the replica never
// received; a failover then loses them, and nothing tells the client. This pair refuses that by default
// (`semiSyncTimeoutMs` undefined): the timeout is MariaDB's maximum (2^32-1 ms, ~49 days) and
// rpl_semi_sync_master_wait_no_slave stays ON, so a commit without a replica's acknowledgement is never
// answered: the system's publish times out and answers 504 (outcome unknown), which the client can retry. The
// cost is availability: no 204 while no replica acknowledges, including between a failover and the moment the
// fresh replica has caught up (rebuildReplica). A finite `semiSyncTimeoutMs` turns the fallback on, so a case can
// show what it costs; `semiSyncStatus()` reports whether it happened (Rpl_semi_sync_master_no_tx counts commits
// answered without an acknowledgement).
//
// The old primary never comes back: killPrimary leaves it down, and rebuildReplica deletes its data directory and
// starts a fresh server in its place that copies everything from the new primary's binary log (which holds the
// whole history: every node logs from its first start, and log_slave_updates logs what it applied). A diverged
// old primary (commits it made that the replica never received) therefore cannot rejoin: its data is gone.
import mysql from 'mysql2/promise';
import { formatMysqlUrl } from '../../system/db/mariadb/mysqlUrl.ts';
import { definedOnly, intInRange, OptionsError } from '../../validate.ts';
import { newPassword } from '../password.ts';
import { defaultCacheDirectory } from '../privateDirectory.ts';
import type { ReplicaPair, ReplicaPairNode, ReplicaRole, ReplicationLevel } from '../replication/replicaPair.ts';
import { LEVELS_OF_ENGINE } from '../replication/replicaPair.ts';
import { checkPairPlacement, freePortOtherThan, PairSlots, placePair, type PairPlacement } from '../replication/pairPlacement.ts';
import { DatabaseStartError, ManagedDatabase } from './managedDatabase.ts';

const COMPONENT = 'mariadb replica pair';

/** Placement (PairPlacement): the parent folder defaults to `.eob/pair-<primary port>`, with `node-1` and `node-2`. */
export interface MariadbReplicaPairOptions extends PairPlacement {
  level: ReplicationLevel;
  database: string;
  /**
   * semi-sync only. undefined (the default): never fall back to asynchronous replication; a commit waits for a
   * replica's acknowledgement however long it takes (see the top of this file). A number: MariaDB's
   * rpl_semi_sync_master_timeout, after which the primary stops waiting and acknowledges commits alone.
   */
  semiSyncTimeoutMs: number | undefined;
  /** Deadline for the replica to apply what it received when it is promoted, and for a fresh replica to catch up. */
  catchUpTimeoutMs: number;
  binDir: string | undefined;
  searchSystemPaths: boolean;
  searchPath: readonly string[];
  startTimeoutMs: number;
  stopTimeoutMs: number;
  serverUser: string | undefined;
  templateCacheDir: string | undefined;
  log: (line: string) => void;
}

export function defaultMariadbReplicaPairOptions(): MariadbReplicaPairOptions {
  return {
    level: 'semi-sync',
    nodeDatadirs: undefined,
    datadir: undefined,
    ports: undefined,
    database: 'eob',
    semiSyncTimeoutMs: undefined,
    catchUpTimeoutMs: 120_000,
    binDir: undefined,
    searchSystemPaths: true,
    searchPath: [],
    startTimeoutMs: 60_000,
    stopTimeoutMs: 60_000,
    serverUser: 'mysql',
    templateCacheDir: defaultCacheDirectory(),
    log: () => undefined,
  };
}

export function resolveMariadbReplicaPairOptions(given: Partial<MariadbReplicaPairOptions>): MariadbReplicaPairOptions {
  const o: MariadbReplicaPairOptions = { ...defaultMariadbReplicaPairOptions(), ...definedOnly<MariadbReplicaPairOptions>(given) };
  const levels = LEVELS_OF_ENGINE.mariadb;
  if (!levels.includes(o.level)) {
    throw new OptionsError(`${COMPONENT}: level must be one of ${levels.join(', ')} on MariaDB (got ${JSON.stringify(o.level)}; 'sync' is PostgreSQL's synchronous_standby_names)`);
  }
  checkPairPlacement(COMPONENT, o);
  if (o.semiSyncTimeoutMs !== undefined) {
    if (o.level !== 'semi-sync') throw new OptionsError(`${COMPONENT}: semiSyncTimeoutMs applies to level semi-sync only (level is ${o.level})`);
    intInRange(COMPONENT, 'semiSyncTimeoutMs', o.semiSyncTimeoutMs, 1, MAX_SEMI_SYNC_TIMEOUT_MS);
  }
  intInRange(COMPONENT, 'catchUpTimeoutMs', o.catchUpTimeoutMs, 100, 3_600_000);
  intInRange(COMPONENT, 'startTimeoutMs', o.startTimeoutMs, 100, 3_600_000);
  intInRange(COMPONENT, 'stopTimeoutMs', o.stopTimeoutMs, 100, 3_600_000);
  return o;
}

/** rpl_semi_sync_master_timeout's maximum (ms): the "never fall back" setting. */
export const MAX_SEMI_SYNC_TIMEOUT_MS = 4_294_967_295;

/** What the primary's semi-sync status says (MariaDB's Rpl_semi_sync_master_* status variables). */
export interface SemiSyncStatus {
  /** ON while commits wait for an acknowledgement; OFF after a fallback to asynchronous. */
  active: boolean;
  /** Replicas connected as semi-sync clients. */
  clients: number;
  /** Commits acknowledged by a replica. */
  yesTx: number;
  /** Commits answered without a replica's acknowledgement (after a fallback). */
  noTx: number;
}

interface Slot {
  server: ManagedDatabase;
  role: ReplicaRole;
  serverId: number;
}

const POLL_MS = 20;
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
type Row = Record<string, unknown>;

export class MariadbReplicaPair extends PairSlots<Slot> implements ReplicaPair {
  readonly engine = 'mariadb' as const;
  private nextServerId = 1;
  /** ms the last promotion waited for the replica's SQL thread to apply its relay log. */
  lastApplyWaitMs: number | undefined;

  private constructor(
    readonly options: MariadbReplicaPairOptions,
    protected readonly slots: Slot[],
    private readonly password: string,
    private readonly replication: { user: string; password: string },
  ) {
    super();
  }

  get level(): ReplicationLevel {
    return this.options.level;
  }

  /** Starts both servers and the replication; resolves once the replica has caught up (and, semi-sync, acknowledges). */
  static async create(given: Partial<MariadbReplicaPairOptions> = {}): Promise<MariadbReplicaPair> {
    const options = resolveMariadbReplicaPairOptions(given);
    const { ports, datadirs } = await placePair(options, 'pair', ['node-1', 'node-2']);
    const pair = new MariadbReplicaPair(options, [], newPassword(), { user: 'eob_repl', password: newPassword() });
    try {
      const primary = pair.makeSlot(0, ports[0], datadirs[0], 'primary');
      const replica = pair.makeSlot(1, ports[1], datadirs[1], 'replica');
      pair.slots.push(primary, replica);
      await primary.server.start();
      await pair.withNode(primary, async (c) => {
        // Binary-logged on purpose: the replica (and any later one) gets the account with the history, so a
        // promoted node can serve the next replica.
        await c.query(`CREATE USER IF NOT EXISTS ?@'127.0.0.1' IDENTIFIED BY ?`, [pair.replication.user, pair.replication.password]);
        await c.query(`GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'`, [pair.replication.user]);
      });
      await pair.startReplicaOf(replica, primary);
    } catch (error) {
      await pair.remove().catch(() => undefined);
      throw error;
    }
    options.log(`${COMPONENT}: ${options.level} primary on 127.0.0.1:${ports[0]}, replica on 127.0.0.1:${ports[1]}`);
    return pair;
  }

  /** Both servers, original primary first (the launchers, for CPU and logs). */
  get servers(): readonly ManagedDatabase[] {
    return this.slots.map((s) => s.server);
  }

  async holdReplica(): Promise<void> {
    // The I/O thread alone: the replica stops receiving, and applies what it has.
    await this.withNode(this.requireSlot('replica'), (c) => c.query('STOP SLAVE IO_THREAD'));
  }

  async releaseReplica(): Promise<void> {
    await this.withNode(this.requireSlot('replica'), (c) => c.query('START SLAVE IO_THREAD'));
  }

  async killPrimary(): Promise<void> {
    const slot = this.requireSlot('primary');
    await slot.server.kill('SIGKILL');
    slot.role = 'down';
  }

  /**
   * Waits until the replica's SQL thread has applied every event its I/O thread received, then makes it a
   * writable primary with no master. A transaction the I/O thread received only in part (the primary died
   * mid-send) is never applied: it was not acknowledged under semi-sync, and it cannot commit without its end.
   */
  async promoteReplica(): Promise<void> {
    const slot = this.requireSlot('replica');
    const started = performance.now();
    await this.withNode(slot, async (c) => {
      // The old primary is gone: stop asking it, so what is in the relay log is all there will be.
      await c.query('STOP SLAVE IO_THREAD');
      await this.waitRelayLogApplied(c);
      this.lastApplyWaitMs = Math.round(performance.now() - started);
      await c.query('STOP SLAVE');
      await c.query('RESET SLAVE ALL');
      await c.query('SET GLOBAL read_only = OFF');
      // From now on its commits wait for a replica's acknowledgement (the next replica: rebuildReplica).
      if (this.options.level === 'semi-sync') await c.query('SET GLOBAL rpl_semi_sync_master_enabled = ON');
    });
    slot.role = 'primary';
    this.options.log(`${COMPONENT}: promoted 127.0.0.1:${slot.server.port} (relay log applied in ${this.lastApplyWaitMs} ms)`);
  }

  /**
   * Replaces the node that is down with a fresh replica of the current primary: its data directory is deleted
   * (never rejoined: it may hold commits the new primary does not), a new server starts from an empty data
   * directory on a new port and copies the whole history from the primary's binary log; resolves once it has
   * caught up and, under semi-sync, acknowledges commits. For repeated failovers.
   */
  async rebuildReplica(): Promise<number> {
    const started = performance.now();
    const primary = this.requireSlot('primary');
    const index = this.slots.findIndex((s) => s.role === 'down');
    if (index < 0) throw new Error(`${COMPONENT}: rebuildReplica needs a node that is down (the pair has a primary and a replica already)`);
    const old = this.slots[index]!;
    await old.server.remove();
    const fresh = this.makeSlot(index, await freePortOtherThan(primary.server.port), old.server.datadir, 'replica');
    this.slots[index] = fresh;
    await this.startReplicaOf(fresh, primary);
    const ms = Math.round(performance.now() - started);
    this.options.log(`${COMPONENT}: fresh replica on 127.0.0.1:${fresh.server.port} caught up in ${ms} ms`);
    return ms;
  }

  /** The current primary's semi-sync status (zeros and inactive under async). */
  async semiSyncStatus(): Promise<SemiSyncStatus> {
    return this.withNode(this.requireSlot('primary'), async (c) => {
      const [rows] = await c.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'");
      const v = new Map((rows as Row[]).map((r) => [String(r.Variable_name), String(r.Value)]));
      return {
        active: v.get('Rpl_semi_sync_master_status') === 'ON',
        clients: Number(v.get('Rpl_semi_sync_master_clients') ?? 0),
        yesTx: Number(v.get('Rpl_semi_sync_master_yes_tx') ?? 0),
        noTx: Number(v.get('Rpl_semi_sync_master_no_tx') ?? 0),
      };
    });
  }

  async stop(): Promise<void> {
    for (const s of [...this.slots].reverse()) await s.server.stop();
  }

  async remove(): Promise<void> {
    for (const s of [...this.slots].reverse()) await s.server.remove().catch(() => undefined);
  }

  /** mysql://root:...@127.0.0.1:<port>/<database> of a node. */
  urlOfPort(port: number): string {
    return formatMysqlUrl({ user: 'root', password: this.password, host: '127.0.0.1', port, database: this.options.database });
  }

  protected nodeOf(slot: Slot): ReplicaPairNode {
    return { url: this.urlOfPort(slot.server.port), port: slot.server.port, pid: slot.server.pid, role: slot.role };
  }

  private requireSlot(role: ReplicaRole): Slot {
    const slot = this.slots.find((s) => s.role === role);
    if (slot === undefined) throw new Error(`${COMPONENT}: there is no ${role} now (roles: ${this.slots.map((s) => s.role).join(', ') || 'none'})`);
    return slot;
  }

  private makeSlot(index: number, port: number, datadir: string, role: ReplicaRole): Slot {
    const o = this.options;
    const serverId = this.nextServerId++;
    const semiSync = o.level === 'semi-sync';
    const server = new ManagedDatabase({
      port,
      datadir,
      database: o.database,
      // The primary creates it; a replica receives it with the binary log.
      createDatabase: role === 'primary',
      binDir: o.binDir,
      searchSystemPaths: o.searchSystemPaths,
      searchPath: [...o.searchPath],
      startTimeoutMs: o.startTimeoutMs,
      stopTimeoutMs: o.stopTimeoutMs,
      fresh: true,
      templateCacheDir: o.templateCacheDir,
      serverUser: o.serverUser,
      password: this.password,
      log: (line) => o.log(`node${index + 1} ${line}`),
      serverArgs: [
        // After the durable defaults' --skip-log-bin: every node logs, so any of them can serve a replica.
        '--log-bin=binlog',
        '--relay-log=relay-bin',
        `--server-id=${serverId}`,
        '--binlog-format=ROW',
        '--log-slave-updates=ON',
        '--gtid-strict-mode=ON',
        // A replica is started by this pair (CHANGE MASTER), never by a restart on its own.
        '--skip-slave-start',
        ...(role === 'replica' ? ['--read-only=ON'] : []),
        ...(semiSync
          ? [
              // The primary's side is switched on once a replica is attached (enableSemiSyncOn): on from the
              // start, the init file's statements, binary-logged, would wait for a replica that is not there yet
              // (without fallback: forever; the first start never finished). A promoted node switches it on too.
              '--rpl-semi-sync-master-enabled=OFF',
              '--rpl-semi-sync-slave-enabled=ON',
              '--rpl-semi-sync-master-wait-point=AFTER_SYNC',
              `--rpl-semi-sync-master-timeout=${o.semiSyncTimeoutMs ?? MAX_SEMI_SYNC_TIMEOUT_MS}`,
              // ON: with no replica connected, a commit still waits (up to the timeout) instead of going on alone.
              '--rpl-semi-sync-master-wait-no-slave=ON',
            ]
          : []),
      ],
    });
    return { server, role, serverId };
  }

  /** Starts `replica` (a fresh server) replicating from `primary`; resolves once caught up and, semi-sync, acknowledging. */
  private async startReplicaOf(replica: Slot, primary: Slot): Promise<void> {
    await replica.server.start();
    await this.withNode(replica, async (c) => {
      // Its own start wrote the init file's statements to its binary log under its own server_id; under
      // gtid_strict_mode those would clash with the primary's GTIDs. A fresh replica has nothing else there.
      await c.query('RESET MASTER');
      await c.query("SET GLOBAL gtid_slave_pos = ''");
      await c.query(
        `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${Number(primary.server.port)}, MASTER_USER = ?, MASTER_PASSWORD = ?, ` +
          'MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1',
        [this.replication.user, this.replication.password],
      );
      await c.query('START SLAVE');
    });
    const target = await this.withNode(primary, async (c) => String(((await c.query('SELECT @@GLOBAL.gtid_binlog_pos AS pos'))[0] as Row[])[0]?.pos ?? ''));
    await this.withNode(replica, async (c) => {
      const timeoutS = Math.ceil(this.options.catchUpTimeoutMs / 1000);
      const [rows] = await c.query('SELECT MASTER_GTID_WAIT(?, ?) AS r', [target, timeoutS]);
      if (Number((rows as Row[])[0]?.r) !== 0) {
        throw new DatabaseStartError(`${COMPONENT}: the replica on port ${replica.server.port} did not reach the primary's position ${target} within ${timeoutS} s: ${await this.slaveProblem(c)}`);
      }
    });
    if (this.options.level === 'semi-sync') {
      await this.withNode(primary, (c) => c.query('SET GLOBAL rpl_semi_sync_master_enabled = ON'));
      // The replica asks for semi-sync when it connects: connect again now that the primary offers it.
      await this.withNode(replica, async (c) => {
        await c.query('STOP SLAVE IO_THREAD');
        await c.query('START SLAVE IO_THREAD');
      });
      const deadline = performance.now() + this.options.catchUpTimeoutMs;
      for (;;) {
        const s = await this.semiSyncStatus();
        if (s.active && s.clients >= 1) break;
        if (performance.now() > deadline) throw new DatabaseStartError(`${COMPONENT}: the primary has no semi-sync replica after ${this.options.catchUpTimeoutMs} ms (clients ${s.clients}, status ${s.active ? 'ON' : 'OFF'})`);
        await delay(POLL_MS);
      }
    }
  }

  /**
   * Until the SQL thread has executed everything the I/O thread wrote to the relay log: the executed position in
   * the primary's binary log equals the read one, or the SQL thread has been idle on "has read all relay log"
   * for a while (a trailing transaction received only in part never completes).
   */
  private async waitRelayLogApplied(c: mysql.Connection): Promise<void> {
    const deadline = performance.now() + this.options.catchUpTimeoutMs;
    let idleSince: number | undefined;
    for (;;) {
      const s = await slaveStatus(c);
      if (s === undefined) return;
      const applied = s.Relay_Master_Log_File === s.Master_Log_File && Number(s.Exec_Master_Log_Pos) === Number(s.Read_Master_Log_Pos);
      if (applied) return;
      if (String(s.Slave_SQL_Running) !== 'Yes') throw new Error(`${COMPONENT}: the replica's SQL thread stopped before applying its relay log: ${String(s.Last_SQL_Error)}`);
      const idle = /has read all relay log/i.test(String(s.Slave_SQL_Running_State));
      if (!idle) idleSince = undefined;
      else if (idleSince === undefined) idleSince = performance.now();
      // 500 ms idle with the positions apart: the rest of a transaction that will never arrive.
      else if (performance.now() - idleSince > 500) return;
      if (performance.now() > deadline) throw new Error(`${COMPONENT}: the replica did not apply its relay log within ${this.options.catchUpTimeoutMs} ms (${String(s.Slave_SQL_Running_State)})`);
      await delay(POLL_MS);
    }
  }

  private async slaveProblem(c: mysql.Connection): Promise<string> {
    const s = await slaveStatus(c).catch(() => undefined);
    if (s === undefined) return 'no replication configured';
    return `io ${String(s.Slave_IO_Running)} (${String(s.Last_IO_Error) || 'no error'}), sql ${String(s.Slave_SQL_Running)} (${String(s.Last_SQL_Error) || 'no error'})`;
  }

  private async withNode<T>(slot: Slot, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: slot.server.port, user: 'root', password: this.password, connectTimeout: 5_000 });
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

async function slaveStatus(c: mysql.Connection): Promise<Row | undefined> {
  const [rows] = await c.query('SHOW SLAVE STATUS');
  return (rows as Row[])[0];
}

