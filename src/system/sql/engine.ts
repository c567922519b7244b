// The engine seam: everything the pub/sub, the server, the worker and the harness's checks ask of a SQL
// database, as one typed interface with a params object per operation. An engine (src/system/sql/mariadb/,
// src/system/sql/postgres/) implements it with its own SQL text, identifiers and locking; nothing above this
// seam writes SQL. db/databaseUrl.ts picks the engine from a database URL's scheme.
//
// What an engine must provide, and keep true:
// - Tables: a topic log per topic in each mode (offset: append-only, read in an order no later commit can insert
//   into below the reader's position, or with holes the subscriber can prove permanent; queue: rows with an
//   acked flag), the consumer groups' acked positions, the publish-dedup ids, the poison table, and `counter`
//   (the effect table).
// - Statements, not only calls: the consume loop sends a batch's read, effects and ack in as few round trips as
//   the driver allows, so the hot operations return a Statement ({ sql, values }) that the caller runs on the
//   transaction's connection. Placeholders are the engine's own ('?' for MariaDB, '$1' for PostgreSQL).
// - Isolation: the offset read must not block publishers at the consumers' default (READ COMMITTED); the queue
//   claim must skip rows other consumers hold (FOR UPDATE SKIP LOCKED or its equivalent).
// - Offset mode's holes: an engine whose read can return a later row before an earlier one commits (MariaDB:
//   offsets allocated at INSERT, visible at COMMIT) provides `gapProbes`, the reads the gap proof needs; an
//   engine whose read returns only a closed prefix (PostgreSQL's xmin rule) sets `offsetReadIsGapFree`.
// - Observation: progress, consumption per counter, and server facts, read from the tables (never from a
//   process's own report), for the bench's sampler and counter check and the chaos snapshot.
import type { ClaimedId, Consumption, DedupClaim, Message, OutgoingMessage, PoisonEntry, PoisonFilter, PoisonOrigin, PoisonRow, ProgressTarget, SqlExecutor, Statement, TopicMode } from '../types.ts';
import type { GapProbes } from './gapProbes.ts';

export type EngineName = 'mariadb' | 'postgres';
export const ENGINE_NAMES: readonly EngineName[] = ['mariadb', 'postgres'];
export type { Statement, Consumption, ProgressTarget, PoisonEntry, PoisonFilter, PoisonOrigin, PoisonRow, ClaimedId, DedupClaim };

export interface TopicParams {
  topic: string;
}
export interface GroupParams extends TopicParams {
  consumerGroup: string;
}
export interface SchemaParams extends TopicParams {
  mode: TopicMode;
  /** Also create the publish-dedup table (the server's --dedup). */
  dedup: boolean;
}
export interface PublishParams extends TopicParams {
  mode: TopicMode;
  messages: readonly OutgoingMessage[];
}
export interface OffsetReadParams extends GroupParams {
  limit: number;
  /**
   * closed-prefix (every subscriber): the engine's safe read. committed: whatever has committed, with no
   * visibility rule (PostgreSQL's control reader without the xmin condition; on MariaDB the same read, whose
   * holes the subscriber's gap handling decides about).
   */
  visibility: 'closed-prefix' | 'committed';
  /**
   * The read must see every transaction committed on any node of the cluster before it began (a Galera causal
   * read). The offset subscriber asks for it while a hole decision made by a cluster-wide proof is not yet
   * applied: the read that applies it may run on another node than the one that confirmed it (a reconnect
   * through a proxy), which may not have applied every row the proof found committed.
   */
  causal?: boolean;
}
/** What an offset-mode read found: the group's acked offset (as stored) and the messages after it, in order. */
export interface OffsetRead {
  /** Engines that need it for gap handling; undefined where the read is gap-free. */
  ackedOffset: number | undefined;
  messages: Message[];
}
export interface ClaimParams extends TopicParams {
  limit: number;
}
export interface MarkAckedParams extends TopicParams {
  offsets: readonly number[];
}
export interface ClaimRequestIdsParams extends TopicParams {
  /** Each request id with the counter it increments: an id is bound to one counter. */
  claims: readonly DedupClaim[];
  /** A token unique to this publish, so the rows it claimed can be told from rows claimed before. */
  token: string;
}
export interface PruneParams extends TopicParams {
  batchSize: number;
  maxBatches: number;
}
/** One prune of an offset topic: what was removed below which floor, and in how many DELETEs. */
export interface OffsetPrune {
  removed: number;
  /** The lowest acked offset over the groups (as stored); undefined with no group. */
  floor: number | undefined;
  groups: number;
  batches: number;
}

/** A connection of a gap prover's own to another member of a cluster. */
export interface PeerConnection {
  readonly executor: SqlExecutor;
  close(): Promise<void>;
}

/** The gap proof's state on a cluster, kept across proofs (the members seen, a connection to each). */
export interface ClusterGapProver {
  /** The probes of one proof step; `session` is the consumer's connection to its own node. */
  probes(session: SqlExecutor): GapProbes;
  close(): Promise<void>;
}

export interface SqlEngine {
  readonly name: EngineName;

  /** Creates the topic's table for `mode`, `counter` and (dedup) the dedup table, idempotently. */
  ensureSchema(db: SqlExecutor, p: SchemaParams): Promise<void>;
  /** Offset mode: creates the messages, offsets and poison tables and the group's row (position 0) if missing. */
  ensureGroup(db: SqlExecutor, p: GroupParams): Promise<void>;
  /** Queue mode, before a consumer starts: checks the server can run its ack, creates the queue and poison tables if missing. */
  ensureQueue(db: SqlExecutor, p: TopicParams): Promise<void>;
  /** Creates the topic table of `mode` only (a publisher's auto-initialization). */
  ensureTopicTable(db: SqlExecutor, p: TopicParams & { mode: TopicMode }): Promise<void>;

