// The shared primitives at the bottom of the system under test: what a SQL connection is, a statement, an
// isolation level, a message, and the rows every engine's tables share in meaning (a poisoned message, a
// claimed request id, what the harness reads back). Every other module of src/system imports these from here,
// so db/, sql/ (the neutral seam and each engine) and pubsub/ depend on this module and never on each other's
// types. Nothing here touches a database or names an engine.

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

/** One statement with its values, in the engine's own placeholders ('?' for MariaDB, '$1' for PostgreSQL). */
export interface Statement {
  sql: string;
  values: unknown[];
}

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
   * them itself more cheaply (pubsub/messageJson.ts); publishers write these instead of serializing again.
   */
  json?: { payload: string; metadata: string };
}

/** A message as it is delivered, with its position in the topic. */
export interface Message extends OutgoingMessage {
  offset: number;
  createdAt: Date;
}

/** Which topic table a poisoned message was read from, and by whom. */
export interface PoisonOrigin {
  topic: string;
  mode: TopicMode;
  /** Offset mode: the consumer group; queue mode: ''. */
  consumerGroup: string;
}

/** What the consume loop knows about a message it gives up on. */
export interface PoisonEntry {
  offset: number;
  error: string;
  failedDeliveries: number;
}

/** A row of a topic's poison table, as `eob poison` shows it. */
export interface PoisonRow {
  mode: TopicMode;
  consumerGroup: string;
  offset: number;
  uuid: string;
  createdAt: Date | null;
  payload: string | null;
  metadata: string | null;
  error: string;
  failedDeliveries: number;
  timesPoisoned: number;
  poisonedAt: Date;
}

export interface PoisonFilter {
  mode?: TopicMode;
  consumerGroup?: string;
  /** At most this many rows, newest first. */
  limit: number;
}

/** A request id the server de-duplicates on, with the counter it increments: an id is bound to one counter. */
export interface DedupClaim {
  requestId: string;
  counterUuid: string;
}

/** What the dedup table says about one request id after a claim. */
export interface ClaimedId {
  /** This transaction inserted the row: publish the id's message. */
  mine: boolean;
  /** The counter the id is bound to; undefined for rows from before the binding existed (any counter). */
  counterUuid: string | undefined;
}

/** Which topic and group a harness reads progress and consumption of. */
export interface ProgressTarget {
  mode: TopicMode;
  topic: string;
  /** The consumer group whose acked offset is progress (offset mode). */
  consumerGroup: string;
}

/** What the counter check compares `counter` against, read from the tables. */
export interface Consumption {
  /** Offset mode: the group's acked offset; queue mode: undefined. */
  ackedOffset: number | undefined;
  maxOffset: number;
  /** Rows in the topic table. */
  published: number;
  /** Everything published has been consumed (acked offset at the max; every queue row acked). */
  drained: boolean;
  /** Counter id -> messages consumed for it (offset mode: offsets up to the acked one; queue mode: acked rows). */
  consumedPerCounter: Map<string, number>;
}
