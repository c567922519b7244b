// The SQL ceiling of the sweep: a raw-SQL consume loop on a thread of this process, no pub/sub layer, no child
// process: the offset mode's transaction (lock the group's row, read a batch after it, one aggregated upsert,
// write the ack, commit) back to back on one connection, in the fewest round trips the statements allow (two:
// the read with START TRANSACTION, then upsert + ack + COMMIT; the worker takes three). One connection is all
// an offset consumer group can use (its row lock orders the transactions), so this bounds every offset-mode
// drain at the same batch size. It ran on the bench's main thread until a quick run measured the worker at
// 1.12x of it at batch 1000: the sampler's 20 ms reads shared that thread's event loop; on a thread of its own
// it has an event loop to itself, as the worker process has.
import { Worker } from 'node:worker_threads';
import { createPool, runStatements } from '../system/db/pool.ts';
import type { IsolationLevel } from '../system/pubsub/types.ts';
import { selectMessagesAfterAckedStatement, type MessageRow } from '../system/sql/mariadb/messagesTable.ts';
import { ackedOffsetOf, ensureGroupRow, lockAckedOffsetStatement, writeAckedOffsetStatement } from '../system/sql/mariadb/offsetsTable.ts';
import { addToCountersStatement } from '../system/sql/mariadb/counterTable.ts';
import { executorOf } from '../system/db/pool.ts';

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

/**
 * runSqlConsumeLoop on a worker thread (sqlCeilingThread.ts): resolves with the messages consumed; the signal
 * stops it after its current transaction. The thread loads TypeScript through tsx's loader as the CLI does.
 */
export function runSqlConsumeLoopInThread(mysqlUrl: string, o: SqlCeilingOptions): Promise<number> {
  const { signal, ...options } = o;
  const entry = new URL('./sqlCeilingThread.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `(async () => { const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(entry)}); })()`;
  const thread = new Worker(code, { eval: true, workerData: { mysqlUrl, options } });
  const onAbort = () => thread.postMessage('stop');
  signal?.addEventListener('abort', onAbort);
  return new Promise<number>((resolve, reject) => {
    thread.once('message', (m: { consumed?: number; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`sql ceiling: ${m.error}`));
      else resolve(m.consumed ?? 0);
    });
    thread.once('error', reject);
    thread.once('exit', (code) => reject(new Error(`sql ceiling: thread exited (code ${code}) without a result`)));
  }).finally(() => {
    signal?.removeEventListener('abort', onAbort);
    void thread.terminate();
  });
}

/** Runs the loop until the backlog is consumed, the deadline passes or the signal aborts; returns messages consumed. */
export async function runSqlConsumeLoop(mysqlUrl: string, o: SqlCeilingOptions): Promise<number> {
  const pool = createPool({ url: mysqlUrl, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'sql-ceiling', multipleStatements: true });
  const conn = await pool.getConnection();
  const deadline = performance.now() + o.deadlineMs;
  let consumed = 0;
  try {
    await ensureGroupRow(executorOf(conn), o.topic, o.consumerGroup);
    await conn.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${o.isolation}`);
    for (;;) {
      if (performance.now() > deadline || o.signal?.aborted === true) break;
      try {
        const [, lockRows, messageRows] = await runStatements(pool, conn, [
          { sql: 'START TRANSACTION', values: [] },
          lockAckedOffsetStatement(o.topic, o.consumerGroup),
          selectMessagesAfterAckedStatement(o.topic, o.consumerGroup, o.batchSize),
        ]);
        const acked = ackedOffsetOf(lockRows, o.topic, o.consumerGroup);
        const batch = messageRows as MessageRow[];
        const last = batch[batch.length - 1];
        if (last === undefined) {
          await conn.query('ROLLBACK');
          if (acked >= o.untilOffset) break;
          continue;
        }
        const increments = new Map<string, number>();
        for (const row of batch) {
          // MariaDB hands JSON back as text; the SQL ceiling parses it as the worker does.
          const payload = (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as { counter_uuid: string };
          increments.set(payload.counter_uuid, (increments.get(payload.counter_uuid) ?? 0) + 1);
        }
        await runStatements(pool, conn, [
          addToCountersStatement(increments),
          writeAckedOffsetStatement(o.topic, o.consumerGroup, Number(last.offset)),
          { sql: 'COMMIT', values: [] },
        ]);
        consumed += batch.length;
        if (Number(last.offset) >= o.untilOffset) break;
      } catch (error) {
        await conn.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
  } finally {
    conn.release();
    await pool.end();
  }
  return consumed;
}
