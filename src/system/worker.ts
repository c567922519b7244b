// The counter worker: one subscription (offset or queue mode) whose handler increments counters in the
// transaction that acks the messages.
import { ISOLATION_LEVELS, TOPIC_MODES, type IsolationLevel, type TopicMode } from './types.ts';
import { openDatabase } from './db/openDatabase.ts';
import { databaseUrlOf, type DatabaseUrl } from './db/databaseUrl.ts';
import { waitForDatabase } from './db/waitForDatabase.ts';
import type { EngineName } from './sql/engine.ts';
import { counterHandler, HANDLER_NAMES, type HandlerName } from './counterHandler.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, GAP_HANDLINGS, type GapHandling } from './pubsub/offsetSubscriber.ts';
import { SqlPubSub, type SqlPubSubConfig } from './pubsub/sqlPubSub.ts';
import { GAP_PROOFS, type GapProof } from './pubsub/gapTracker.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS } from './pubsub/queueSubscriber.ts';
import { DEFAULT_CONSUMER_OPTIONS, validateBatchSize } from './pubsub/consumeLoop.ts';
import { ACK_MODES, type AckMode, type SubscriberStats, type Subscription } from './pubsub/types.ts';
import { DEFAULT_PRUNE_OPTIONS, startPeriodicPrune, type PeriodicPrune } from './prune.ts';
import { intInRange, nonEmptyString, oneOf } from '../validate.ts';
import { openEventLog } from './workerEventLog.ts';
import type { ConsumerEventSink } from './pubsub/consumerEvents.ts';
import { workerMetrics } from './metrics/workerMetrics.ts';
import { listenForMetrics } from './metrics/metricsListener.ts';

/** A scrape's lag statement gives up after this: a hung database must not hold the scrape (lag reads NaN). */
const METRICS_QUERY_TIMEOUT_MS = 2_000;
/** Before the subscription exists (a scrape during start-up). */
const NO_STATS: SubscriberStats = { batches: 0, messages: 0, rollbacks: 0, retries: 0, conflictRetries: 0, gapsPassed: 0, gapsPassedByTimeout: 0, gapsPassedByStatements: 0, gapsPassedByInnodbTrx: 0, poisoned: 0 };

export interface WorkerOptions {
  /**
   * The database: mysql:// (MariaDB, MySQL) or postgres:// (PostgreSQL); the scheme picks the engine. The
   * command passes the URL it parsed at its start; a string is parsed once, by validateWorkerOptions.
   */
  databaseUrl: string | DatabaseUrl;
  mode: TopicMode;
  topic: string;
  consumerGroup: string;
  batchSize: number;
  pollIntervalMs: number;
  /** Sleep after a batch that did not fill batchSize (see ConsumerOptions.caughtUpPauseMs). */
  caughtUpPauseMs: number;
  /** undefined: defaultIsolation(mode, profile). */
  isolation: IsolationLevel | undefined;
  ackMode: AckMode;
  /** Queue mode: consumers in this process. */
  concurrency: number;
  /**
   * Append a JSON line per batch read, committed or rolled back and per hole passed to this file (a checker's
   * evidence of what was consumed when); undefined: none.
   */
  eventLog: string | undefined;
  /** The handler run on each batch (--handler). */
  handler: HandlerName;
  /** undefined: `contiguous`, or `none` with the watermill handler (that is the reference design). */
  gapHandling: GapHandling | undefined;
  /** Failed deliveries after which a message goes to eob_poison_<topic>; 0 retries it forever. */
  poisonAfterFailures: number;
  /** Offset mode, contiguous: what proves a hole permanent (`statements`; `innodb-trx` is the control). */
  gapProof: GapProof;
  /** Offset mode, contiguous: the bound after which a hole is passed without proof, recorded (ms). */
  gapTimeoutMs: number;
  /** Offset mode: called after each passed hole with the subscriber's stats. */
  onGapPassed: (stats: SubscriberStats) => void;
  /** After each consume transaction rolled back by a conflict and retried (either mode), with its stats. */
  onConflictRetry: (stats: SubscriberStats) => void;
  /** SIGTERM finishes or rolls back the batch in hand; false exits at once. */
  graceful: boolean;
  /** How long start-up retries an unreachable database (it may be restarting) or a race with other processes setting it up, before it fails (ms). */
  startTimeoutMs: number;
  /** Run `eob prune` on this topic every so many seconds; 0: never. */
  pruneEveryS: number;
  /** GET /metrics (Prometheus text) on 127.0.0.1 at this port, 0 any free one; undefined: no metrics. */
  metricsPort: number | undefined;
  /** Rows per DELETE of those prunes. */
  pruneBatchSize: number;
  /** Publish-dedup rows older than this go (s). */
  pruneDedupWindowS: number;
  log: (line: string) => void;
}

