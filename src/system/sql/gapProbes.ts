// The gap proof's vocabulary, on the engine side of the seam: the reads a proof of a hole needs (GapProbes) and
// what they return. An engine whose offsets become visible out of order (MariaDB: allocated at INSERT, visible
// at COMMIT) implements these reads in its own folder; the gap tracker in pubsub/ knows only this interface.
// What each step proves is argued in pubsub/gapTracker.ts.

/**
 * A connection -> the QUERY_ID of the statement it is executing, for every connection inside a statement. The key
 * is PROCESSLIST.ID as text; a probe over several servers (a cluster's nodes) prefixes it with the server.
 */
export type RunningStatements = Map<string, string>;

/** What a locking read of a range of offsets found (MariaDB: lockOffsetRangeNowait in mariadb/messagesTable.ts). */
export type OffsetRangeLocks =
  /** Another transaction holds a lock the read needed: a row in the range is still being written or removed. */
  | { kind: 'locked'; errno: number }
  /** The offsets of the committed rows in the range (every other offset of the range has no row, and no writer). */
  | { kind: 'rows'; offsets: number[] };

export interface OpenWriters {
  /** True when the snapshot was taken during this call (MariaDB: readTransactionSnapshot in mariadb/innodbTrx.ts). */
  fresh: boolean;
  /** Real ids of open transactions, the probe's own excluded. */
  writers: Set<string>;
}

/**
 * A step of a proof that spans several servers: done (`ready`), not yet (`wait`, with the reason, for the log),
 * or void because what the proof rested on changed meanwhile (`restart`).
 */
export type ProofStep = { kind: 'ready' } | { kind: 'wait'; reason: string } | { kind: 'restart'; reason: string };

/**
 * Raised by a probe that could not read one of the servers a proof spans (a cluster member that stopped
 * answering): the proof under way is dropped and starts again from the beginning, and the hole waits meanwhile.
 */
export class ProofInterrupted extends Error {
  override readonly name = 'ProofInterrupted';
}

/** The reads a proof needs; each runs outside the consuming transaction, on the consumer's connection. */
export interface GapProbes {
  /**
   * Before step 1, where offsets are allocated by more than one server (a Galera cluster: every node has its own
   * auto-increment counter): `ready` once no server can allocate an offset below `coversBelow` from now on.
   * Absent on a single server, whose one counter is past every offset it handed out (F1).
   */
  fence?(coversBelow: number): Promise<ProofStep>;
  /**
   * After step 2 found every offset of [from, below) without a row permanent on every server: `ready` once the
   * consumer's own server shows every row that any server's step 2 returned, so that the reads that apply the
   * decision see them. Absent on a single server, where step 2 ran on the consumer's own server.
   */
  confirm?(from: number, below: number): Promise<ProofStep>;
  /** Step 1: the connections inside a statement now. */
  statements(): Promise<RunningStatements>;
  /**
   * Before step 1: whether the server is a replica whose applier writes rows now (see the MariaDB processlist
   * reads). The proof `statements` refuses to start there (the hole waits; only the bound can pass it): a hole on
   * a replica may be filled by a transaction still open on its primary. Absent where there is no such thing.
   */
  replicating?(): Promise<boolean>;
  /**
   * Before the bound passes a hole: how many commits on this server wait for a replica's semi-synchronous
   * acknowledgement now (MariaDB: Rpl_semi_sync_master_wait_sessions). Such a commit has its offset and is not
   * visible until the acknowledgement comes, which with no fallback may be any time later; so while one waits,
   * the bound does not pass the hole. Absent where commits never wait for a replica.
   */
  commitsAwaitingReplica?(): Promise<number>;
  /** Before the first proof: fails with 1227 (access denied) without the PROCESS privilege. */
  requireProcessPrivilege(): Promise<void>;
  /** Step 2: a NOWAIT locking read of the rows with `from <= offset < below`, in a transaction of its own. */
  rangeLocks(from: number, below: number): Promise<OffsetRangeLocks>;
  /** The `innodb-trx` control only. */
  writers(): Promise<OpenWriters>;
  /**
   * The `innodb-trx` control only: how long the server goes on serving the same snapshot of its open
   * transactions after a read (InnoDB's INNODB_TRX cache); the control reads no sooner than this after its last.
   */
  readonly writersCacheIdleMs: number;
}
