// The counter worker: one subscription (offset or queue mode) whose handler increments counters in the
// transaction that acks the messages.
import { createPool, executorOf, parseMysqlUrl, type Pool } from './db/pool.ts';
import { waitForDatabase } from './db/waitForDatabase.ts';
import { ensureSchema } from './schema.ts';
import { counterHandler, HANDLER_PROFILES, type HandlerProfile } from './counterHandler.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, GAP_HANDLINGS, subscribeOffset, type GapHandling } from './pubsub/offsetSubscriber.ts';
import { GAP_PROOFS, type GapProof } from './pubsub/gapTracker.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, subscribeQueue } from './pubsub/queueSubscriber.ts';
import { ACK_MODES, ISOLATION_LEVELS, type AckMode, type IsolationLevel, type SubscriberStats, type Subscription } from './pubsub/types.ts';
import { intInRange, nonEmptyString, oneOf } from '../validate.ts';

export type WorkerMode = 'offset' | 'queue';
export const WORKER_MODES: readonly WorkerMode[] = ['offset', 'queue'];

export interface WorkerOptions {
  mysqlUrl: string;
  mode: WorkerMode;
  topic: string;
  consumerGroup: string;
  batchSize: number;
  pollIntervalMs: number;
  /** undefined: the mode's default (SERIALIZABLE for offset, READ COMMITTED for queue). */
  isolation: IsolationLevel | undefined;
  ackMode: AckMode;
  /** Queue mode: consumers in this process. */
  concurrency: number;
  profile: HandlerProfile;
  /** undefined: `contiguous`, or `none` with the watermill profile (that is the reference design). */
  gapHandling: GapHandling | undefined;
  /** Offset mode, contiguous: what proves a hole permanent (`statements`; `innodb-trx` is the control). */
  gapProof: GapProof;
  /** Offset mode, contiguous: the bound after which a hole is passed without proof, recorded (ms). */
  gapTimeoutMs: number;
  /** Offset mode: called after each passed hole with the subscriber's stats. */
  onGapPassed: (stats: SubscriberStats) => void;
  /** SIGTERM finishes or rolls back the batch in hand; false exits at once. */
  graceful: boolean;
  /** How long start-up waits for an unreachable database (it may be restarting) before it fails (ms). */
  startTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_WORKER_OPTIONS: Omit<WorkerOptions, 'mysqlUrl'> = {
  mode: 'offset',
  topic: 'counter',
  consumerGroup: 'counter',
  // Batch 1000 drained fastest in the bench (results/bench, see README); 100 is the watermill v4 default.
  batchSize: 1000,
  pollIntervalMs: 10,
  isolation: undefined,
  ackMode: 'transactional',
  concurrency: 1,
  profile: 'batched',
  gapHandling: undefined,
  gapProof: DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.gapProof,
  gapTimeoutMs: DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.gapTimeoutMs,
  onGapPassed: () => undefined,
  graceful: true,
  startTimeoutMs: 30_000,
  log: (line) => process.stdout.write(`${line}\n`),
};

export interface ResolvedWorkerSettings {
  isolation: IsolationLevel;
  /** Offset mode only; queue mode has no high-water mark and so no gaps to handle. */
  gapHandling: GapHandling | undefined;
}

export function validateWorkerOptions(o: WorkerOptions): WorkerOptions & ResolvedWorkerSettings {
  const c = 'worker';
  nonEmptyString(c, 'mysqlUrl', o.mysqlUrl);
  parseMysqlUrl(o.mysqlUrl);
  oneOf(c, 'mode', o.mode, WORKER_MODES);
  nonEmptyString(c, 'consumerGroup', o.consumerGroup);
  intInRange(c, 'batchSize', o.batchSize, 1, 100_000);
  intInRange(c, 'pollIntervalMs', o.pollIntervalMs, 0, 60_000);
  if (o.isolation !== undefined) oneOf(c, 'isolation', o.isolation, ISOLATION_LEVELS);
  oneOf(c, 'ackMode', o.ackMode, ACK_MODES);
  intInRange(c, 'concurrency', o.concurrency, 1, 256);
  intInRange(c, 'startTimeoutMs', o.startTimeoutMs, 0, 3_600_000);
  oneOf(c, 'profile', o.profile, HANDLER_PROFILES);
  if (o.gapHandling !== undefined) oneOf(c, 'gapHandling', o.gapHandling, GAP_HANDLINGS);
  oneOf(c, 'gapProof', o.gapProof, GAP_PROOFS);
  intInRange(c, 'gapTimeoutMs', o.gapTimeoutMs, 0, 86_400_000);
  if (o.mode === 'offset' && o.concurrency !== 1) {
    throw new Error('worker: concurrency applies to queue mode; offset mode reads one group in order (use --mode queue)');
  }
  if (o.mode === 'queue' && o.gapHandling !== undefined) {
    throw new Error('worker: gapHandling applies to offset mode only; queue mode has no high-water mark');
  }
  const isolation = o.isolation ?? (o.mode === 'offset' ? 'SERIALIZABLE' : 'READ COMMITTED');
  const gapHandling = o.mode === 'queue' ? undefined : (o.gapHandling ?? (o.profile === 'watermill' ? 'none' : 'contiguous'));
  return { ...o, isolation, gapHandling };
}

export interface RunningWorker {
  readonly subscription: Subscription;
  readonly settings: ResolvedWorkerSettings;
  /** The proof that passes holes; undefined when there are none to pass (queue mode, gap handling none). */
  readonly gapProof: GapProof | undefined;
  /** Graceful: the batch in hand commits or rolls back, then the pool closes. */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const o = validateWorkerOptions(options);
  await waitForDatabase(o.mysqlUrl, o.startTimeoutMs, o.log);
  // One connection per consumer, one for the gap checks' neighbours and schema, and a spare.
  const pool: Pool = createPool({ url: o.mysqlUrl, connectionLimit: o.concurrency + 2, connectTimeoutMs: 5_000, role: 'worker', multipleStatements: true });
  try {
    await ensureSchema(executorOf(pool), { topic: o.topic, topicSchema: o.mode, dedup: false });
    const handler = counterHandler(o.profile);
    const subscription =
      o.mode === 'offset'
        ? await subscribeOffset(pool, {
            ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
            topic: o.topic,
            consumerGroup: o.consumerGroup,
            batchSize: o.batchSize,
            pollIntervalMs: o.pollIntervalMs,
            isolation: o.isolation,
            ackMode: o.ackMode,
            gapHandling: o.gapHandling ?? 'contiguous',
            gapProof: o.gapProof,
            gapTimeoutMs: o.gapTimeoutMs,
            onGapPassed: o.onGapPassed,
            handler,
            log: o.log,
          })
        : await subscribeQueue(pool, {
            ...DEFAULT_QUEUE_SUBSCRIBER_OPTIONS,
            topic: o.topic,
            batchSize: o.batchSize,
            pollIntervalMs: o.pollIntervalMs,
            isolation: o.isolation,
            ackMode: o.ackMode,
            concurrency: o.concurrency,
            handler,
            log: o.log,
          });
    return {
      subscription,
      settings: { isolation: o.isolation, gapHandling: o.gapHandling },
      gapProof: o.gapHandling === 'contiguous' ? o.gapProof : undefined,
      async close() {
        await subscription.close();
        await pool.end();
      },
    };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}