export const DEFAULT_WORKER_OPTIONS: Omit<WorkerOptions, 'databaseUrl'> = {
  mode: 'offset',
  topic: 'counter',
  consumerGroup: 'counter',
  // Batch 1000 drained fastest in the bench (docs/tuning.md); 100 is the watermill v4 default.
  batchSize: DEFAULT_CONSUMER_OPTIONS.batchSize,
  pollIntervalMs: 10,
  caughtUpPauseMs: DEFAULT_CONSUMER_OPTIONS.caughtUpPauseMs,
  isolation: undefined,
  ackMode: 'transactional',
  concurrency: 1,
  eventLog: undefined,
  handler: 'batched',
  gapHandling: undefined,
  poisonAfterFailures: DEFAULT_CONSUMER_OPTIONS.poisonAfterFailures,
  gapProof: DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.gapProof,
  gapTimeoutMs: DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.gapTimeoutMs,
  onGapPassed: () => undefined,
  onConflictRetry: () => undefined,
  graceful: true,
  startTimeoutMs: 30_000,
  // Off: retention is the operator's choice (a new consumer group cannot read what was pruned, and the bench and
  // chaos checkers count the topic's rows).
  pruneEveryS: 0,
  metricsPort: undefined,
  pruneBatchSize: DEFAULT_PRUNE_OPTIONS.batchSize,
  pruneDedupWindowS: DEFAULT_PRUNE_OPTIONS.dedupWindowS,
  log: (line) => process.stdout.write(`${line}\n`),
};

/**
 * The one rule for the isolation a worker runs at when none is given: the subscriber's own default (READ
 * COMMITTED in both modes: neither read locks the topic against publishers), except the watermill handler,
 * whose per-message `SELECT value` then write is a lost update at READ COMMITTED and which reproduces the
 * reference consumer: watermill-sql runs its MySQL subscriber at SERIALIZABLE and its PostgreSQL one at
 * REPEATABLE READ (where PostgreSQL refuses a write over a newer committed version with 40001, retried).
 */
export function defaultIsolation(mode: TopicMode, profile: HandlerName, engine: EngineName = 'mariadb'): IsolationLevel {
  if (profile === 'watermill') return engine === 'postgres' ? 'REPEATABLE READ' : 'SERIALIZABLE';
  return mode === 'offset' ? DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.isolation : DEFAULT_QUEUE_SUBSCRIBER_OPTIONS.isolation;
}

/**
 * Offset mode's gap handling when none is given: contiguous, or on MariaDB none with the watermill handler (the
 * reference design loses messages that way on purpose); queue mode has none. On PostgreSQL the reference design
 * is the xmin rule, which is `contiguous` there; `none` is the control reader without it.
 */
export function gapHandlingFor(mode: TopicMode, profile: HandlerName, given: GapHandling | undefined, engine: EngineName = 'mariadb'): GapHandling | undefined {
  if (mode === 'queue') return undefined;
  return given ?? (profile === 'watermill' && engine === 'mariadb' ? 'none' : 'contiguous');
}

export interface ResolvedWorkerSettings {
  isolation: IsolationLevel;
  /** Offset mode only; queue mode has no high-water mark and so no gaps to handle. */
  gapHandling: GapHandling | undefined;
}

