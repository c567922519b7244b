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

/** Something SQL can be sent to: a pool or one connection that holds a transaction. */
export interface SqlExecutor {
  query<T = unknown>(sql: string, values?: unknown[]): Promise<T>;
  /**
   * Runs one statement as a server-side prepared statement that the connection keeps, by its text, for its
   * next uses: the server parses the text once per connection and the values travel as bytes it need not
   * parse. Absent where the driver offers no such thing; callers then send the statement through query().
   */
  execute?<T = unknown>(sql: string, values: unknown[]): Promise<T>;
}

/**
 * How a topic is consumed, which also decides its table: offset (watermill_<topic>, one consumer group reads
 * in order and keeps a high-water mark) or queue (eob_queue_<topic>, rows acked one by one, any number of
 * workers in parallel).
 */
export type TopicMode = 'offset' | 'queue';
export const TOPIC_MODES: readonly TopicMode[] = ['offset', 'queue'];

/** A message as it is published: the offset is assigned by the topic. */
export interface OutgoingMessage {
  uuid: string;
  payload: unknown;
  metadata: Record<string, string>;
  /**
   * The payload and metadata as JSON text, exactly what JSON.stringify makes of them, when the producer built
   * them itself more cheaply (messageJson.ts); publishers write these instead of serializing again.
   */
  json?: { payload: string; metadata: string };
}

/** A message as it is delivered, with its position in the topic. */
export interface Message extends OutgoingMessage {
  offset: number;
  createdAt: Date;
}

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

export type IsolationLevel = 'READ UNCOMMITTED' | 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';
export const ISOLATION_LEVELS: readonly IsolationLevel[] = [
  'READ UNCOMMITTED',
  'READ COMMITTED',
  'REPEATABLE READ',
  'SERIALIZABLE',
];

/** Accepts `REPEATABLE-READ`, `repeatable_read` and `REPEATABLE READ` alike; returns undefined if none fits. */
export function parseIsolationLevel(text: string): IsolationLevel | undefined {
  const normalized = text.trim().toUpperCase().replace(/[-_\s]+/g, ' ');
  return ISOLATION_LEVELS.find((level) => level === normalized);
}

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
