// The gap proof on a MariaDB Galera cluster: the single-server proof (gapTracker.ts, steps 0-3, facts F1-F4) run
// on every node of the cluster, with a fence before it and a confirmation after it.
//
// WHY THE SINGLE-SERVER PROOF FAILS ON A CLUSTER. Every node takes writes and has its own auto-increment counter
// (Galera sets auto_increment_increment to the cluster size and gives each node its own offset). A row that
// node 2 inserted is not on node 1 until node 2's commit has been certified and node 1's applier has written it;
// until then its offset is a hole on node 1, and nothing node 1 shows (its PROCESSLIST, its locks) says anything
// about node 2's statements and transactions. Measured: a consumer on node 1 with the node-local proof, 24 raw
// single-row publishers spread over 3 nodes, 9,000 messages: 69 lost, each passed as "never committed (proof:
// statements)". Nor does F1's step 0 hold across nodes: node 2 can hand out an offset below one node 1 already
// shows, for as long as node 2 has not applied that row.
//
// Facts used, beyond F1-F4 on each node:
//  G1 A node's counter only grows, and applying another node's row with offset M moves it past M (InnoDB takes
//     the larger of its counter and an explicit value; checked on 10.11: after applying node 1's rows up to 10,
//     node 2's next insert got 12). So once node k shows the row at M, every offset k allocates later is above M.
//     A node that joins or rejoins applies M (IST) or receives it (SST, with the stored counter) before it takes
//     writes.
//  G2 A local transaction on node k keeps its record locks (F4) through replication and certification until its
//     local commit; a commit that fails certification, or a transaction aborted by an applier (brute-force
//     abort) before it was certified, rolls back and removes its records under those locks. One exception: a
//     transaction brute-force aborted AFTER it was certified is rolled back (its record removed, unlocked) and
//     then replayed (written again) and committed; for that moment its origin shows neither the row nor a lock
//     (measured on 10.11 with 4 appliers: 87 of 940 such commits seen so by a NOWAIT locking read). It was
//     ordered before it was aborted, so step E's causal read shows it (87 of 87).
//  G3 A committed transaction is never undone: every node applies every certified write set, in one order. A
//     causal read (wsrep_sync_wait) on a node first applies every write set ordered before it began.
//  G4 An applier writes rows other nodes allocated and committed (explicit offsets); it allocates nothing.
//     Appliers show as `system user` with COMMAND Sleep even while they apply (read on 10.11, 1 and 4 applier
//     threads), so step 1 never waits for them, and their rows are committed where they came from (G3).
//  G5 A node that has left the primary component can keep a transaction open, and commit it after it rejoins:
//     checked on 10.11 (BEGIN; INSERT on node 3; node 3 isolated with gmcast.isolate, cluster size 2; back, size
//     3; COMMIT succeeded and the row reached every node). So a node outside the component is not proof that
//     its transactions ended.
//
// The steps, for the holes of [first hole, M) seen on the consumer's node (M the highest offset its read R0
// returned, so M is committed and ordered in the cluster):
//  A. Membership: the members of the primary component, as the consumer's node lists them
//     (wsrep_incoming_addresses), each reached on a connection of the prover's own. The named members plus
//     those listed without an address (arbitrators: no data, no transactions) must make up wsrep_cluster_size;
//     each named member must answer as a distinct node of that same view (its own wsrep_gcomm_uuid, the same
//     configuration id), the consumer's own node among them (so no address leads twice to one node while
//     another goes unprobed); each must be a member of the primary component that accepts queries, and grant
//     the PROCESS privilege (without it step C would see only its own connections: only the bound is left
//     then). Every node this prover has seen before must still be among them (G5). Otherwise wait, and say
//     which node and why: the bound (gapTimeoutMs) is then what passes the hole, counted as such.
//  B. Fence: on every node, a causal read until it shows the row at M. By G1 every offset a node allocates
//     afterwards is above M: the hole's allocator, on whichever node, had allocated it before.
//  C. Step 1 (gapTracker.ts) on every node: wait until each connection inside a statement at P1 has left it.
//  D. Step 2 on every node: the NOWAIT locking read of [first hole, M). A lock anywhere: wait. A row anywhere that
//     the consumer's read did not see below its lowest offset: the hole filled, the next read takes it.
//     Otherwise every offset of the range that no node shows has no record and no writer on the node that
//     allocated it (F2, F4, G2), and that node will never write it (F1, B), but for a replayed transaction
//     (G2's exception), which step E catches. S, the union of the rows the nodes returned, is every row of the
//     range but those.
//  E. Confirm: a causal read on the consumer's node of the range. Every transaction ordered before it began is
//     there (G3), a replayed one included; so a row outside S means D was too early: the proof starts again.
//     (This check is what makes G2's exception safe: it must survive any change to these steps.) Fewer rows
//     than S: wait for the node to apply them. Exactly S: every other offset of the range is permanent. The
//     configuration id is compared with the fence's too, a cheap guard: a view change during the proof means a
//     node joined or left; one that joins applies M before it takes writes (G1), so only a returner with a
//     transaction open from before it left (G5) matters, and that one is in the known set unless this prover
//     never saw it (below).
//  Applying the decision: the consume reads that pass these holes are causal reads too (OffsetReadParams.causal),
//  so whichever node they run on (a reconnect may land on another) shows every row of S.
//
// NOT covered: a node this prover has never seen as a member (down or cut off since before the worker started)
// that holds a transaction open from before it left the component, and commits it after rejoining (G5) below a
// hole already passed; a member whose client address is not in wsrep_incoming_addresses, or not reachable from
// the worker (steps wait, then the bound); a node removed for good keeps every proof waiting (the bound passes
// holes) until the worker restarts; inserts with explicit offsets; the counter moved back. What it costs:
// five or six short reads per node and proof, against the node-local proof's two or three; one proof covers
// every hole below M. Holes are the normal case on a cluster (each node skips the offsets its counter passed
// while applying others' rows), so proofs run often: one per batch at most.
import type { SqlExecutor } from '../../types.ts';
import { ProofInterrupted, type GapProbes, type OffsetRangeLocks, type ProofStep, type RunningStatements } from '../gapProbes.ts';
import type { PeerConnection } from '../engine.ts';
import { isServing, notServingReason, readGaleraStatus, type GaleraStatus } from './galera.ts';
import { lockOffsetRangeNowait, offsetRowVisible, selectOffsetsInRange } from './messagesTable.ts';
import { readRunningStatements } from './processlist.ts';
import { INNODB_TRX_CACHE_IDLE_MS, requireProcessPrivilege } from './innodbTrx.ts';
import { createClusterMembersTable, recordClusterMembers, selectClusterMembers } from './clusterMembers.ts';

