// The SQL ceiling of the sweep: a raw-SQL consume loop in this process, no pub/sub layer, no child process:
// the offset mode's transaction (lock the group's row, read a batch after it, one aggregated upsert, write the
// ack, commit) run back to back on one connection. What the database allows at a batch size.
import type { Pool } from '../system/db/pool.ts';
import { beginTransaction, executorOf } from '../system/db/pool.ts';
import type { IsolationLevel } from '../system/pubsub/types.ts';
import { selectMessagesAfter } from '../system/sql/messagesTable.ts';
import { ensureGroupRow, lockAckedOffset, writeAckedOffset } from '../system/sql/offsetsTable.ts';
import { addToCounters } from '../system/sql/counterTable.ts';

export interface SqlCeilingOptions {
  topic: string;
  consumerGroup: string;
  batchSize: number;
  isolation: IsolationLevel;
  /** Stop when the acked offset reaches this (the backlog's last offset). */
  untilOffset: number;
  deadlineMs: number;
  signal: AbortSignal | undefined;
}

/** Runs the loop until the backlog is consumed, the deadline passes or the signal aborts; returns messages consumed. */
export async function runSqlConsumeLoop(pool: Pool, o: SqlCeilingOptions): Promise<number> {
  const conn = await pool.getConnection();
  const db = executorOf(conn);
  const deadline = performance.now() + o.deadlineMs;
  let consumed = 0;
  try {
    await ensureGroupRow(db, o.topic, o.consumerGroup);
    for (;;) {
      if (performance.now() > deadline || o.signal?.aborted === true) break;
      await beginTransaction(conn, o.isolation);
      try {
        const acked = await lockAckedOffset(db, o.topic, o.consumerGroup);
        const batch = await selectMessagesAfter(db, o.topic, acked, o.batchSize);
        const last = batch[batch.length - 1];
        if (last === undefined) {
          await conn.query('ROLLBACK');
          if (acked >= o.untilOffset) break;
          continue;
        }
        const increments = new Map<string, number>();
        for (const m of batch) {
          const id = (m.payload as { counter_uuid: string }).counter_uuid;
          increments.set(id, (increments.get(id) ?? 0) + 1);
        }
        await addToCounters(db, increments);
        await writeAckedOffset(db, o.topic, o.consumerGroup, last.offset);
        await conn.query('COMMIT');
        consumed += batch.length;
        if (last.offset >= o.untilOffset) break;
      } catch (error) {
        await conn.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
  } finally {
    conn.release();
  }
  return consumed;
}
