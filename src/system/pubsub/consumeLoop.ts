// The consume loop shared by the offset and queue subscribers: one dedicated connection, one transaction per
// batch, the three ack modes, retries of expected errors, and poison messages: a message the handler keeps
// rejecting is found inside its batch and, after `poisonAfterFailures` failed deliveries, moved to the poison
// table in the transaction that acks its batch. What is read and how it is acked is the BatchSource's job.
import { ISOLATION_LEVELS, type IsolationLevel, type Message, type PoisonEntry, type PoisonOrigin, type SqlExecutor, type Statement } from '../types.ts';
import type { Database, DbSession } from '../db/database.ts';
import { failpoint, failpointsArmed, type FailpointName } from '../failpoints.ts';
import { Backoff, Sleeper } from '../backoff.ts';
import { ACK_MODES } from './types.ts';
import type { AckMode, BatchHandler, ConsumeTx, SubscriberStats, Subscription } from './types.ts';
import { assertTopicName } from '../sql/topicName.ts';
import { DeliveryFailures } from './deliveryFailures.ts';
import { isolateFailures, type FailedMessage } from './failureIsolation.ts';
import { intInRange, oneOf, OptionsError } from '../../validate.ts';
import { nextBatchNumber, offsetRanges, type ConsumerEventSink } from './consumerEvents.ts';

export type ReadResult =
  | { kind: 'messages'; messages: Message[] }
  | { kind: 'empty' }
  /** Nothing can be handled until the source has looked at something outside the transaction (a gap). */
  | { kind: 'blocked'; retryInMs: number };

/**
 * What a mode reads and how it acks, as statements, so the loop can send them in the same round trip as
 * START TRANSACTION and COMMIT (measured: a batch-1 consume transaction took 6 round trips and ~2 ms p50 on
 * the loaded 2-core machine, where one publish round trip took 0.18 ms).
 */
export interface BatchSource {
  /** Statements that lock what must be locked and read the batch, run right after START TRANSACTION. */
  readStatements(batchSize: number): Statement[];
  /** Turns their results (one per statement) into what to do. */
  readResult(results: unknown[]): ReadResult;
  /** Statements that record `messages` as done. */
  ackStatements(messages: readonly Message[]): Statement[];
  /** Outside any transaction, after a `blocked` read was rolled back. */
  unblock?(session: SqlExecutor): Promise<void>;
  /** A new connection replaces one that failed (maybe to another server: a failover moved the address). */
  sessionOpened?(): void;
  /** When the loop ends: closes what the source opened of its own (a cluster prover's connections). */
  close?(): Promise<void>;
}

const START: Statement = { sql: 'START TRANSACTION', values: [] };
const COMMIT: Statement = { sql: 'COMMIT', values: [] };
/**
 * Set right after the read (in its round trip, so a batch that handles cleanly pays no extra trip) and before
 * each isolation attempt: rolling back to it undoes a failed attempt's effects and keeps the batch's locks.
 * Measured cost, 3,000 batch-1 consume transactions alternating with and without it on the loaded 2-core
 * machine: p10 942 vs 913 us, p50 2.41 vs 2.36 ms; at batch 100 no difference above the noise.
 */
const SAVEPOINT: Statement = { sql: 'SAVEPOINT eob_attempt', values: [] };
const ROLLBACK_TO_SAVEPOINT = 'ROLLBACK TO SAVEPOINT eob_attempt';

/**
 * A subscriber's options plus what the loop itself needs: a name for its log lines, the database (its engine
 * writes the poison statement and classifies errors), where poisoned messages come from, and (to share it
 * between the consumers of one subscription) the failure counts.
 */
export type ConsumeLoopOptions = Omit<ConsumerOptions, 'topic'> & {
  name: string;
  db: Database;
  poisonOrigin: PoisonOrigin;
  failures?: DeliveryFailures;
};

/** What every subscriber is configured with; each mode's options add their own fields. */
export interface ConsumerOptions {
  topic: string;
  batchSize: number;
  /** Sleep after an empty poll (ms). */
  pollIntervalMs: number;
  /**
   * Sleep after a batch that did not fill `batchSize` (ms): the consumer has caught up, and reading again at once
   * would fetch a handful of messages per transaction. 0 reads again at once.
   */
  caughtUpPauseMs: number;
  isolation: IsolationLevel;
  ackMode: AckMode;
  /** Wait before a batch whose handler failed is delivered again (ms). */
  resendIntervalMs: number;
  /**
   * Failed deliveries after which a message is moved to the poison table (in the transaction that acks its
   * batch); 0 never moves one (its batch is retried forever and holds the group). Ack modes transactional and
   * after-commit only: before-commit has acked the batch before the handler runs.
   */
  poisonAfterFailures: number;
  handler: BatchHandler;
  log: (line: string) => void;
  /** After each conflict retry (see SubscriberStats.conflictRetries), with the subscriber's stats. */
  onConflictRetry: (stats: SubscriberStats) => void;
  /** Each batch read, committed or rolled back, and each hole passed (the worker's --event-log); absent: none. */
  onEvent?: ConsumerEventSink | undefined;
}