  /** Rows one INSERT may carry; publish sends more as several INSERTs (the caller's transaction keeps them atomic). */
  readonly maxMessagesPerInsert: number;
  /** A multi-row INSERT for all messages (several past maxMessagesPerInsert); durable on return in autocommit. */
  publish(db: SqlExecutor, p: PublishParams): Promise<void>;
  /** Request ids longer than this cannot be claimed (they become message uuids). */
  readonly maxDedupRequestIdLength: number;
  /** For each request id: whether this transaction claimed it (publish it) and the counter it is bound to. */
  claimRequestIds(tx: SqlExecutor, p: ClaimRequestIdsParams): Promise<Map<string, ClaimedId>>;

  /**
   * Offset mode: statements run right after the consume transaction begins that lock the group's position (one
   * batch of a group at a time) and read up to `limit` messages after it, without blocking publishers.
   */
  offsetReadStatements(p: OffsetReadParams): Statement[];
  /** Turns the results of offsetReadStatements (one per statement) into the acked offset and the messages. */
  offsetReadResult(results: unknown[], p: GroupParams): OffsetRead;
  /** The ack: the group's position becomes `last` (a message offsetReadResult returned). */
  offsetAckStatement(p: GroupParams, last: Message): Statement;
  /** True when the closed-prefix read can never be followed by a commit below it: no hole needs handling. */
  readonly offsetReadIsGapFree: boolean;
  /** The reads of the gap proof on `session` (engines whose offsets become visible out of order). */
  gapProbes?(session: SqlExecutor, p: TopicParams): GapProbes;
  /**
   * When `session`'s server is one node of a multi-primary cluster (MariaDB Galera), a prover whose probes cover
   * every member (it opens its own connections to them with `connectPeer`); undefined on a server of its own.
   */
  clusterGapProver?(session: SqlExecutor, p: TopicParams & { connectPeer: (address: string) => PeerConnection }): Promise<ClusterGapProver | undefined>;
  /** The group's acked offset as stored (0 before the first ack). */
  selectAckedOffset(db: SqlExecutor, p: GroupParams): Promise<number>;

  /** Queue mode: claims unacked rows no other consumer holds. */
  claimUnackedStatement(p: ClaimParams): Statement;
  claimedMessages(rows: unknown): Message[];
  markAckedStatement(p: MarkAckedParams): Statement;

  /** Moves a message the handler kept rejecting to the poison table, in the transaction that acks it. */
  poisonMessageStatement(origin: PoisonOrigin, entry: PoisonEntry & { message?: Message }): Statement;
  poisonTableName(topic: string): string;
  /** Poisoned messages, newest first; undefined when no worker has created the table (nothing ever poisoned). */
  selectPoisoned(db: SqlExecutor, p: TopicParams & { filter: PoisonFilter }): Promise<PoisonRow[] | undefined>;
  /** How many messages were poisoned (0 without the table): the bench and chaos `poisoned` column. */
  countPoisoned(db: SqlExecutor, p: TopicParams): Promise<number>;

  /** Adds each counter's increment in one statement (the effect of a batch). */
  addToCountersStatement(increments: ReadonlyMap<string, number>): Statement;
  selectCounterValue(db: SqlExecutor, id: string): Promise<number | undefined>;
  /** The watermill handler's write: an absolute value (safe only under the isolation it runs at). */
  setCounterValue(db: SqlExecutor, id: string, value: number): Promise<void>;

  /** Retention: messages every group has acked, acked queue rows, dedup ids older than `windowS`. */
  pruneOffsetTopic(db: SqlExecutor, p: PruneParams, each: (step: () => Promise<number>) => Promise<number>): Promise<OffsetPrune>;
  deleteAckedQueueRows(db: SqlExecutor, p: TopicParams & { limit: number }): Promise<number>;
  deleteDedupRowsOlderThan(db: SqlExecutor, p: TopicParams & { windowS: number; limit: number }): Promise<number>;
  /** The error says a table does not exist (the dedup table before any server ran with --dedup). */
  isMissingTable(error: unknown): boolean;

  /** The cheapest statement that proves the server answers. */
  ping(db: SqlExecutor): Promise<void>;
  /** Progress, published and lag, as the sampler reads them. */
  selectProgress(db: SqlExecutor, p: ProgressTarget): Promise<{ progress: number; published: number; lagMs: number | undefined }>;
  /**
   * The same reading for a poller that reads again and again (the sampler): an engine may carry counts from one
   * reading to the next (PostgreSQL counts rows, which would cost a scan each time); the figures are the same.
   */
  progressReader(p: ProgressTarget): (db: SqlExecutor) => Promise<{ progress: number; published: number; lagMs: number | undefined }>;
  /** Messages consumed per counter and the topic's extent, as the counter check reads them. */
  selectConsumption(db: SqlExecutor, p: ProgressTarget): Promise<Consumption>;
  selectAllCounters(db: SqlExecutor): Promise<Map<string, number>>;
  /** The sum of every counter: what a harness watches for quiescence (it stops moving once the workers are done). */
  sumCounters(db: SqlExecutor): Promise<number>;
  /** Every message of the topic (the chaos snapshot); queue mode with its acked flag in `ackedOffsets`. */
  selectAllMessages(db: SqlExecutor, p: TopicParams & { mode: TopicMode }): Promise<{ messages: Message[]; ackedOffsets?: Set<number> }>;
  /** Empties the topic's tables and `counter` between bench points; offsets start again at 1. */
  truncateTopic(db: SqlExecutor, p: TopicParams): Promise<void>;
  selectServerVersion(db: SqlExecutor): Promise<string>;
}
