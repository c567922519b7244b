// The engine seam: everything the pub/sub, the server, the worker and the harness's checks ask of a SQL
// database, as one typed interface with a params object per operation. An engine (src/system/sql/mariadb/ today;
// a PostgreSQL one beside it) implements it with its own SQL text, identifiers and locking; nothing above this
// seam writes SQL.
//
// What an engine must provide, and keep true:
// - Tables: a topic log per topic in each mode (offset: append-only, offsets allocated by the database in commit
//   order or with holes the subscriber can prove permanent; queue: rows with an acked flag), the consumer
//   groups' acked offsets, the publish-dedup ids, the poison table, and `counter` (the effect table).
// - Statements, not only calls: the consume loop sends a batch's read, effects and ack in one round trip where
//   the driver allows it, so the hot operations return a Statement ({ sql, values }) that the caller runs on the
//   transaction's connection. Placeholders are the engine's own ('?' for MariaDB, '$1' for PostgreSQL).
// - Isolation: the offset read must not block publishers at the consumers' default (READ COMMITTED); the queue
//   claim must skip rows other consumers hold (FOR UPDATE SKIP LOCKED or its equivalent).
// - The gap proof: `probeOpenWriters` answers which writing transactions are open now, freshly (a snapshot taken
//   after the call began), so a hole in the offsets can be passed only when no writer that could fill it is open.
// - Observation: progress, consumption per counter, and server facts, read from the tables (never from a
//   process's own report), for the bench's sampler and counter check and the chaos snapshot.
import type { Message, OutgoingMessage, SqlExecutor, TopicMode } from '../pubsub/types.ts';
import type { Statement } from '../db/pool.ts';
import type { Consumption, ProgressTarget } from './mariadb/observation.ts';
import type { OpenWriters } from './mariadb/innodbTrx.ts';
import type { PoisonEntry, PoisonOrigin } from './mariadb/poisonTable.ts';
import type { ClaimedId, DedupClaim } from './mariadb/publishDedupTable.ts';

export type EngineName = 'mariadb' | 'postgres';
export type { Statement, Consumption, ProgressTarget, OpenWriters, PoisonEntry, PoisonOrigin, ClaimedId, DedupClaim };

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
export interface ReadAfterAckedParams extends GroupParams {
  limit: number;
}
export interface AckParams extends GroupParams {
  offset: number;
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

export interface SqlEngine {
  readonly name: EngineName;

  /** Creates the topic's table for `mode`, `counter` and (dedup) the dedup table, idempotently. */
  ensureSchema(db: SqlExecutor, p: SchemaParams): Promise<void>;
  /** Creates the offsets table and the group's row (acked offset 0) if missing. */
  ensureGroup(db: SqlExecutor, p: GroupParams): Promise<void>;

  /** One statement for all messages; resolves after they are durable (when `db` is not in a transaction). */
  publish(db: SqlExecutor, p: PublishParams): Promise<void>;
  /** For each request id: whether this transaction claimed it (publish it) and the counter it is bound to. */
  claimRequestIds(tx: SqlExecutor, p: ClaimRequestIdsParams): Promise<Map<string, ClaimedId>>;

  /** Offset mode: locks the group's row for the consume transaction and returns its acked offset. */
  lockAckedOffsetStatement(p: GroupParams): Statement;
  ackedOffsetOf(rows: unknown, p: GroupParams): number;
  /**
   * Offset mode: up to `limit` messages after the group's acked offset, in offset order, read without blocking
   * publishers; sent right after lockAckedOffsetStatement in the same transaction (one round trip).
   */
  selectMessagesAfterAckedStatement(p: ReadAfterAckedParams): Statement;
  writeAckedOffsetStatement(p: AckParams): Statement;
  selectAckedOffset(db: SqlExecutor, p: GroupParams): Promise<number>;

  /** Queue mode: claims unacked rows no other consumer holds. */
  claimUnackedStatement(p: ClaimParams): Statement;
  markAckedStatement(p: MarkAckedParams): Statement;

  /** Moves a message the handler kept rejecting to the poison table, in the transaction that acks it. */
  poisonMessageStatement(origin: PoisonOrigin, entry: PoisonEntry): Statement;

  /** Adds each counter's increment in one statement (the effect of a batch). */
  addToCountersStatement(increments: ReadonlyMap<string, number>): Statement;
  selectCounterValue(db: SqlExecutor, id: string): Promise<number | undefined>;

  /** Which writing transactions are open right now, from a snapshot taken after this call began. */
  probeOpenWriters(db: SqlExecutor): Promise<OpenWriters>;

  /** Progress, published and lag, as the sampler reads them. */
  selectProgress(db: SqlExecutor, p: ProgressTarget): Promise<{ progress: number; published: number; lagMs: number | undefined }>;
  /** Messages consumed per counter and the topic's extent, as the counter check reads them. */
  selectConsumption(db: SqlExecutor, p: ProgressTarget): Promise<Consumption>;
  selectAllCounters(db: SqlExecutor): Promise<Map<string, number>>;
  /** Every message of the topic (the chaos snapshot); queue mode with its acked flag in `ackedOffsets`. */
  selectAllMessages(db: SqlExecutor, p: TopicParams & { mode: TopicMode }): Promise<{ messages: Message[]; ackedOffsets?: Set<number> }>;
  selectServerVersion(db: SqlExecutor): Promise<string>;
}
