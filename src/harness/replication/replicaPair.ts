// The contract of a primary/replica pair of private servers, whichever engine runs it: MariaDB with GTID
// replication (asynchronous or semi-synchronous, AFTER_SYNC) or PostgreSQL with streaming replication
// (asynchronous or synchronous). The system under test, the `primary-failover` fault and `eob db start
// --topology primary-replica` drive a pair through this interface only; each engine's launcher implements it.
import type { EngineName } from '../engines.ts';

/**
 * How far a commit has travelled when the primary answers it:
 * - async: the primary's own disk only; a failover loses what the replica had not received.
 * - semi-sync (MariaDB, AFTER_SYNC): the replica has the transaction in its relay log before the client is
 *   answered; falls back to async after rpl_semi_sync_master_timeout unless the pair is configured not to.
 * - sync (PostgreSQL, synchronous_standby_names + synchronous_commit): the standby has flushed (on) or applied
 *   (remote_apply) the commit before the client is answered.
 */
export type ReplicationLevel = 'async' | 'semi-sync' | 'sync';
export const REPLICATION_LEVELS: readonly ReplicationLevel[] = ['async', 'semi-sync', 'sync'];

/** The levels each engine offers. */
export const LEVELS_OF_ENGINE: Readonly<Record<EngineName, readonly ReplicationLevel[]>> = {
  mariadb: ['async', 'semi-sync'],
  postgres: ['async', 'sync'],
};

export type ReplicaRole = 'primary' | 'replica' | 'down';

export interface ReplicaPairNode {
  /** Direct URL of this server (not through the virtual address). */
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  readonly role: ReplicaRole;
}

export interface ReplicaPair {
  readonly engine: EngineName;
  readonly level: ReplicationLevel;
  /** Both servers, the original primary first. */
  readonly nodes: readonly ReplicaPairNode[];
  /** The node that takes writes now (after a failover: the promoted replica); undefined while none does. */
  readonly primary: ReplicaPairNode | undefined;
  /**
   * Stops the replica from receiving new changes (MariaDB: STOP SLAVE IO_THREAD; PostgreSQL: the WAL receiver
   * stopped), so that a failover loses whatever the primary acknowledged since: the asynchronous control's way to
   * make its loss certain rather than lucky. Under a synchronous level, commits wait instead.
   */
  holdReplica(): Promise<void>;
  releaseReplica(): Promise<void>;
  /** SIGKILLs the current primary's server processes. It stays down: it never comes back as a writer. */
  killPrimary(): Promise<void>;
  /** Makes the replica a writable primary; resolves once it accepts writes. */
  promoteReplica(): Promise<void>;
  /**
   * Optional (repeated failovers): replaces the node that is down with a fresh replica of the current primary,
   * copied from scratch (never the old primary's data, which may hold commits the new primary lacks); resolves
   * once it has caught up and, at a synchronous level, acknowledges commits, with the milliseconds it took.
   */
  rebuildReplica?(): Promise<number>;
  /** Stops both servers (data directories kept for inspection until `remove`). */
  stop(): Promise<void>;
  remove(): Promise<void>;
}