export function validateWorkerOptions(o: WorkerOptions): WorkerOptions & ResolvedWorkerSettings & { databaseUrl: DatabaseUrl } {
  const c = 'worker';
  if (typeof o.databaseUrl === 'string') nonEmptyString(c, 'databaseUrl', o.databaseUrl);
  const databaseUrl = databaseUrlOf(o.databaseUrl);
  const engine = databaseUrl.engine;
  oneOf(c, 'mode', o.mode, TOPIC_MODES);
  nonEmptyString(c, 'consumerGroup', o.consumerGroup);
  validateBatchSize(c, 'batchSize', o.batchSize);
  intInRange(c, 'pollIntervalMs', o.pollIntervalMs, 0, 60_000);
  intInRange(c, 'caughtUpPauseMs', o.caughtUpPauseMs, 0, 60_000);
  if (o.isolation !== undefined) oneOf(c, 'isolation', o.isolation, ISOLATION_LEVELS);
  oneOf(c, 'ackMode', o.ackMode, ACK_MODES);
  intInRange(c, 'concurrency', o.concurrency, 1, 256);
  if (o.eventLog !== undefined) nonEmptyString(c, 'eventLog', o.eventLog);
  intInRange(c, 'startTimeoutMs', o.startTimeoutMs, 0, 3_600_000);
  intInRange(c, 'pruneEveryS', o.pruneEveryS, 0, 86_400);
  intInRange(c, 'pruneBatchSize', o.pruneBatchSize, 1, 1_000_000);
  intInRange(c, 'pruneDedupWindowS', o.pruneDedupWindowS, 1, 10 * 365 * 86_400);
  if (o.metricsPort !== undefined) intInRange(c, 'metricsPort', o.metricsPort, 0, 65_535);
  intInRange(c, 'poisonAfterFailures', o.poisonAfterFailures, 0, 1_000_000);
  oneOf(c, 'handler', o.handler, HANDLER_NAMES);
  if (o.gapHandling !== undefined) oneOf(c, 'gapHandling', o.gapHandling, GAP_HANDLINGS);
  oneOf(c, 'gapProof', o.gapProof, GAP_PROOFS);
  intInRange(c, 'gapTimeoutMs', o.gapTimeoutMs, 0, 86_400_000);
  if (o.mode === 'offset' && o.concurrency !== 1) {
    throw new Error('worker: concurrency applies to queue mode; offset mode reads one group in order (use --mode queue)');
  }
  if (o.mode === 'queue' && o.gapHandling !== undefined) {
    throw new Error('worker: gapHandling applies to offset mode only; queue mode has no high-water mark');
  }
  return { ...o, databaseUrl, ...resolveWorkerSettings(o, engine) };
}

/** The isolation and gap handling a worker with these options runs with (the CLI's rule and the harness's). */
export function resolveWorkerSettings(o: Pick<WorkerOptions, 'mode' | 'handler' | 'isolation' | 'gapHandling'>, engine: EngineName = 'mariadb'): ResolvedWorkerSettings {
  return { isolation: o.isolation ?? defaultIsolation(o.mode, o.handler, engine), gapHandling: gapHandlingFor(o.mode, o.handler, o.gapHandling, engine) };
}

/**
 * The pub/sub the worker consumes through, from its resolved options. The contract suite builds its worker
 * target with this same function (test/pubsubContract.test.ts), so what the suite proves is what runs.
 */
export function workerPubSubConfig(o: WorkerOptions & ResolvedWorkerSettings, onEvent?: ConsumerEventSink): SqlPubSubConfig {
  const common = { pollIntervalMs: o.pollIntervalMs, caughtUpPauseMs: o.caughtUpPauseMs, isolation: o.isolation, ackMode: o.ackMode, poisonAfterFailures: o.poisonAfterFailures, log: o.log, onConflictRetry: o.onConflictRetry, onEvent };
  if (o.mode === 'offset') {
    return {
      mode: 'offset',
      subscriber: { ...common, gapHandling: o.gapHandling ?? 'contiguous', gapProof: o.gapProof, gapTimeoutMs: o.gapTimeoutMs, onGapPassed: o.onGapPassed },
    };
  }
  return { mode: 'queue', subscriber: { ...common, concurrency: o.concurrency } };
}

