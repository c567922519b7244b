// The bench's options: the run sizes (profile quick | standard | full), the grid of configurations each
// measures (every field can be overridden from the command line), and their validation.
import type { IsolationLevel, AckMode } from '../../system/pubsub/types.ts';
import { ISOLATION_LEVELS, ACK_MODES } from '../../system/pubsub/types.ts';
import { DEFAULT_WORKER_OPTIONS, defaultIsolation } from '../../system/worker.ts';
import { DEFAULT_BATCH_SIZE, validateBatchSize } from '../../system/pubsub/consumeLoop.ts';
import { intInRange, oneOf, OptionsError } from '../../validate.ts';
import type { TopicMode } from '../../system/pubsub/types.ts';
import type { HandlerName } from '../../system/counterHandler.ts';
import { validatePeerSpec, type PeerSpec } from '../../bench/peers/peerSpec.ts';

/** The figure the reference design was published with (Watermill example, 2019, one message per transaction). */
export const PUBLISHED_BASELINE_MSGS_PER_S = 154;

export type BenchProfile = 'quick' | 'standard' | 'full';
export const BENCH_PROFILES: readonly BenchProfile[] = ['quick', 'standard', 'full'];
export type PointKind = 'http-ceiling' | 'sql-ceiling' | 'drain' | 'peer' | 'end-to-end';

export interface SweepGrid {
  batchSizes: number[];
  /** Offset mode's isolation levels; queue mode runs at `queueIsolations`. */
  isolations: IsolationLevel[];
  /** undefined = the queue worker's default (READ COMMITTED). */
  queueIsolations: (IsolationLevel | undefined)[];
  modes: TopicMode[];
  /** Queue mode: worker processes per point. */
  queueWorkers: number[];
  handlers: HandlerName[];
  pollIntervals: number[];
  /** Server publish coalescing for end-to-end points. */
  coalesce: boolean[];
  ackModes: AckMode[];
  repetitions: number;
}

export interface SweepOptions {
  profile: BenchProfile;
  grid: SweepGrid;
  include: { httpCeiling: boolean; sqlCeiling: boolean; baseline: boolean; drain: boolean; peers: boolean; endToEnd: boolean };
  /**
   * The peer job queues measured beside the drain on PostgreSQL (bench/peers/): each drains a backlog of the
   * size of the default drain's (batch 1000) over the same counters.
   */
  peers: PeerSpec[];
  /**
   * A peer point's window: it ends when the backlog is done or after this long, its rate over what was done.
   * The peers drain 1,300-15,000 jobs/s here (graphile-worker's counter task at a load average of 14 to
   * pg-boss's batches), so a backlog sized for our drain takes them 10 s to minutes; a window of seconds holds
   * tens of thousands of jobs, plenty for a steady rate.
   */
  peerWindowS: number;
  topic: string;
  consumerGroup: string;
  /** Distinct counters messages and requests are spread over. */
  counters: number;
  /** Messages published before a drain point's workers start. */
  backlogMessages: number;
  /** Backlog of the watermill-handler points (they drain ~100x slower, so a smaller backlog is enough). */
  baselineBacklogMessages: number;
  baselineBatchSizes: number[];
  /** A drain point ends when the backlog is consumed or after this long (then its rate is over what was done). */
  drainTimeoutS: number;
  /**
   * Offset-mode drain points: rounds of [the SQL ceiling's loop, then the workers] on the same backlog; the
   * point's ratio to the SQL ceiling is the median of the rounds' ratios, and their spread is printed.
   * DRAIN_ROUNDS_MEASURED.
   */
  drainRounds: number;
  endToEndDurationS: number;
  endToEndBatchSize: number;
  /**
   * Load-generator connections: every value gets an HTTP ceiling and the end-to-end points of its own (a
   * coalescing server's batches, and so its cost per message, depend on how many requests are in flight).
   * Ratios are to the best HTTP ceiling of the run, at whatever count it was measured.
   */
  endToEndConnections: number[];
  /** Offered request rate for end-to-end points; undefined = as fast as the server answers. */
  endToEndRate: number | undefined;
  /** After the load, wait this long at most for the workers to catch up before checking. */
  catchUpTimeoutS: number;
  httpCeilingDurationS: number;
  /** Extra worker failpoints (`name=N`) for every drain point: the lossy control of the tests. */
  workerFailpoints: string[];
}