export interface GaleraProverOptions {
  topic: string;
  /** Opens a connection to another member with the consumer's credentials (the address replaces host and port). */
  connectPeer: (address: string) => PeerConnection;
}

interface Peer {
  address: string;
  connection: PeerConnection;
  privilegeChecked: boolean;
}

/** Access denied (no PROCESS privilege, or none on the table): the tracker then keeps to the bound. */
const ACCESS_DENIED_ERRNOS = new Set([1227, 1044, 1142]);

/** What the prover remembers of one proof between the tracker's calls. */
interface ProofState {
  coversBelow: number;
  confId: string;
  members: string[];
  /** Step D's union of the rows the members returned, once every member answered without a lock. */
  committed: Set<number> | undefined;
}

const ok: ProofStep = { kind: 'ready' };
const wait = (reason: string): ProofStep => ({ kind: 'wait', reason });

export class GaleraProver {
  private readonly peers = new Map<string, Peer>();
  /**
   * Every member ever seen (G5): a node that left may come back with a transaction still open. Loaded from and
   * recorded in eob_cluster_members, so a worker restarted while a node is away still waits for it.
   */
  private readonly known = new Set<string>();
  /** The configuration id whose members were last recorded in eob_cluster_members. */
  private recordedConfId: string | undefined;
  private proof: ProofState | undefined;

