// The SQL ceiling of the sweep: a raw-SQL consume loop in this process, no pub/sub layer, no child process:
// the offset mode's transaction (lock the group's position, read a batch after it, one aggregated upsert,
// write the ack, commit) back to back on one session, with the statements the worker sends (the engine's
// offsetReadStatements / addToCountersStatement / offsetAckStatement), in the fewest round trips the driver
// allows (MariaDB: two, START TRANSACTION with the read, then upsert + ack + COMMIT; PostgreSQL sends one
// statement per round trip). What the database allows at a batch size, for either engine.
import type { Database } from '../system/db/database.ts';
import type { IsolationLevel } from '../system/pubsub/types.ts';

export interface SqlCeilingOptions {
  topic: string;
  consumerGroup: string;
  batchSize: number;
  isolation: IsolationLevel;
  /** Stop when the group has consumed this many messages (the backlog). */
  untilConsumed: number;
  deadlineMs: number;
  signal: AbortSignal | undefined;
}

const START = { sql: 'START TRANSACTION', values: [] };
const COMMIT = { sql: 'COMMIT', values: [] };

/** Runs the loop until the backlog is consumed, the deadline passes or the signal aborts; returns messages consumed. */
export async function runSqlConsumeLoop(database: Database, o: SqlCeilingOptions): Promise<number> {
  const engine = database.engine;
  const group = { topic: o.topic, consumerGroup: o.consumerGroup };
  await engine.ensureGroup(database.executor(), group);
  const session = await database.session();
  const deadline = performance.now() + o.deadlineMs;
  let consumed = 0;
  let broken = false;
  try {
    await session.setIsolation(o.isolation);
    for (;;) {
      if (consumed >= o.untilConsumed || performance.now() > deadline || o.signal?.aborted === true) break;
      try {
        const results = await session.run([START, ...engine.offsetReadStatements({ ...group, limit: o.batchSize, visibility: 'closed-prefix' })]);
        const { messages } = engine.offsetReadResult(results.slice(1), group);
        const last = messages[messages.length - 1];
        if (last === undefined) {
          await session.query('ROLLBACK');
          continue;
        }
        const increments = new Map<string, number>();
        for (const m of messages) {
          const id = (m.payload as { counter_uuid: string }).counter_uuid;
          increments.set(id, (increments.get(id) ?? 0) + 1);
        }
        await session.run([engine.addToCountersStatement(increments), engine.offsetAckStatement(group, last), COMMIT]);
        consumed += messages.length;
      } catch (error) {
        await session.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      }
    }
  } finally {
    if (broken) session.destroy();
    else session.release();
  }
  return consumed;
}
