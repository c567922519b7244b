// The consume loop shared by the offset and queue subscribers: one dedicated connection, one transaction per
// batch, the three ack modes, and retries of expected errors. What is read and how it is acked is the
// BatchSource's job.
import type { Pool, PoolConnection } from '../db/pool.ts';
import { executorOf } from '../db/pool.ts';
import { classifyError, describeError } from '../db/errors.ts';
import { failpoint } from '../failpoints.ts';
import { Backoff, Sleeper } from './backoff.ts';
import type { AckMode, BatchHandler, ConsumeTx, IsolationLevel, Message, SqlExecutor, SubscriberStats, Subscription } from './types.ts';

export type ReadResult =
  | { kind: 'messages'; messages: Message[] }
  | { kind: 'empty' }
  /** Nothing can be handled until the source has looked at something outside the transaction (a gap). */
  | { kind: 'blocked'; retryInMs: number };

export interface BatchSource {
  /** Inside the batch transaction: lock what must be locked and return the messages to handle. */
  read(tx: SqlExecutor, batchSize: number): Promise<ReadResult>;
  /** Inside a transaction: record that `messages` are done. */
  ack(tx: SqlExecutor, messages: readonly Message[]): Promise<void>;
  /** Outside any transaction, after a `blocked` read was rolled back. */
  unblock?(session: SqlExecutor): Promise<void>;
}

export interface ConsumeLoopOptions {
  name: string;
  pool: Pool;
  isolation: IsolationLevel;
  ackMode: AckMode;
  batchSize: number;
  pollIntervalMs: number;
  /** Wait before a batch whose handler failed is delivered again (ms). */
  resendIntervalMs: number;
  handler: BatchHandler;
  log: (line: string) => void;
}

export const RETRY_BACKOFF = { initialMs: 20, maxMs: 2_000 };

class HandlerError extends Error {
  override readonly name = 'HandlerError';
}

export function emptyStats(): SubscriberStats {
  return { batches: 0, messages: 0, rollbacks: 0, retries: 0, gapsSkipped: 0 };
}

/** One consumer's connection and its batch transaction; the loop below and the micro-benchmarks drive it. */
export interface BatchConsumer {
  /** Consumes at most one batch; returns how long to sleep before the next (0 after a handled batch). */
  consumeOnce(): Promise<number>;
  /** Forgets a connection that failed, so the next batch opens a new one. */
  dropConnection(): void;
  /** Returns the connection to the pool. */
  release(): void;
}

export function createBatchConsumer(options: ConsumeLoopOptions, source: BatchSource, stats: SubscriberStats): BatchConsumer {
  let conn: PoolConnection | undefined;

  async function connection(): Promise<PoolConnection> {
    if (conn !== undefined) return conn;
    const fresh = await options.pool.getConnection();
    try {
      // Session-wide, so each batch's START TRANSACTION needs no extra round trip to set it.
      await fresh.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${options.isolation}`);
    } catch (error) {
      fresh.destroy();
      throw error;
    }
    conn = fresh;
    return fresh;
  }

  async function inTransaction<T>(c: PoolConnection, work: (tx: ConsumeTx) => Promise<T>): Promise<T> {
    await c.query('START TRANSACTION');
    const tx: ConsumeTx = { kind: 'mysql', ...executorOf(c) };
    try {
      const result = await work(tx);
      await c.query('COMMIT');
      return result;
    } catch (error) {
      stats.rollbacks += 1;
      // A rollback on a dead connection fails too; the error that matters is the first one.
      await c.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async function runHandler(messages: readonly Message[], tx: ConsumeTx): Promise<void> {
    try {
      await options.handler(messages, tx);
    } catch (error) {
      throw new HandlerError(describeError(error), { cause: error });
    }
  }

  async function consumeOnce(): Promise<number> {
    const c = await connection();
    let handled: readonly Message[] = [];
    let blocked: number | undefined;
    const firstTx = await inTransaction(c, async (tx) => {
      const read = await source.read(tx, options.batchSize);
      if (read.kind === 'empty') return 'empty' as const;
      if (read.kind === 'blocked') {
        blocked = read.retryInMs;
        // Roll back so that our locks cannot be what the gap's publisher is waiting on.
        throw new BlockedSignal();
      }
      handled = read.messages;
      failpoint('consume-after-read');
      if (options.ackMode === 'before-commit') {
        await source.ack(tx, handled);
        failpoint('consume-after-ack');
        return 'acked-first' as const;
      }
      await runHandler(handled, tx);
      failpoint('consume-after-effects');
      if (options.ackMode === 'transactional') {
        await source.ack(tx, handled);
        failpoint('consume-after-ack');
      }
      failpoint('consume-before-commit');
      return 'done' as const;
    }).catch((error: unknown) => {
      if (error instanceof BlockedSignal) return 'blocked' as const;
      throw error;
    });
    if (firstTx === 'empty') return options.pollIntervalMs;
    if (firstTx === 'blocked') {
      stats.rollbacks -= 1; // a blocked read is not a failed batch
      await source.unblock?.(executorOf(c));
      return blocked ?? options.pollIntervalMs;
    }
    failpoint('consume-after-commit');
    if (options.ackMode === 'after-commit') {
      failpoint('consume-between-commits');
      await inTransaction(c, (tx) => source.ack(tx, handled));
    } else if (options.ackMode === 'before-commit') {
      failpoint('consume-between-commits');
      await inTransaction(c, (tx) => runHandler(handled, tx));
    }
    stats.batches += 1;
    stats.messages += handled.length;
    return 0;
  }

  return {
    consumeOnce,
    dropConnection() {
      conn?.destroy();
      conn = undefined;
    },
    release() {
      conn?.release();
      conn = undefined;
    },
  };
}

/** Starts the loop; returns at once. The loop ends on close() or on an error that is not expected. */
export function startConsumeLoop(options: ConsumeLoopOptions, source: BatchSource, stats: SubscriberStats): Subscription {
  const sleeper = new Sleeper();
  const backoff = new Backoff(RETRY_BACKOFF);
  const consumer = createBatchConsumer(options, source, stats);
  let closing = false;

  const done = (async () => {
    while (!closing) {
      let pause: number;
      try {
        pause = await consumer.consumeOnce();
        backoff.reset();
      } catch (error) {
        if (error instanceof HandlerError) {
          options.log(`${options.name}: handler failed, batch rolled back, resend in ${options.resendIntervalMs} ms: ${error.message}`);
          pause = options.resendIntervalMs;
        } else {
          const kind = classifyError(error);
          if (kind === 'fatal') {
            consumer.dropConnection();
            throw new Error(`${options.name}: consuming a batch failed: ${describeError(error)}`, { cause: error });
          }
          stats.retries += 1;
          if (kind === 'connection' || kind === 'server-restarting') consumer.dropConnection();
          pause = backoff.next();
          options.log(`${options.name}: ${kind} (${describeError(error)}); rolled back, retry ${backoff.attempts} in ${pause} ms`);
        }
      }
      if (pause > 0 && !closing) await sleeper.sleep(pause);
    }
    consumer.release();
  })();
  // close() awaits `done`; a loop that died on its own must not become an unhandled rejection meanwhile.
  done.catch(() => undefined);

  return {
    stats,
    done,
    async close() {
      closing = true;
      sleeper.wake();
      await done.catch(() => undefined);
    },
  };
}

class BlockedSignal extends Error {}