  constructor(private readonly o: GaleraProverOptions) {}

  /** The probes of one decide() call; `session` is the consumer's connection to its own node. */
  probes(session: SqlExecutor): GapProbes {
    return {
      // Every member has the same accounts (Galera replicates them), so the consumer's own node answers for all.
      requireProcessPrivilege: () => requireProcessPrivilege(session),
      fence: (coversBelow) => this.fence(session, coversBelow),
      statements: () => this.statements(),
      rangeLocks: (from, below) => this.rangeLocks(from, below),
      confirm: (from, below) => this.confirm(session, from, below),
      writers: () => Promise.reject(new Error('the innodb-trx control does not run on a Galera cluster')),
      writersCacheIdleMs: INNODB_TRX_CACHE_IDLE_MS,
    };
  }

  async close(): Promise<void> {
    for (const peer of this.peers.values()) await peer.connection.close().catch(() => undefined);
    this.peers.clear();
  }

  /** Steps A and B. */
  private async fence(session: SqlExecutor, coversBelow: number): Promise<ProofStep> {
    this.proof = undefined;
    const local = await readGaleraStatus(session);
    if (isServing(local) && local.confId !== this.recordedConfId) await this.loadKnownMembers(session);
    const membership = this.membership(local);
    if (membership.kind !== 'ready') return membership;
    const uuids = new Set<string>();
    const names: { address: string; nodeName: string }[] = [];
    for (const address of local.incomingAddresses) {
      const status = await this.onMember(address, 'its status', readGaleraStatus);
      if (!isServing(status)) return wait(`member ${address} may not serve: ${notServingReason(status)}`);
      if (status.confId !== local.confId) return wait(`member ${address} is in configuration ${status.confId}, this node in ${local.confId}: a membership change is under way`);
      if (uuids.has(status.gcommUuid)) return wait(`two client addresses of wsrep_incoming_addresses lead to one node (${status.gcommUuid}), so another member cannot be probed: check wsrep_node_incoming_address on each node`);
      uuids.add(status.gcommUuid);
      names.push({ address, nodeName: status.nodeName });
      await this.requirePrivilege(address);
      if (!(await this.onMember(address, 'the fence read', (db) => offsetRowVisible(db, this.o.topic, coversBelow, true)))) {
        return wait(`member ${address} does not show offset ${coversBelow} yet`);
      }
    }
    if (!uuids.has(local.gcommUuid)) {
      return wait(`none of wsrep_incoming_addresses (${local.incomingAddresses.join(', ')}) leads to the consumer's own node: check wsrep_node_incoming_address on each node`);
    }
    if (local.confId !== this.recordedConfId) {
      await recordClusterMembers(session, names);
      this.recordedConfId = local.confId;
    }
    this.proof = { coversBelow, confId: local.confId, members: [...local.incomingAddresses], committed: undefined };
    return ok;
  }

  /** Adds the members earlier provers recorded (a table made on first use) to the known set. */
  private async loadKnownMembers(session: SqlExecutor): Promise<void> {
    await createClusterMembersTable(session);
    for (const m of await selectClusterMembers(session)) this.known.add(m.address);
  }

  /** Step A: the members the proof must cover, or why it cannot run now. */
  private membership(local: GaleraStatus): ProofStep {
    if (!isServing(local)) return wait(`this node may not serve: ${notServingReason(local)}`);
    const members = local.incomingAddresses;
    if (members.length + local.membersWithoutAddress !== local.clusterSize) {
      return wait(`the primary component has ${local.clusterSize} members but wsrep_incoming_addresses names ${members.length} (${members.join(', ') || 'none'}) and ${local.membersWithoutAddress} without an address`);
    }
    const repeated = members.find((a, i) => members.indexOf(a) !== i);
    if (repeated !== undefined) return wait(`wsrep_incoming_addresses names ${repeated} twice: check wsrep_node_incoming_address on each node`);
    if (members.some((a) => a.toUpperCase().startsWith('AUTO'))) return wait('a member lists its client address as AUTO: set wsrep_node_incoming_address');
    for (const address of members) this.known.add(address);
    const missing = [...this.known].filter((a) => !members.includes(a));
    if (missing.length > 0) {
      return wait(
        `node ${missing.join(', ')} has left the primary component and may still hold a transaction open that commits when it rejoins ` +
          `(if it is gone for good: eob cluster forget ${missing[0]})`,
      );
    }
    return ok;
  }