/**
 * Messages per consume transaction, the one default of the worker, the bench and the library. 1000: measured
 * here, the offset drain at batch 1000 ran 159,315 msgs/s vs 80,083 at batch 100 (SERIALIZABLE, one worker),
 * and the raw-SQL ceiling 176,126 vs 104,972; larger batches hold the transaction longer for little more.
 */
export const DEFAULT_BATCH_SIZE = 1_000;
export const MAX_BATCH_SIZE = 100_000;

/** The one validation of a batch size; `field` is the name the caller's user knows it by. */
export function validateBatchSize(component: string, field: string, value: unknown): void {
  intInRange(component, field, value, 1, MAX_BATCH_SIZE);
}

/** Defaults of the shared fields; each mode adds its isolation level and its own fields. */
export const DEFAULT_CONSUMER_OPTIONS: Omit<ConsumerOptions, 'topic' | 'handler' | 'isolation'> = {
  batchSize: DEFAULT_BATCH_SIZE,
  // An empty poll costs one short transaction; 10 ms keeps an idle worker cheap and adds at most 10 ms of lag.
  pollIntervalMs: 10,
  // End to end on a loaded machine (load average 11-21; server + worker on one private MariaDB, POST /count by
  // autocannon, 50 connections, 6 s points, 4-5 interleaved runs, each variant's us/msg fitted to a + b/rate and
  // read at 5,000 msgs/s): 0 ms (read again at once) worker 14-18 us/msg, database 23-28; 10 ms worker 8-11,
  // database 18-20; 20 ms no better than 10.
  // 25 ms was tried on a quiet machine (2026-11-27): a fifth less worker CPU per message (wrk, 4 runs: 8.6
  // against 10.6 us/msg at 10 ms), but lag p99 doubled in `eob bench --profile quick` (offset 53-60 ms against
  // 24-26, queue 83-87 against 50-54, and 133 ms for queue in a standard run on a slow day), for 2-4 us of the
  // 70-100 a message costs. It adds at most 10 ms of lag while the consumer keeps up; a consumer that is behind
  // reads full batches and never pauses.
  caughtUpPauseMs: 10,
  ackMode: 'transactional',
  resendIntervalMs: 100,
  // The counter handler's rejections are deterministic (a payload is as bad on the fifth delivery as on the
  // first) and database errors never count, so retries only buy time for a transient failure of the handler
  // itself; 5 deliveries at resendIntervalMs (100 ms) hold a group about half a second per poison message.
  poisonAfterFailures: 5,
  log: () => undefined,
  onConflictRetry: () => undefined,
};

/** Validates the shared fields; errors name the component and the field. */
export function validateConsumerOptions(component: string, o: ConsumerOptions): void {
  assertTopicName(o.topic);
  validateBatchSize(component, 'batchSize', o.batchSize);
  intInRange(component, 'pollIntervalMs', o.pollIntervalMs, 0, 60_000);
  intInRange(component, 'caughtUpPauseMs', o.caughtUpPauseMs, 0, 60_000);
  oneOf(component, 'isolation', o.isolation, ISOLATION_LEVELS);
  oneOf(component, 'ackMode', o.ackMode, ACK_MODES);
  intInRange(component, 'resendIntervalMs', o.resendIntervalMs, 0, 600_000);
  intInRange(component, 'poisonAfterFailures', o.poisonAfterFailures, 0, 1_000_000);
  if (typeof o.handler !== 'function') throw new OptionsError(`${component}: handler must be a function`);
}

export const RETRY_BACKOFF = { initialMs: 20, maxMs: 2_000 };

/** A poison entry with the message it names (an engine may locate the row by more than its offset). */
type PoisonEntryOf = PoisonEntry & { message: Message };

class HandlerError extends Error {
  override readonly name = 'HandlerError';
}