/**
 * Sampling period of drain points. A 100k backlog drains in about a second at the best batch size here, so
 * 100 ms samples put only a handful of points on the curve (a 3,000-message drain measured 3,001 msgs/s with
 * them, an artifact); each sample is three primary-key lookups, cheap enough at 20 ms.
 */
export const DRAIN_SAMPLE_MS = 20;

/**
 * A drain point's backlog is at most this many batches: batch 1 drains ~1,700 msgs/s here, so a 100k backlog
 * would run out of time at every small batch size and measure the start-up instead; 2,000 batches take about
 * a second at any batch size.
 */
const DRAIN_BATCHES = 2_000;

/** The bench's load-generator connections; a point at another count says so in its label. */
export const DEFAULT_CONNECTIONS = 50;

/** The worker's own default; a point at another poll interval says so in its label. */
export const DEFAULT_POLL_INTERVAL_MS = DEFAULT_WORKER_OPTIONS.pollIntervalMs;

export function drainBacklog(backlogMessages: number, batchSize: number | undefined): number {
  return Math.min(backlogMessages, (batchSize ?? DEFAULT_BATCH_SIZE) * DRAIN_BATCHES);
}

const BASE: Omit<SweepOptions, 'profile' | 'grid'> = {
  include: { httpCeiling: true, sqlCeiling: true, baseline: true, drain: true, peers: true, endToEnd: true },
  // Each peer with the no-op task (the queue's own cost) and the counter task (the same effect as ours); pg-boss
  // also with the effect in its completion's transaction (its transactional worker).
  peers: [
    { peer: 'graphile-worker', task: 'noop' },
    { peer: 'graphile-worker', task: 'counter' },
    { peer: 'pg-boss', task: 'noop' },
    { peer: 'pg-boss', task: 'counter' },
    { peer: 'pg-boss', task: 'counter-in-completion' },
  ],
  peerWindowS: 12,
  topic: 'counter',
  consumerGroup: 'counter',
  // 1,000 counters: enough that a batch of 1000 touches hundreds of rows (the aggregated upsert's real cost),
  // few enough that every counter gets many increments.
  counters: 1_000,
  backlogMessages: 100_000,
  baselineBacklogMessages: 3_000,
  baselineBatchSizes: [1, 100],
  drainTimeoutS: 8,
  drainRounds: 3,
  endToEndDurationS: 8,
  endToEndBatchSize: 1000,
  endToEndConnections: [DEFAULT_CONNECTIONS],
  endToEndRate: undefined,
  catchUpTimeoutS: 20,
  httpCeilingDurationS: 4,
  workerFailpoints: [],
};

/**
 * The quick profile's backlog: 250,000 messages, ~5 s per drain or ceiling run at the ~50,000 msgs/s measured
 * here (150,000 took 3 s, and at a load average of 15 one drain of it ran out of the 5 s window).
 */
const QUICK_BACKLOG = 250_000;

