// The SQL ceiling of the sweep: a raw-SQL consume loop in a child process of its own, no pub/sub layer: the
// offset mode's transaction (lock the group's row, read a batch after it, one aggregated upsert, write the ack,
// commit) back to back on one connection, in the fewest round trips the statements allow (two:
// the read with START TRANSACTION, then upsert + ack + COMMIT; the worker takes three). One connection is all
// an offset consumer group can use (its row lock orders the transactions), so this bounds every offset-mode
// drain at the same batch size. It runs in a detached child process, as a worker does: on the bench's main
// thread a quick run measured the worker at 1.12x of it (the 20 ms sampler shared the event loop); on a
// thread, the worker was still 1.6x of it at batch 10 (1,863 vs 1,170 msgs/s) on the machine at load 14,
// where the kernel's autogroup scheduling shares the CPU per session, and each detached worker has a session
// of its own while a thread shares the bench's.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
 * runSqlConsumeLoop in a child process (sqlCeilingProcess.ts) detached into its own session like the workers:
 * resolves with the messages consumed; the signal stops it after its current transaction. The database URL
 * travels over the IPC channel, never on a command line.
 */
export function runSqlConsumeLoopInProcess(mysqlUrl: string, o: SqlCeilingOptions): Promise<number> {
  const { signal, ...options } = o;
  const entry = fileURLToPath(new URL('./sqlCeilingProcess.ts', import.meta.url));
  const child = fork(entry, [], { execArgv: ['--import', import.meta.resolve('tsx')], detached: true, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2_000);
  });
  const onAbort = () => child.connected && child.send('stop');
  signal?.addEventListener('abort', onAbort);
  child.send({ mysqlUrl, options });
  return new Promise<number>((resolve, reject) => {
    child.once('message', (m: { consumed?: number; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`sql ceiling: ${m.error}`));
      else resolve(m.consumed ?? 0);
    });
    child.once('error', reject);
    child.once('exit', (code, sig) => reject(new Error(`sql ceiling: process exited (${sig ?? `code ${code}`}) without a result: ${stderr.trim().split('\n').pop() ?? ''}`)));
  }).finally(() => {
    signal?.removeEventListener('abort', onAbort);
    if (child.connected) child.disconnect();
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