export function emptyStats(): SubscriberStats {
  return {
    batches: 0,
    messages: 0,
    rollbacks: 0,
    retries: 0,
    conflictRetries: 0,
    gapsPassed: 0,
    gapsPassedByTimeout: 0,
    gapsPassedByStatements: 0,
    gapsPassedByInnodbTrx: 0,
    poisoned: 0,
  };
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
  let conn: DbSession | undefined;
  const { db } = options;
  const failures = options.failures ?? new DeliveryFailures();
  // before-commit runs the handler after the ack has committed: nothing is redelivered there to count.
  const poisoning = options.poisonAfterFailures > 0 && options.ackMode !== 'before-commit';
  const emit = options.onEvent;

  async function connection(): Promise<DbSession> {
    if (conn !== undefined) return conn;
    const fresh = await db.session();
    try {
      // Session-wide, so each batch's START TRANSACTION needs no extra round trip to set it.
      await fresh.setIsolation(options.isolation);
    } catch (error) {
      fresh.destroy();
      throw error;
    }
    conn = fresh;
    source.sessionOpened?.();
    return fresh;
  }

  const run = (c: DbSession, statements: readonly Statement[]) => c.run(statements);
  const describeError = (error: unknown): string => db.describe(error);

  async function rollback(c: DbSession): Promise<void> {
    stats.rollbacks += 1;
    try {
      await c.query('ROLLBACK');
    } catch {
      // A rollback on a dead connection fails too; the error that matters is the first one. The connection
      // goes either way: kept, a transaction whose ROLLBACK did not run would be committed by the next
      // START TRANSACTION (an implicit commit), effects without their ack or an ack without its effects.
      c.destroy();
      if (conn === c) conn = undefined;
    }
  }

  /**
   * `statements` then COMMIT, in one round trip; kept apart when failpoints are armed so that a crash can land
   * between them (the database state at such a crash is the same as before the merged round trip).
   */
  async function commitWith(c: DbSession, statements: readonly Statement[], between: readonly FailpointName[]): Promise<void> {
    if (!failpointsArmed()) {
      await run(c, [...statements, COMMIT]);
      return;
    }
    if (statements.length > 0) await run(c, statements);
    for (const name of between) failpoint(name);
    await c.query('COMMIT');
  }

  async function runHandler(messages: readonly Message[], tx: ConsumeTx): Promise<void> {
    try {
      await options.handler(messages, tx);
    } catch (error) {
      throw new HandlerError(describeError(error), { cause: error });
    }
  }

  /**
   * Runs the handler once; returns its error if the handler rejected the messages. A database error is never
   * blamed on the messages (a deadlock, a lost connection or a missing table says nothing about a payload, and
   * counting it would poison good messages during an outage): a transient one goes to the loop's retry with
   * backoff as it is, any other one fails the batch without counting a failed delivery.
   */
  async function attemptHandler(messages: readonly Message[], tx: ConsumeTx): Promise<Error | undefined> {
    try {
      await options.handler(messages, tx);
      return undefined;
    } catch (error) {
      if (!db.isDatabaseError(error)) return error instanceof Error ? error : new Error(String(error));
      if (db.classify(error) !== 'fatal') throw error;
      throw new HandlerError(`database error in the handler, not counted against any message: ${describeError(error)}`, { cause: error });
    }
  }

  /**
   * Handles the batch in the open transaction; returns the messages that fail on their own (their effects
   * undone), every other message having been handled exactly once in this transaction.
   */
  async function handleIsolating(c: DbSession, messages: readonly Message[], tx: ConsumeTx): Promise<FailedMessage[]> {
    const first = await attemptHandler(messages, tx);
    if (first === undefined) return [];
    if (!poisoning) throw new HandlerError(describeError(first), { cause: first });
    await c.query(ROLLBACK_TO_SAVEPOINT);
    return isolateFailures(messages, first, async (subset) => {
      await c.query(SAVEPOINT.sql);
      const error = await attemptHandler(subset, tx);
      if (error !== undefined) await c.query(ROLLBACK_TO_SAVEPOINT);
      return error;
    });
  }

  /**
   * Counts one more failed delivery for each failing message. If every one has reached poisonAfterFailures,
   * returns them as poison, to be acked with the batch; otherwise the batch must be rolled back and delivered
   * again (a HandlerError that says which messages failed and how often).
   */
  function poisonOrHold(failed: readonly FailedMessage[], batchSize: number): PoisonEntryOf[] {
    const counted = failed.map((f) => ({ ...f, deliveries: failures.record(f.message.offset) }));
    const held = counted.filter((f) => f.deliveries < options.poisonAfterFailures);
    if (held.length === 0) {
      return counted.map((f) => ({ offset: f.message.offset, error: describeError(f.error), failedDeliveries: f.deliveries, message: f.message }));
    }
    const shown = held
      .slice(0, 3)
      .map((f) => `offset ${f.message.offset} (${f.message.uuid}): ${describeError(f.error)} [failed delivery ${f.deliveries} of ${options.poisonAfterFailures}]`)
      .join('; ');
    throw new HandlerError(`${held.length} of ${batchSize} messages failed: ${shown}${held.length > 3 ? '; ...' : ''}`);
  }

  function reportPoisoned(messages: readonly Message[], poison: readonly PoisonEntry[]): void {
    if (poison.length === 0) return;
    stats.poisoned += poison.length;
    const byOffset = new Map(messages.map((m) => [m.offset, m]));
    for (const p of poison) {
      options.log(
        `${options.name}: offset ${p.offset} (${byOffset.get(p.offset)?.uuid ?? '?'}) moved to ${db.engine.poisonTableName(options.poisonOrigin.topic)} after ${p.failedDeliveries} failed deliveries: ${p.error}`,
      );
    }
  }

  async function consumeOnce(): Promise<number> {
    const c = await connection();
    const tx: ConsumeTx = { kind: db.engine.name === 'postgres' ? 'postgres' : 'mysql', query: c.query };
    let read: ReadResult;
    try {
      const readStatements = source.readStatements(options.batchSize);
      const results = await run(c, [START, ...readStatements, ...(poisoning ? [SAVEPOINT] : [])]);
      read = source.readResult(results.slice(1, 1 + readStatements.length));
    } catch (error) {
      await rollback(c);
      throw error;
    }
    if (read.kind !== 'messages') {
      // Nothing was written; ROLLBACK ends the transaction and its locks without a log flush.
      await c.query('ROLLBACK');
      if (read.kind === 'empty') return options.pollIntervalMs;
      // Our locks are gone now, so they cannot be what the gap's publisher waits on.
      await source.unblock?.(tx);
      return read.retryInMs;
    }
    const handled = read.messages;
    const batch = nextBatchNumber();
    emit?.({ e: 'read', batch, offsets: offsetRanges(handled.map((m) => m.offset)) });
    let poison: PoisonEntryOf[] = [];
    const ackAndPoison = (): Statement[] => [
      ...source.ackStatements(handled),
      ...poison.map((p) => db.engine.poisonMessageStatement(options.poisonOrigin, p)),
    ];
    try {
      failpoint('consume-after-read');
      if (options.ackMode === 'before-commit') {
        await commitWith(c, source.ackStatements(handled), ['consume-after-ack', 'consume-before-commit']);
        emit?.({ e: 'commit', batch, what: 'ack' });
      } else {
        const failed = await handleIsolating(c, handled, tx);
        if (failed.length > 0) poison = poisonOrHold(failed, handled.length);
        failpoint('consume-after-effects');
        const ack = options.ackMode === 'transactional' ? ackAndPoison() : [];
        await commitWith(c, ack, ack.length > 0 ? ['consume-after-ack', 'consume-before-commit'] : ['consume-before-commit']);
        emit?.({ e: 'commit', batch, what: ack.length > 0 ? 'effects+ack' : 'effects' });
      }
    } catch (error) {
      emit?.({ e: 'rollback', batch });
      await rollback(c);
      throw error;
    }
    failpoint('consume-after-commit');
    if (options.ackMode !== 'transactional') {
      failpoint('consume-between-commits');
      try {
        if (options.ackMode === 'after-commit') {
          await run(c, [START, ...ackAndPoison(), COMMIT]);
          emit?.({ e: 'commit', batch, what: 'ack' });
        } else {
          await c.query('START TRANSACTION');
          await runHandler(handled, tx);
          await c.query('COMMIT');
          emit?.({ e: 'commit', batch, what: 'effects' });
        }
      } catch (error) {
        emit?.({ e: 'rollback', batch });
        await rollback(c);
        throw error;
      }
    }
    failures.forget(handled.map((m) => m.offset));
    reportPoisoned(handled, poison);
    stats.batches += 1;
    stats.messages += handled.length;
    return handled.length < options.batchSize ? options.caughtUpPauseMs : 0;
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
          const kind = options.db.classify(error);
          if (kind === 'fatal') {
            consumer.dropConnection();
            throw new Error(`${options.name}: consuming a batch failed: ${options.db.describe(error)}`, { cause: error });
          }
          stats.retries += 1;
          if (kind === 'deadlock') {
            stats.conflictRetries += 1;
            options.onConflictRetry(stats);
          }
          if (kind === 'connection' || kind === 'server-restarting') consumer.dropConnection();
          pause = backoff.next();
          options.log(
            kind === 'not-ready'
              ? `${options.name}: the database node may not serve (${options.db.describe(error)}): it is not a synced member of its cluster's primary component; waiting for it, retry ${backoff.attempts} in ${pause} ms`
              : `${options.name}: ${kind} (${options.db.describe(error)}); rolled back, retry ${backoff.attempts} in ${pause} ms`,
          );
        }
      }
      if (pause > 0 && !closing) await sleeper.sleep(pause);
    }
    consumer.release();
  })().finally(() => source.close?.().catch(() => undefined));
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

