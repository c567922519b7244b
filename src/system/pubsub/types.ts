// The pub/sub vocabulary, shared by every implementation (SQL offset and queue mode on MariaDB or PostgreSQL,
// in-memory). Nothing here touches a database.
//
// Terminology (these words mean one thing everywhere: code, CSV columns, logs, tests):
// - message: one row of a topic table: `offset`, `uuid`, `created_at`, `payload`, `metadata`.
// - topic: a named log with one table; the counter service uses topic `counter`.
// - offset: a message's auto-increment position in its topic, allocated at INSERT, visible at COMMIT. On
//   PostgreSQL a consumer group's position is (transaction id, offset): the order rows are delivered in.
// - mode (TopicMode): how a topic is consumed. offset: consumer groups read in order and keep a high-water
//   mark; queue: rows are claimed and acked one by one by any number of consumers.
// - consumer group: a named reader of an offset-mode topic with one acked offset.
// - batch: the messages one consume transaction reads and handles.
// - ack: recording that a message's effects are done (the group's offset advanced, or the row marked acked).
// - nack: the handler threw; the transaction rolls back and the batch is delivered again.
// - effect: what the handler writes (the counter increment), in the transaction that acks.
// - gap (hole): an offset below the last one seen that is not visible; passed only when proven permanent.
// - poison: a message the handler kept rejecting, moved to the poison table in the transaction that acks it.
// - handler: the code run on a batch; the counter worker has two (batched: one aggregated upsert per batch;
//   watermill: the reference consumer's read-then-write per message). "profile" means only a run's size.
// - isolation: the consume transaction's isolation level; ack mode: when the ack commits relative to effects.
//
// The primitives under this vocabulary (a SQL executor, a message, a topic mode, an isolation level) live in
// ../types.ts, at the bottom of the system; they are named again here for the callers of the pub/sub.
import type { Message, OutgoingMessage, SqlExecutor } from '../types.ts';
export type { IsolationLevel, Message, OutgoingMessage, SqlExecutor, TopicMode } from '../types.ts';
export { ISOLATION_LEVELS, parseIsolationLevel, TOPIC_MODES } from '../types.ts';

/**
 * The transaction a batch is consumed in. Handlers write their effects through it, so the effects commit or
 * roll back together with the ack; an implementation with no database hands a stand-in that records writes.
 */
export interface ConsumeTx extends SqlExecutor {
  readonly kind: 'mysql' | 'postgres' | 'memory';
}

/** `(messages, tx) => Promise<void>`: throwing rolls the whole batch back (a nack). */
export type BatchHandler = (messages: readonly Message[], tx: ConsumeTx) => Promise<void>;

/**
 * - transactional: effects and ack commit together (exactly-once).
 * - after-commit: effects commit, then the ack in a second transaction (at-least-once; the duplicate control).
 * - before-commit: the ack commits first, then the effects (at-most-once; the loss control).
 */
export type AckMode = 'transactional' | 'after-commit' | 'before-commit';
export const ACK_MODES: readonly AckMode[] = ['transactional', 'after-commit', 'before-commit'];

/** Counts a subscriber keeps, for logs and for the bench. */
export interface SubscriberStats {
  batches: number;
  messages: number;
  rollbacks: number;
  retries: number;
  /**
   * Of the retries, those of a transaction rolled back by a conflict: a deadlock, or on a Galera cluster a
   * certification conflict (another node's transaction on the same rows was ordered first).
   */
  conflictRetries: number;
  /** Offsets passed over as holes, offset mode only, whatever passed them. */
  gapsPassed: number;
  /** Of those, offsets passed by the bound (the gap timeout) without proof. */
  gapsPassedByTimeout: number;
  /** Of those, offsets passed by the `statements` proof (covers the allocator window). */
  gapsPassedByStatements: number;
  /** Of those, offsets passed by the `innodb-trx` rule (the control; misses the allocator window). */
  gapsPassedByInnodbTrx: number;
  /** Messages moved to the poison table after failing their handler too often (also counted in `messages`). */
  poisoned: number;
}

/** A running consumer; `close()` finishes or rolls back the batch in hand, then resolves. */
export interface Subscription {
  readonly stats: SubscriberStats;
  close(): Promise<void>;
  /** Resolves when the consume loop has ended (after close, or on a fatal error, which it rejects with). */
  readonly done: Promise<void>;
}

export interface Publisher {
  /** Publishes all messages in one INSERT (PostgreSQL: one per 21,845); resolves after they are durable. */
  publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void>;
}

export interface SubscribeOptions {
  topic: string;
  consumerGroup: string;
  batchSize: number;
  handler: BatchHandler;
}

export interface PubSub extends Publisher {
  subscribe(options: SubscribeOptions): Promise<Subscription>;
}
