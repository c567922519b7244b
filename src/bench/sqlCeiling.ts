// The SQL ceiling of the sweep: a raw-SQL consume loop in a child process of its own, no pub/sub layer: the
// offset mode's transaction (lock the group's position, read a batch after it, one aggregated upsert, write
// the ack, commit) back to back on one session, with the statements the worker sends (the engine's
// offsetReadStatements / addToCountersStatement / offsetAckStatement), in the fewest round trips the driver
// allows (MariaDB: two, the read with START TRANSACTION, then upsert + ack + COMMIT; the worker takes three;
// PostgreSQL's driver sends one statement per round trip). One connection is all an offset consumer group can
// use (its row lock orders the transactions), so this bounds every offset-mode drain at the same batch size, on
// either engine. It runs in a detached child process, as a worker does: on the bench's main thread a quick run
// measured the worker at 1.12x of it (the 20 ms sampler shared the event loop); on a thread, the worker was
// still 1.6x of it at batch 10 (1,863 vs 1,170 msgs/s) on the machine at load 14, where the kernel's autogroup
// scheduling shares the CPU per session, and each detached worker has a session of its own while a thread
// shares the bench's.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
 * runSqlConsumeLoop in a child process (sqlCeilingProcess.ts) detached into its own session like the workers:
 * resolves with the messages consumed; the signal stops it after its current transaction. The database URL
 * (mysql:// or postgres://) travels over the IPC channel, never on a command line.
 */
/** What the loop did: messages consumed, and its own process's CPU seconds from its first transaction to its last. */
export interface SqlLoopResult {
  consumed: number;
  cpuS: number;
}

export function runSqlConsumeLoopInProcess(databaseUrl: string, o: SqlCeilingOptions, onConsumed?: (r: SqlLoopResult) => void): Promise<SqlLoopResult> {
  const { signal, ...options } = o;
  const entry = fileURLToPath(new URL('./sqlCeilingProcess.ts', import.meta.url));
  const child = fork(entry, [], { execArgv: ['--import', import.meta.resolve('tsx')], detached: true, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2_000);
  });
  const onAbort = () => child.connected && child.send('stop');
  signal?.addEventListener('abort', onAbort);
  child.send({ databaseUrl, options });
  return new Promise<SqlLoopResult>((resolve, reject) => {
    child.once('message', (m: { consumed?: number; cpuS?: number; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`sql ceiling: ${m.error}`));
      else {
        // The loop's session is still open here (the child waits for 'end'): a PostgreSQL backend's CPU is
        // readable only while it lives, so this is where the caller reads the database's CPU.
        const r = { consumed: m.consumed ?? 0, cpuS: m.cpuS ?? 0 };
        onConsumed?.(r);
        if (child.connected) child.send('end');
        resolve(r);
      }
    });
    child.once('error', reject);
    child.once('exit', (code, sig) => reject(new Error(`sql ceiling: process exited (${sig ?? `code ${code}`}) without a result: ${stderr.trim().split('\n').pop() ?? ''}`)));
  }).finally(() => {
    signal?.removeEventListener('abort', onAbort);
    if (child.connected) child.disconnect();
  });
}

const START = { sql: 'START TRANSACTION', values: [] };
const COMMIT = { sql: 'COMMIT', values: [] };

/**
 * Runs the loop until the backlog is consumed, the deadline passes or the signal aborts; returns messages
 * consumed. `beforeEnd` runs after the last transaction with the connection still open.
 */
export async function runSqlConsumeLoop(databaseUrl: string, o: SqlCeilingOptions, beforeEnd?: (r: SqlLoopResult) => Promise<void>): Promise<SqlLoopResult> {
  const database = openDatabase({ url: databaseUrl, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'sql-ceiling', multipleStatements: true });
  database.onIdleError(() => undefined);
  const engine = database.engine;
  const group = { topic: o.topic, consumerGroup: o.consumerGroup };
  const deadline = performance.now() + o.deadlineMs;
  let consumed = 0;
  let cpuS = 0;
  try {
    await engine.ensureGroup(database.executor(), group);
    const session = await database.session();
    let broken = false;
    try {
      await session.setIsolation(o.isolation);
      const cpuStart = process.cpuUsage();
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
      const used = process.cpuUsage(cpuStart);
      cpuS = (used.user + used.system) / 1e6;
    } finally {
      if (broken) session.destroy();
      else session.release();
    }
    await beforeEnd?.({ consumed, cpuS });
  } finally {
    await database.end();
  }
  return { consumed, cpuS };
}