/** The three profiles; every field can still be overridden from the command line. */
export function profileOptions(profile: BenchProfile): SweepOptions {
  oneOf('bench', 'profile', profile, BENCH_PROFILES);
  const grid: SweepGrid = {
    batchSizes: [1000],
    isolations: [defaultIsolation('offset', 'batched')],
    queueIsolations: [undefined],
    modes: ['offset', 'queue'],
    queueWorkers: [2],
    handlers: ['batched'],
    pollIntervals: [10],
    coalesce: [true],
    ackModes: ['transactional'],
    repetitions: 1,
  };
  if (profile === 'quick') {
    // About 1 min (26 s measured on a quiet machine before the drain ran 3 paired rounds; the plan estimates 49 s): the best configuration, the baseline profile, both ceilings, one end-to-end point.
    // On PostgreSQL one peer point too: graphile-worker with the counter task, the like-for-like effect beside
    // our drain (the plan estimates it at 17 s: the 150,000 jobs enqueued and the 8 s window).
    return {
      ...BASE,
      profile,
      grid: { ...grid, modes: ['offset'] },
      backlogMessages: QUICK_BACKLOG,
      drainTimeoutS: 15,
      endToEndDurationS: 5,
      httpCeilingDurationS: 3,
      baselineBacklogMessages: 1_500,
      peers: [{ peer: 'graphile-worker', task: 'counter' }],
      peerWindowS: 8,
    };
  }
  if (profile === 'standard') {
    // About 6-7 minutes: batch sizes over three decades, three isolation levels, queue with 1/2/4 workers,
    // coalescing on and off, end to end at 50 and 200 connections.
    return {
      ...BASE,
      profile,
      grid: {
        ...grid,
        batchSizes: [1, 10, 100, 1000, 5000],
        isolations: ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'],
        queueWorkers: [1, 2, 4],
        coalesce: [true, false],
      },
      // 200 connections as well as 50: measured on the 2-core machine, quiet, autocannon, 2 interleaved pairs
      // (scripts/e2eCpu.ts): 50 connections 13,049 and 14,665 msgs/s at 85.9 and 77.6 us/msg (server + worker +
      // database); 200 connections 22,411 and 19,037 at 50.9 and 61.7. Batches grow with the requests in flight.
      endToEndConnections: [DEFAULT_CONNECTIONS, 200],
      // 400k: the batch-5000 drain runs ~0.8 s at ~490k msgs/s; with 100k it lasted 0.2 s and read 1.21x the SQL
      // ceiling, a measurement of noise. Smaller batches drain at most 2,000 batches (drainBacklog).
      backlogMessages: 400_000,
      drainTimeoutS: 6,
    };
  }
  return {
    ...BASE,
    profile,
    grid: {
      ...grid,
      batchSizes: [1, 10, 100, 500, 1000, 2000, 5000],
      isolations: ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE', 'READ UNCOMMITTED'],
      queueWorkers: [1, 2, 4],
      handlers: ['batched', 'watermill'],
      pollIntervals: [10, 1, 100], // the first is the drains' (the worker default)
      coalesce: [true, false],
      repetitions: 3,
    },
    endToEndConnections: [DEFAULT_CONNECTIONS, 200],
    backlogMessages: 200_000,
    drainTimeoutS: 15,
    endToEndDurationS: 15,
    peerWindowS: 20,
  };
}

export function validateSweepOptions(o: SweepOptions): SweepOptions {
  const c = 'bench';
  oneOf(c, 'profile', o.profile, BENCH_PROFILES);
  const list = <T>(field: string, values: T[], check: (v: T) => void) => {
    if (values.length === 0) throw new OptionsError(`${c}: ${field} must list at least one value`);
    values.forEach(check);
  };
  list('batch-sizes', o.grid.batchSizes, (v) => validateBatchSize(c, 'batch-sizes', v));
  list('isolation', o.grid.isolations, (v) => oneOf(c, 'isolation', v, ISOLATION_LEVELS));
  list('modes', o.grid.modes, (v) => oneOf(c, 'modes', v, ['offset', 'queue'] as const));
  list('queue-workers', o.grid.queueWorkers, (v) => intInRange(c, 'queue-workers', v, 1, 64));
  list('handlers', o.grid.handlers, (v) => oneOf(c, 'handlers', v, ['batched', 'watermill'] as const));
  list('poll-intervals', o.grid.pollIntervals, (v) => intInRange(c, 'poll-intervals', v, 0, 60_000));
  list('coalesce', o.grid.coalesce, (v) => {
    if (typeof v !== 'boolean') throw new OptionsError(`${c}: coalesce must be on or off`);
  });
  list('ack-modes', o.grid.ackModes, (v) => oneOf(c, 'ack-modes', v, ACK_MODES));
  intInRange(c, 'repetitions', o.grid.repetitions, 1, 100);
  intInRange(c, 'counters', o.counters, 1, 1_000_000);
  intInRange(c, 'backlog', o.backlogMessages, 1, 100_000_000);
  intInRange(c, 'baseline backlog', o.baselineBacklogMessages, 1, 100_000_000);
  intInRange(c, 'drain-timeout-s', o.drainTimeoutS, 1, 86_400);
  intInRange(c, 'drain-rounds', o.drainRounds, 1, 100);
  intInRange(c, 'duration-s', o.endToEndDurationS, 1, 86_400);
  list('connections', o.endToEndConnections, (v) => intInRange(c, 'connections', v, 1, 10_000));
  if (o.endToEndRate !== undefined) intInRange(c, 'rate', o.endToEndRate, 1, 10_000_000);
  o.peers.forEach((p) => validatePeerSpec(c, p));
  intInRange(c, 'peer-window-s', o.peerWindowS, 1, 86_400);
  return o;
}
