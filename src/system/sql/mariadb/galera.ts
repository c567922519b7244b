// What a MariaDB Galera node says about itself and its cluster: whether wsrep is on, the node's state, the
// primary component's members and their client addresses. Read by the worker (which nodes a gap proof must
// cover, and whether this node may serve at all), by the server (503 on a node that may not commit), and by
// the harness (a node is ready once it is Synced).
//
// Terms: a *member* is a node in the current primary component (wsrep_cluster_size counts them); a node
// outside it (lost quorum, still joining, cut off) answers 1047 "WSREP has not yet prepared node for
// application use" to almost every statement. The *configuration id* (wsrep_cluster_conf_id) changes with
// every view change, so two reads with the same id saw the same membership.
import type { SqlExecutor } from '../../types.ts';

/** MariaDB's error for a statement on a node that is not a synced member of a primary component. */
export const WSREP_NOT_READY_ERRNO = 1047;

export interface GaleraStatus {
  /** wsrep_on: false on a plain server (and on MySQL, which has no such variable). */
  enabled: boolean;
  /** wsrep_cluster_status: 'Primary', 'non-Primary' or 'Disconnected'. */
  clusterStatus: string;
  /** wsrep_local_state_comment: 'Synced', 'Donor/Desynced', 'Joining', 'Joined', 'Initialized', ... */
  localState: string;
  /** wsrep_ready: the node accepts queries. */
  ready: boolean;
  /** wsrep_cluster_size: members of the node's component. */
  clusterSize: number;
  /** wsrep_cluster_conf_id: changes with every view (membership) change. */
  confId: string;
  /** wsrep_incoming_addresses: the client address (host:port) of each member that has one. */
  incomingAddresses: string[];
  /**
   * Members listed without a client address: an arbitrator (garbd) votes in the component but holds no data
   * and runs no transactions.
   */
  membersWithoutAddress: number;
  /** wsrep_gcomm_uuid: this node's identity in the group (a new one at every start). */
  gcommUuid: string;
  /** wsrep_local_index: this node's place among the members (0 .. size-1) in the current view. */
  localIndex: number;
  /** wsrep_node_name. */
  nodeName: string;
  /** auto_increment_increment and auto_increment_offset as this node runs them (Galera sets them per view). */
  autoIncrementIncrement: number;
  autoIncrementOffset: number;
}

/**
 * True when a node in this state may run the statements of a publish or a consume: a member of a primary
 * component that accepts queries. Not only Synced: a donor (Donor/Desynced, during a backup or a state
 * transfer) and a node still applying what it missed (Joined) take reads and writes too; what they commit is
 * certified like any other node's.
 */
export function isServing(status: GaleraStatus): boolean {
  return !status.enabled || (status.ready && status.clusterStatus === 'Primary');
}

/** Why a node may not serve, in words for a log line ('' when it may). */
export function notServingReason(status: GaleraStatus): string {
  if (isServing(status)) return '';
  return `wsrep_cluster_status ${status.clusterStatus}, wsrep_local_state ${status.localState}, wsrep_ready ${status.ready ? 'ON' : 'OFF'}`;
}

const STATUS_VARIABLES = [
  'wsrep_cluster_status',
  'wsrep_local_state_comment',
  'wsrep_ready',
  'wsrep_cluster_size',
  'wsrep_cluster_conf_id',
  'wsrep_incoming_addresses',
  'wsrep_gcomm_uuid',
  'wsrep_local_index',
];

/**
 * The node's wsrep status. SHOW STATUS and reads of system variables are answered even by a node outside the
 * primary component (they are among the few statements wsrep lets through), so this works on a node that
 * refuses everything else.
 */
export async function readGaleraStatus(db: SqlExecutor): Promise<GaleraStatus> {
  let settings: { wsrep_on: unknown; inc: unknown; off: unknown; node_name: unknown } | undefined;
  try {
    [settings] = await db.query<{ wsrep_on: unknown; inc: unknown; off: unknown; node_name: unknown }[]>(
      'SELECT @@wsrep_on AS wsrep_on, @@auto_increment_increment AS inc, @@auto_increment_offset AS off, @@wsrep_node_name AS node_name',
    );
  } catch (error) {
    // 1193: unknown system variable, a server built without wsrep (MySQL): not a cluster node.
    if ((error as { errno?: number }).errno === 1193) return plainServer();
    throw error;
  }
  const enabled = Number(settings?.wsrep_on) === 1;
  if (!enabled) return { ...plainServer(), autoIncrementIncrement: Number(settings?.inc), autoIncrementOffset: Number(settings?.off) };
  const rows = await db.query<{ Variable_name: string; Value: string }[]>(
    `SHOW STATUS WHERE Variable_name IN (${STATUS_VARIABLES.map((v) => `'${v}'`).join(', ')})`,
  );
  const value = (name: string): string => rows.find((r) => r.Variable_name.toLowerCase() === name)?.Value ?? '';
  return {
    enabled,
    clusterStatus: value('wsrep_cluster_status'),
    localState: value('wsrep_local_state_comment'),
    ready: value('wsrep_ready').toUpperCase() === 'ON',
    clusterSize: Number(value('wsrep_cluster_size')) || 0,
    confId: value('wsrep_cluster_conf_id'),
    incomingAddresses: parseIncomingAddresses(value('wsrep_incoming_addresses')),
    membersWithoutAddress: value('wsrep_incoming_addresses') === '' ? 0 : value('wsrep_incoming_addresses').split(',').filter((a) => a.trim() === '').length,
    gcommUuid: value('wsrep_gcomm_uuid'),
    localIndex: Number(value('wsrep_local_index')),
    nodeName: String(settings?.node_name ?? ''),
    autoIncrementIncrement: Number(settings?.inc),
    autoIncrementOffset: Number(settings?.off),
  };
}

function plainServer(): GaleraStatus {
  return {
    enabled: false,
    clusterStatus: '',
    localState: '',
    ready: true,
    clusterSize: 1,
    confId: '',
    incomingAddresses: [],
    membersWithoutAddress: 0,
    gcommUuid: '',
    localIndex: 0,
    nodeName: '',
    autoIncrementIncrement: 1,
    autoIncrementOffset: 1,
  };
}

/** wsrep_incoming_addresses: comma-separated host:port, one per member ('AUTO' resolved by the server). */
export function parseIncomingAddresses(text: string): string[] {
  return text
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
}

/**
 * Galera's switch that cuts a node off from the group communication of the others (gmcast.isolate=1: every
 * message to or from them is dropped, as in a network partition of that node alone), or joins it back (0). The
 * harness's partition fault; the others see the node leave once they suspect it (evs.suspect_timeout).
 */
export async function setIsolated(db: SqlExecutor, isolated: boolean): Promise<void> {
  await db.query(`SET GLOBAL wsrep_provider_options = 'gmcast.isolate=${isolated ? 1 : 0}'`);
}
