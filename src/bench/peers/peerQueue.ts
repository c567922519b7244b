// What the bench asks of a peer job queue (graphile-worker, pg-boss), one implementation per peer beside this
// file: install its schema and fill its queue with the peer's own API, run its worker on a task (in the peer's
// process, peerProcess.ts), and read from the peer's own tables how many jobs it completed, per counter too.
// Measurement comes from the database, never from the peer's own report.
import type { SqlExecutor } from '../../system/pubsub/types.ts';
import { addToPgCountersStatement } from '../../system/sql/postgres/counterTable.ts';
import type { PeerName, PeerTask } from './peerSpec.ts';

export interface PrepareOptions {
  /**
   * How long a job may stay claimed before the peer hands it out again, where the peer has such a bound
   * (pg-boss's queue option expireInSeconds); undefined keeps the peer's default.
   */
  claimTimeoutS?: number;
}

/** A peer's worker running in this process. */
export interface RunningPeer {
  /** The peer's graceful stop: jobs in hand finish and are completed, jobs fetched ahead are released. */
  stop(): Promise<void>;
}

export interface PeerQueue {
  readonly name: PeerName;
  /** Installs the peer's schema (its own migrations, idempotent) and leaves its queue empty. */
  prepare(databaseUrl: string, o?: PrepareOptions): Promise<void>;
  /**
   * Enqueues `n` jobs with the peer's bulk API, job i carrying `{ counter_uuid: counters[i % counters.length] }`
   * as our backlog's messages do, then takes the job table's statistics (publishBacklog does so for ours).
   */
  enqueue(databaseUrl: string, db: SqlExecutor, counters: readonly string[], n: number): Promise<void>;
  /** In the peer's process: starts the peer's worker running `task` on the queue; resolves once it works. */
  startWorker(databaseUrl: string, task: PeerTask, log: (line: string) => void): Promise<RunningPeer>;
  /** Jobs of the `enqueued` completed so far, read from the peer's tables. */
  countCompleted(db: SqlExecutor, enqueued: number): Promise<number>;
  /** Completed jobs per counter, from the peer's tables (`enqueued`: the jobs enqueued per counter). */
  completedPerCounter(db: SqlExecutor, enqueued: ReadonlyMap<string, number>): Promise<Map<string, number>>;
  /**
   * After the peer's worker was SIGKILLed and before one is started again: what the peer's documentation says
   * makes the dead worker's claimed jobs run again. Resolves with the jobs it freed.
   */
  recoverAfterKill(databaseUrl: string, db: SqlExecutor, o?: PrepareOptions): Promise<number>;
  /** Removes every job (after a point, so a later one does not find them in the database). */
  clear(databaseUrl: string, db: SqlExecutor): Promise<void>;
}

/** The counter a job's payload names. */
export function counterOf(payload: unknown): string {
  const id = (payload as { counter_uuid?: unknown } | null)?.counter_uuid;
  if (typeof id !== 'string') throw new Error(`peer job without a counter_uuid in its payload: ${JSON.stringify(payload)}`);
  return id;
}

/** The upsert our worker sends for a batch, for the counters of `payloads` (one increment each). */
export function counterUpsertFor(payloads: readonly unknown[]): { sql: string; values: unknown[] } {
  const increments = new Map<string, number>();
  for (const p of payloads) {
    const id = counterOf(p);
    increments.set(id, (increments.get(id) ?? 0) + 1);
  }
  return addToPgCountersStatement(increments);
}

/** Jobs enqueued per counter when job i goes to counters[i % counters.length] (enqueue's rule). */
export function enqueuedPerCounter(counters: readonly string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  if (counters.length === 0) return out;
  const each = Math.floor(n / counters.length);
  const extra = n % counters.length;
  for (const [i, id] of counters.entries()) {
    const count = each + (i < extra ? 1 : 0);
    if (count > 0) out.set(id, count);
  }
  return out;
}

/**
 * Runs `insert` over enqueue's chunks, `parallel` at a time (publishBacklog writes our backlog three statements
 * at a time too).
 */
export async function insertChunks(chunks: Iterable<{ counter_uuid: string }[]>, parallel: number, insert: (chunk: { counter_uuid: string }[]) => Promise<void>): Promise<void> {
  const iterator = chunks[Symbol.iterator]();
  const lane = async () => {
    for (let next = iterator.next(); next.done !== true; next = iterator.next()) await insert(next.value);
  };
  await Promise.all(Array.from({ length: parallel }, lane));
}

/** Rows of enqueue's jobs in chunks of `size`, job i for counters[i % counters.length]. */
export function* jobPayloadChunks(counters: readonly string[], n: number, size: number): Generator<{ counter_uuid: string }[]> {
  if (counters.length === 0) throw new Error('enqueue: no counters');
  for (let start = 0; start < n; start += size) {
    const chunk: { counter_uuid: string }[] = [];
    for (let i = start; i < Math.min(n, start + size); i += 1) chunk.push({ counter_uuid: counters[i % counters.length]! });
    yield chunk;
  }
}
