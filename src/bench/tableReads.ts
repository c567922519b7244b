// The one observation layer the bench and the chaos harness share: what they read from the database to say how
// far a run got and whether it was right. Progress over time is the sampler (sampler.ts, on selectProgress);
// this module holds the one-off reads: the drain position, the snapshot the chaos checker judges, the
// consumption the bench's counter check judges. Rates over the readings are pure functions in metrics.ts.
// Measurement comes from the database, never from a worker's own report. Every read goes through the engine
// seam (system/sql/engine.ts), so the same code measures MariaDB and PostgreSQL.
import type { Message, SqlExecutor, TopicMode } from '../system/pubsub/types.ts';
import type { Consumption, ProgressTarget, SqlEngine } from '../system/sql/engine.ts';
import { checkCounters, type CounterCheck } from './counterCheck.ts';

export type { ProgressTarget, SqlEngine };

/** How far the drain is, in messages: published (rows in the topic) and consumed by the group (or acked rows). */
export interface DrainPosition {
  published: number;
  acked: number;
}

/**
 * Offset mode: the engine's progress reading (MariaDB: the acked offset against MAX(offset); PostgreSQL: rows at
 * or before the group's position against all rows). Queue mode: rows, and rows acked, counted (MAX(offset) would
 * count the offsets of rolled-back INSERTs, which never get acked).
 */
export async function readDrainPosition(db: SqlExecutor, engine: SqlEngine, t: ProgressTarget): Promise<DrainPosition> {
  if (t.mode === 'queue') {
    const c = await engine.selectConsumption(db, t);
    let acked = 0;
    for (const n of c.consumedPerCounter.values()) acked += n;
    return { published: c.published, acked };
  }
  const p = await engine.selectProgress(db, t);
  return { published: p.published, acked: p.progress };
}

/** One topic row as the chaos checker needs it; `acked` says whether the consumer group has acknowledged it. */
export interface SnapshotMessage {
  offset: number;
  /** metadata.request_id (undefined when the row has none). */
  requestId: string | undefined;
  /** payload.counter_uuid (undefined when the payload has none). */
  counterUuid: string | undefined;
  acked: boolean;
  /** PostgreSQL: the id of the inserting transaction (the first key of delivery order); absent on MariaDB. */
  transactionId?: string;
}

export interface DbSnapshot {
  messages: readonly SnapshotMessage[];
  /** Every row of `counter`: id -> value. */
  counters: ReadonlyMap<string, number>;
  /** Offset mode: the group's offset_acked, reported beside the verdict. */
  ackedOffset?: number;
}

/** A message as PostgreSQL returns it: with the id of its inserting transaction, the first key of delivery order. */
interface WithTransactionId {
  transactionId?: string;
}

/**
 * Every message of the topic with its acked flag, and every counter: what the chaos checker judges. Offset
 * mode: on MariaDB a message is acked when its offset is at or below the group's acked offset; on PostgreSQL
 * the group consumes in (transaction id, offset) order, so the acked messages are the first `progress` of the
 * topic in that order (progress counts the rows at or before the group's position). Read after the run has
 * quiesced, the two reads see the same rows.
 */
export async function takeSnapshot(db: SqlExecutor, engine: SqlEngine, t: ProgressTarget): Promise<DbSnapshot> {
  const counters = await engine.selectAllCounters(db);
  const { messages, ackedOffsets } = await engine.selectAllMessages(db, { topic: t.topic, mode: t.mode });
  if (ackedOffsets !== undefined) return { messages: messages.map((m) => toSnapshotMessage(m, ackedOffsets.has(m.offset))), counters };
  const ackedOffset = await engine.selectAckedOffset(db, { topic: t.topic, consumerGroup: t.consumerGroup });
  if (engine.name === 'postgres') {
    const { progress } = await engine.selectProgress(db, t);
    const order = [...messages].sort(deliveryOrder);
    const acked = new Set(order.slice(0, progress).map((m) => m.offset));
    return { messages: messages.map((m) => toSnapshotMessage(m, acked.has(m.offset))), counters, ackedOffset };
  }
  return { messages: messages.map((m) => toSnapshotMessage(m, m.offset <= ackedOffset)), counters, ackedOffset };
}

function deliveryOrder(a: Message & WithTransactionId, b: Message & WithTransactionId): number {
  const ta = BigInt(a.transactionId ?? '0');
  const tb = BigInt(b.transactionId ?? '0');
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.offset - b.offset;
}

function toSnapshotMessage(m: Message & WithTransactionId, acked: boolean): SnapshotMessage {
  const payload = m.payload as { counter_uuid?: unknown } | null;
  const requestId = m.metadata.request_id;
  return {
    offset: m.offset,
    requestId: typeof requestId === 'string' ? requestId : undefined,
    counterUuid: payload !== null && typeof payload === 'object' && typeof payload.counter_uuid === 'string' ? payload.counter_uuid : undefined,
    acked,
    ...(m.transactionId === undefined ? {} : { transactionId: String(m.transactionId) }),
  };
}

/** The bench's check of one point: the consumption counted by the database against `counter`. */
export async function checkConsumption(db: SqlExecutor, engine: SqlEngine, t: ProgressTarget): Promise<{ consumption: Consumption; check: CounterCheck }> {
  const consumption = await engine.selectConsumption(db, t);
  const actual = await engine.selectAllCounters(db);
  return { consumption, check: checkCounters(consumption.consumedPerCounter, actual) };
}

/** Messages set aside in the topic's poison table (0 when there is none). */
export function countPoisonedMessages(db: SqlExecutor, engine: SqlEngine, topic: string): Promise<number> {
  return engine.countPoisoned(db, { topic });
}

/** The sum of every counter: what quiescence watches (it stops moving once the workers are done). */
export function sumAllCounters(db: SqlExecutor, engine: SqlEngine): Promise<number> {
  return engine.sumCounters(db);
}

export type { TopicMode };