export interface RunningWorker {
  readonly subscription: Subscription;
  /** Totals of the periodic prunes; undefined when they are off. */
  readonly pruned: PeriodicPrune['totals'] | undefined;
  readonly settings: ResolvedWorkerSettings;
  /** http://127.0.0.1:port/metrics, when metricsPort was given. */
  readonly metricsUrl: string | undefined;
  /** The proof that passes holes; undefined when there are none to pass (queue mode, gap handling none, PostgreSQL). */
  readonly gapProof: GapProof | undefined;
  /** Graceful: the batch in hand commits or rolls back, then the pool closes. */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const o = validateWorkerOptions(options);
  // The schema the subscription needs, created under start-up's retries: the server and other workers may be
  // creating the same tables at this moment (subscribe's own ensureGroup / ensureQueue then finds them).
  await waitForDatabase(o.databaseUrl, o.startTimeoutMs, o.log, {
    role: 'worker',
    create: async (db, engine) => {
      await engine.ensureSchema(db, { topic: o.topic, mode: o.mode, dedup: false });
      if (o.mode === 'offset') await engine.ensureGroup(db, { topic: o.topic, consumerGroup: o.consumerGroup });
      else await engine.ensureQueue(db, { topic: o.topic });
    },
  });
  // One connection per consumer, one for the gap checks' neighbours and schema, a spare, and one for prunes.
  const db = openDatabase({ url: o.databaseUrl, connectionLimit: o.concurrency + (o.pruneEveryS > 0 ? 3 : 2), connectTimeoutMs: 5_000, role: 'worker', multipleStatements: true });
  const events = o.eventLog === undefined ? undefined : openEventLog(o.eventLog);
  try {
    let subscription: Subscription | undefined;
    const metrics =
      o.metricsPort === undefined
        ? undefined
        : workerMetrics({
            stats: () => subscription?.stats ?? NO_STATS,
            lag: async () => {
              const p = await db.engine.selectProgress(db.executor(METRICS_QUERY_TIMEOUT_MS), { mode: o.mode, topic: o.topic, consumerGroup: o.consumerGroup });
              return { offsets: o.mode === 'offset' ? Math.max(0, p.published - p.progress) : undefined, seconds: p.lagMs === undefined ? undefined : p.lagMs / 1000 };
            },
          });
    const plain = counterHandler(o.handler, db.engine);
    const handler = metrics === undefined ? plain : metrics.observing(plain);
    const pubsub = new SqlPubSub(db, workerPubSubConfig(o, events?.write));
    subscription = await pubsub.subscribe({ topic: o.topic, consumerGroup: o.consumerGroup, batchSize: o.batchSize, handler });
    const running = subscription;
    const listener = metrics === undefined ? undefined : await listenForMetrics(metrics.registry, o.metricsPort as number).catch(async (error: unknown) => {
      await running.close();
      throw error;
    });
    const pruner: PeriodicPrune | undefined =
      o.pruneEveryS > 0
        ? startPeriodicPrune(
            db,
            { ...DEFAULT_PRUNE_OPTIONS, topic: o.topic, mode: o.mode, batchSize: o.pruneBatchSize, dedupWindowS: o.pruneDedupWindowS },
            o.pruneEveryS * 1000,
            o.log,
          )
        : undefined;
    return {
      subscription: running,
      pruned: pruner?.totals,
      settings: { isolation: o.isolation, gapHandling: o.gapHandling },
      gapProof: o.gapHandling === 'contiguous' && !db.engine.offsetReadIsGapFree ? o.gapProof : undefined,
      metricsUrl: listener?.url,
      async close() {
        await listener?.close();
        await pruner?.stop();
        await running.close();
        await db.end();
        events?.close();
      },
    };
  } catch (error) {
    events?.close();
    await db.end().catch(() => undefined);
    throw error;
  }
}
