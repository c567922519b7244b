// The one observation layer the bench and the chaos harness share: what they read from the database to say how
// far a run got and whether it was right. Progress over time is the sampler (sampler.ts, on selectProgress);
// this module holds the one-off reads: the drain position, the snapshot the chaos checker judges, the
// consumption the bench's counter check judges. Rates over the readings are pure functions in metrics.ts.
// Measurement comes from the database, never from a worker's own report.
import type { Message, SqlExecutor, TopicMode } from '../system/pubsub/types.ts';
import { selectAllMessages, selectMaxOffset } from '../system/sql/mariadb/messagesTable.ts';
import { selectAckedOffset } from '../system/sql/mariadb/offsetsTable.ts';
import { countQueue, selectAckedQueueOffsets, selectAllQueueMessages } from '../system/sql/mariadb/queueTable.ts';
import { selectAllCounters } from '../system/sql/mariadb/counterTable.ts';
import { selectConsumption, type Consumption, type ProgressTarget } from '../system/sql/mariadb/observation.ts';
import { checkCounters, type CounterCheck } from './counterCheck.ts';

export type { ProgressTarget };

/** How far the drain is: offset mode the max offset and the group's acked offset; queue mode rows and acked rows. */
export interface DrainPosition {
  published: number;
  acked: number;
}

export async function readDrainPosition(db: SqlExecutor, t: ProgressTarget): Promise<DrainPosition> {
  if (t.mode === 'queue') {
    const q = await countQueue(db, t.topic);
    return { published: q.total, acked: q.acked };
  }
  const [published, acked] = await Promise.all([selectMaxOffset(db, t.topic), selectAckedOffset(db, t.topic, t.consumerGroup)]);
  return { published, acked };
}

/** One topic row as the chaos checker needs it; `acked` says whether the consumer group has acknowledged it. */
export interface SnapshotMessage {
  offset: number;
  /** metadata.request_id (undefined when the row has none). */
  requestId: string | undefined;
  /** payload.counter_uuid (undefined when the payload has none). */
  counterUuid: string | undefined;
  acked: boolean;
}

export interface DbSnapshot {
  messages: readonly SnapshotMessage[];
  /** Every row of `counter`: id -> value. */
  counters: ReadonlyMap<string, number>;
  /** Offset mode: the group's offset_acked, reported beside the verdict. */
  ackedOffset?: number;
}

/** Every message of the topic with its acked flag, and every counter: what the chaos checker judges. */
export async function takeSnapshot(db: SqlExecutor, t: ProgressTarget): Promise<DbSnapshot> {
  const counters = await selectAllCounters(db);
  if (t.mode === 'queue') {
    const [messages, acked] = await Promise.all([selectAllQueueMessages(db, t.topic), selectAckedQueueOffsets(db, t.topic)]);
    return { messages: messages.map((m) => toSnapshotMessage(m, acked.has(m.offset))), counters };
  }
  const [messages, ackedOffset] = await Promise.all([selectAllMessages(db, t.topic), selectAckedOffset(db, t.topic, t.consumerGroup)]);
  return { messages: messages.map((m) => toSnapshotMessage(m, m.offset <= ackedOffset)), counters, ackedOffset };
}

function toSnapshotMessage(m: Message, acked: boolean): SnapshotMessage {
  const payload = m.payload as { counter_uuid?: unknown } | null;
  const requestId = m.metadata.request_id;
  return {
    offset: m.offset,
    requestId: typeof requestId === 'string' ? requestId : undefined,
    counterUuid: payload !== null && typeof payload === 'object' && typeof payload.counter_uuid === 'string' ? payload.counter_uuid : undefined,
    acked,
  };
}

/** The bench's check of one point: the consumption counted by the database against `counter`. */
export async function checkConsumption(db: SqlExecutor, t: ProgressTarget): Promise<{ consumption: Consumption; check: CounterCheck }> {
  const consumption = await selectConsumption(db, t);
  const actual = await selectAllCounters(db);
  return { consumption, check: checkCounters(consumption.consumedPerCounter, actual) };
}

export type { TopicMode };
