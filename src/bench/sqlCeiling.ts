// The SQL ceiling of the sweep: a raw-SQL consume loop on a thread of this process, no pub/sub layer, no child
// process: the offset mode's transaction (lock the group's position, read a batch after it, one aggregated
// upsert, write the ack, commit) back to back on one session, with the statements the worker sends (the
// engine's offsetReadStatements / addToCountersStatement / offsetAckStatement), in the fewest round trips the
// driver allows (MariaDB: two, the read with START TRANSACTION, then upsert + ack + COMMIT; the worker takes
// three; PostgreSQL's driver sends one statement per round trip). One connection is all an offset consumer
// group can use (its row lock orders the transactions), so this bounds every offset-mode drain at the same batch
// size, on either engine. It ran on the bench's main thread until a quick run measured the worker at 1.12x of it
// at batch 1000: the sampler's 20 ms reads shared that thread's event loop; on a thread of its own it has an
// event loop to itself, as the worker process has.
import { Worker } from 'node:worker_threads';
import { openDatabase } from '../system/db/openDatabase.ts';
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

/**
 * runSqlConsumeLoop on a worker thread (sqlCeilingThread.ts): resolves with the messages consumed; the signal
 * stops it after its current transaction. The thread loads TypeScript through tsx's loader as the CLI does.
 */
export function runSqlConsumeLoopInThread(databaseUrl: string, o: SqlCeilingOptions): Promise<number> {
  const { signal, ...options } = o;
  const entry = new URL('./sqlCeilingThread.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `(async () => { const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(entry)}); })()`;
  const thread = new Worker(code, { eval: true, workerData: { databaseUrl, options } });
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

const START = { sql: 'START TRANSACTION', values: [] };
const COMMIT = { sql: 'COMMIT', values: [] };

/** Runs the loop until the backlog is consumed, the deadline passes or the signal aborts; returns messages consumed. */
export async function runSqlConsumeLoop(databaseUrl: string, o: SqlCeilingOptions): Promise<number> {
  const database = openDatabase({ url: databaseUrl, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'sql-ceiling', multipleStatements: true });
  database.onIdleError(() => undefined);
  const engine = database.engine;
  const group = { topic: o.topic, consumerGroup: o.consumerGroup };
  const deadline = performance.now() + o.deadlineMs;
  let consumed = 0;
  try {
    await engine.ensureGroup(database.executor(), group);
    const session = await database.session();
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
  } finally {
    await database.end();
  }
  return consumed;
}