  /**
   * Once per member connection: without PROCESS its PROCESSLIST shows only the prover's own connections, and step
   * C would prove nothing there. An access error is thrown as it is: the tracker then keeps to the bound.
   */
  private async requirePrivilege(address: string): Promise<void> {
    const peer = this.peer(address);
    if (peer.privilegeChecked) return;
    try {
      await requireProcessPrivilege(peer.connection.executor);
    } catch (error) {
      if (ACCESS_DENIED_ERRNOS.has((error as { errno?: number }).errno ?? 0)) throw error;
      throw new ProofInterrupted(`member ${address} did not answer the privilege check (${(error as Error).message})`);
    }
    peer.privilegeChecked = true;
  }

  /** Step C's read: every member's connections inside a statement, keyed by member and connection id. */
  private async statements(): Promise<RunningStatements> {
    const proof = this.current();
    const all: RunningStatements = new Map();
    for (const address of proof.members) {
      const running = await this.onMember(address, 'step 1 (PROCESSLIST)', readRunningStatements);
      for (const [id, queryId] of running) all.set(`${address}/${id}`, queryId);
    }
    return all;
  }

  /** Step D on every member: locked if any member's read met a lock, else the union of the rows they returned. */
  private async rangeLocks(from: number, below: number): Promise<OffsetRangeLocks> {
    const proof = this.current();
    proof.committed = undefined;
    const union = new Set<number>();
    for (const address of proof.members) {
      const read = await this.onMember(address, 'step 2 (the locking read)', (db) => lockOffsetRangeNowait(db, this.o.topic, from, below));
      if (read.kind === 'locked') return read;
      for (const offset of read.offsets) union.add(offset);
    }
    proof.committed = union;
    return { kind: 'rows', offsets: [...union].sort((a, b) => a - b) };
  }

  /** Step E. */
  private async confirm(session: SqlExecutor, from: number, below: number): Promise<ProofStep> {
    const proof = this.current();
    const committed = proof.committed;
    if (committed === undefined) return { kind: 'restart', reason: 'step 2 has not run on every member' };
    const local = await readGaleraStatus(session);
    if (local.confId !== proof.confId) {
      return { kind: 'restart', reason: `the cluster's membership changed during the proof (configuration ${proof.confId} -> ${local.confId})` };
    }
    const shown = await selectOffsetsInRange(session, this.o.topic, from, below, true);
    const extra = shown.filter((o) => !committed.has(o));
    if (extra.length > 0) {
      // Expected now and then: a transaction replayed after a brute-force abort (G2) was absent at step D.
      return { kind: 'restart', reason: `offsets ${extra.slice(0, 5).join(', ')} committed after the members' locking reads (a replayed transaction)` };
    }
    if (shown.length < committed.size) return wait(`this node does not show ${committed.size - shown.length} rows another member has committed yet`);
    return ok;
  }

  private current(): ProofState {
    if (this.proof === undefined) throw new Error('galera gap proof: a step ran before the fence');
    return this.proof;
  }

  private peer(address: string): Peer {
    let peer = this.peers.get(address);
    if (peer === undefined) {
      peer = { address, connection: this.o.connectPeer(address), privilegeChecked: false };
      this.peers.set(address, peer);
    }
    return peer;
  }

  /** `read` on one member; a member that stops answering interrupts the proof (it starts again later). */
  private async onMember<T>(address: string, what: string, read: (db: SqlExecutor) => Promise<T>): Promise<T> {
    try {
      return await read(this.peer(address).connection.executor);
    } catch (error) {
      throw new ProofInterrupted(`member ${address} did not answer ${what} (${(error as Error).message})`);
    }
  }
}
