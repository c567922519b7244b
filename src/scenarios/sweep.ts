// The throughput sweep behind `eob bench` (issue 3): ceilings (HTTP without database, raw-SQL consume loop),
// the watermill-profile baseline, drain points (a backlog published straight into the table, then workers)
// and end-to-end points (autocannon and workers together). Every point is also a correctness run.
import { randomUUID } from 'node:crypto';
import type { IsolationLevel, AckMode, OutgoingMessage } from '../system/pubsub/types.ts';
import { ISOLATION_LEVELS, ACK_MODES } from '../system/pubsub/types.ts';
import { executorOf } from '../system/db/pool.ts';
import { ensureSchema } from '../system/schema.ts';
import { createOffsetsTable } from '../system/sql/offsetsTable.ts';
import { insertMessagesSql } from '../system/sql/messagesTable.ts';
import { messagesTable, offsetsTable, queueTable, dedupTable } from '../system/sql/identifiers.ts';
import { selectAllCounters } from '../system/sql/counterTable.ts';
import { countPoisoned, truncatePoisonTable } from '../system/sql/poisonTable.ts';
import type { ChildService } from './childService.ts';
import { DEFAULT_WORKER_OPTIONS, defaultIsolation } from '../system/worker.ts';
import type { SystemUnderTest, WorkerFlags } from './systemUnderTest.ts';
import { startSampler } from '../bench/sampler.ts';
import { drainRate, lagPercentiles, ratio } from '../bench/metrics.ts';
import { checkCounters, type CounterCheck } from '../bench/counterCheck.ts';
import { makeCounterIds, startLoad, type LoadResult } from '../bench/load.ts';
import { cpuDelta, selfCpuSeconds } from '../bench/processCpu.ts';
import { runSqlConsumeLoop } from '../bench/sqlCeiling.ts';
import type { CsvRow } from '../bench/csv.ts';
import { intInRange, oneOf, OptionsError } from '../validate.ts';

/** The figure the reference design was published with (Watermill example, 2019, one message per transaction). */
export const PUBLISHED_BASELINE_MSGS_PER_S = 154;

export type BenchProfile = 'quick' | 'standard' | 'full';
export const BENCH_PROFILES: readonly BenchProfile[] = ['quick', 'standard', 'full'];
export type Mode = 'offset' | 'queue';
export type HandlerProfile = 'batched' | 'watermill';
export type PointKind = 'http-ceiling' | 'sql-ceiling' | 'drain' | 'end-to-end';

export interface SweepGrid {
  batchSizes: number[];
  /** Offset mode's isolation levels; queue mode runs at `queueIsolations`. */
  isolations: IsolationLevel[];
  /** undefined = the queue worker's default (READ COMMITTED). */
  queueIsolations: (IsolationLevel | undefined)[];
  modes: Mode[];
  /** Queue mode: worker processes per point. */
  queueWorkers: number[];
  handlerProfiles: HandlerProfile[];
  pollIntervals: number[];
  /** Server publish coalescing for end-to-end points. */
  coalesce: boolean[];
  ackModes: AckMode[];
  repetitions: number;
}

export interface SweepOptions {
  profile: BenchProfile;
  grid: SweepGrid;
  include: { httpCeiling: boolean; sqlCeiling: boolean; baseline: boolean; drain: boolean; endToEnd: boolean };
  topic: string;
  consumerGroup: string;
  /** Distinct counters messages and requests are spread over. */
  counters: number;
  /** Messages published before a drain point's workers start. */
  backlogMessages: number;
  /** Backlog of the watermill-profile points (they drain ~100x slower, so a smaller backlog is enough). */
  baselineBacklogMessages: number;
  baselineBatchSizes: number[];
  /** A drain point ends when the backlog is consumed or after this long (then its rate is over what was done). */
  drainTimeoutS: number;
  endToEndDurationS: number;
  endToEndBatchSize: number;
  endToEndConnections: number;
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
const DRAIN_SAMPLE_MS = 20;

/**
 * A drain point's backlog is at most this many batches: batch 1 drains ~1,700 msgs/s here, so a 100k backlog
 * would run out of time at every small batch size and measure the start-up instead; 2,000 batches take about
 * a second at any batch size.
 */
const DRAIN_BATCHES = 2_000;

/** The worker's own default; a point at another poll interval says so in its label. */
const DEFAULT_POLL_INTERVAL_MS = DEFAULT_WORKER_OPTIONS.pollIntervalMs;

export function drainBacklog(backlogMessages: number, batchSize: number | undefined): number {
  return Math.min(backlogMessages, (batchSize ?? 1_000) * DRAIN_BATCHES);
}

const BASE: Omit<SweepOptions, 'profile' | 'grid'> = {
  include: { httpCeiling: true, sqlCeiling: true, baseline: true, drain: true, endToEnd: true },
  topic: 'counter',
  consumerGroup: 'counter',
  // 1,000 counters: enough that a batch of 1000 touches hundreds of rows (the aggregated upsert's real cost),
  // few enough that every counter gets many increments.
  counters: 1_000,
  backlogMessages: 100_000,
  baselineBacklogMessages: 3_000,
  baselineBatchSizes: [1, 100],
  drainTimeoutS: 8,
  endToEndDurationS: 8,
  endToEndBatchSize: 1000,
  endToEndConnections: 50,
  endToEndRate: undefined,
  catchUpTimeoutS: 20,
  httpCeilingDurationS: 4,
  workerFailpoints: [],
};

/** The three profiles; every field can still be overridden from the command line. */
export function profileOptions(profile: BenchProfile): SweepOptions {
  oneOf('bench', 'profile', profile, BENCH_PROFILES);
  const grid: SweepGrid = {
    batchSizes: [1000],
    isolations: [defaultIsolation('offset', 'batched')],
    queueIsolations: [undefined],
    modes: ['offset', 'queue'],
    queueWorkers: [2],
    handlerProfiles: ['batched'],
    pollIntervals: [10],
    coalesce: [true],
    ackModes: ['transactional'],
    repetitions: 1,
  };
  if (profile === 'quick') {
    // At most 2 minutes: the best configuration, the baseline profile, both ceilings, one end-to-end point.
    return { ...BASE, profile, grid: { ...grid, modes: ['offset'] }, backlogMessages: 150_000, drainTimeoutS: 5, endToEndDurationS: 5, httpCeilingDurationS: 3, baselineBacklogMessages: 1_500 };
  }
  if (profile === 'standard') {
    // At most 10 minutes: batch sizes over three decades, three isolation levels, queue with 1/2/4 workers,
    // coalescing on and off.
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
      handlerProfiles: ['batched', 'watermill'],
      pollIntervals: [10, 1, 100], // the first is the drains' (the worker default)
      coalesce: [true, false],
      repetitions: 3,
    },
    backlogMessages: 200_000,
    drainTimeoutS: 15,
    endToEndDurationS: 15,
  };
}

export function validateSweepOptions(o: SweepOptions): SweepOptions {
  const c = 'bench';
  oneOf(c, 'profile', o.profile, BENCH_PROFILES);
  const list = <T>(field: string, values: T[], check: (v: T) => void) => {
    if (values.length === 0) throw new OptionsError(`${c}: ${field} must list at least one value`);
    values.forEach(check);
  };
  list('batch-sizes', o.grid.batchSizes, (v) => intInRange(c, 'batch-sizes', v, 1, 100_000));
  list('isolation', o.grid.isolations, (v) => oneOf(c, 'isolation', v, ISOLATION_LEVELS));
  list('modes', o.grid.modes, (v) => oneOf(c, 'modes', v, ['offset', 'queue'] as const));
  list('queue-workers', o.grid.queueWorkers, (v) => intInRange(c, 'queue-workers', v, 1, 64));
  list('profiles', o.grid.handlerProfiles, (v) => oneOf(c, 'profiles', v, ['batched', 'watermill'] as const));
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
  intInRange(c, 'duration-s', o.endToEndDurationS, 1, 86_400);
  intInRange(c, 'connections', o.endToEndConnections, 1, 10_000);
  if (o.endToEndRate !== undefined) intInRange(c, 'rate', o.endToEndRate, 1, 10_000_000);
  return o;
}

/** One configuration point of the sweep. */
export interface Point {
  kind: PointKind;
  mode: Mode;
  workers: number;
  handlerProfile: HandlerProfile | 'raw-sql' | 'none';
  batchSize: number | undefined;
  pollIntervalMs: number | undefined;
  isolation: IsolationLevel | undefined;
  ackMode: AckMode | undefined;
  coalesce: boolean | undefined;
  backlogMessages: number | undefined;
  repetition: number;
  baseline: boolean;
}

/** Expands the grid into points, in the order they run: ceilings, baseline, drain, end to end. */
export function planPoints(o: SweepOptions): Point[] {
  const g = o.grid;
  const points: Point[] = [];
  const none = { pollIntervalMs: undefined, ackMode: undefined, coalesce: undefined, baseline: false };
  const seen = new Set<string>();
  const add = (p: Point) => {
    const key = JSON.stringify({ ...p, baseline: false });
    if (seen.has(key)) return;
    seen.add(key);
    points.push(p);
  };
  for (let repetition = 1; repetition <= g.repetitions; repetition += 1) {
    if (o.include.httpCeiling) {
      add({ ...none, kind: 'http-ceiling', mode: 'offset', workers: 0, handlerProfile: 'none', batchSize: undefined, isolation: undefined, coalesce: undefined, backlogMessages: undefined, repetition });
    }
    if (o.include.sqlCeiling) {
      for (const batchSize of g.batchSizes) {
        add({ ...none, kind: 'sql-ceiling', mode: 'offset', workers: 0, handlerProfile: 'raw-sql', batchSize, isolation: defaultIsolation('offset', 'batched'), backlogMessages: drainBacklog(o.backlogMessages, batchSize), repetition });
      }
    }
    if (o.include.baseline) {
      for (const batchSize of o.baselineBatchSizes) {
        add({ kind: 'drain', mode: 'offset', workers: 1, handlerProfile: 'watermill', batchSize, pollIntervalMs: g.pollIntervals[0], isolation: defaultIsolation('offset', 'watermill'), ackMode: 'transactional', coalesce: undefined, backlogMessages: o.baselineBacklogMessages, repetition, baseline: true });
      }
    }
    if (o.include.drain) {
      // A drain never polls an empty topic until its backlog is done, so the poll interval is not varied here
      // (end-to-end points vary it: there it sets the lag of an idle worker).
      for (const mode of g.modes)
        for (const batchSize of g.batchSizes)
          // The watermill profile is the reference *offset* consumer; its read-then-write handler under queue
          // mode's parallel READ COMMITTED consumers would be a different (and lossy) design.
          for (const handlerProfile of mode === 'offset' ? g.handlerProfiles : g.handlerProfiles.filter((h) => h === 'batched'))
            for (const ackMode of g.ackModes)
              for (const isolation of mode === 'offset' ? g.isolations : g.queueIsolations)
                for (const workers of mode === 'offset' ? [1] : g.queueWorkers) {
                  // The watermill profile drains ~5,000 msgs/s at best: its backlog is the baseline's, but at
                  // least 20 batches, or a large batch would be one transaction and no rate.
                  const backlog =
                    handlerProfile === 'watermill'
                      ? Math.min(o.backlogMessages, Math.max(o.baselineBacklogMessages, batchSize * 20))
                      : drainBacklog(o.backlogMessages, batchSize);
                  add({ kind: 'drain', mode, workers, handlerProfile, batchSize, pollIntervalMs: g.pollIntervals[0], isolation, ackMode, coalesce: undefined, backlogMessages: backlog, repetition, baseline: false });
                }
    }
    if (o.include.endToEnd) {
      for (const mode of g.modes)
        for (const coalesce of g.coalesce)
          for (const pollIntervalMs of g.pollIntervals) {
            // End to end runs at the worker's default isolation (named, so the label says it).
            add({ kind: 'end-to-end', mode, workers: 1, handlerProfile: 'batched', batchSize: o.endToEndBatchSize, pollIntervalMs, isolation: mode === 'offset' ? defaultIsolation('offset', 'batched') : g.queueIsolations[0], ackMode: 'transactional', coalesce, backlogMessages: undefined, repetition, baseline: false });
          }
    }
  }
  return points;
}

/** A short name for terminal lines and chart labels. */
export function pointLabel(p: Point): string {
  const parts: string[] = [p.kind];
  if (p.kind === 'http-ceiling') return 'http-ceiling (POST /noop)';
  if (p.kind === 'sql-ceiling') return `sql-ceiling batch ${p.batchSize}`;
  parts.push(p.mode === 'queue' ? `queue x${p.workers}` : 'offset');
  if (p.handlerProfile !== 'batched') parts.push(p.handlerProfile);
  parts.push(`batch ${p.batchSize}`);
  if (p.isolation !== undefined) parts.push(p.isolation);
  if (p.ackMode !== undefined && p.ackMode !== 'transactional') parts.push(p.ackMode);
  if (p.kind === 'end-to-end') parts.push(p.coalesce === true ? 'coalesce' : 'no-coalesce');
  // Labels name a point uniquely (medians group by them); the default poll interval is left unsaid.
  if (p.pollIntervalMs !== undefined && p.pollIntervalMs !== DEFAULT_POLL_INTERVAL_MS) parts.push(`poll ${p.pollIntervalMs} ms`);
  return parts.join(' ');
}

/** What one point measured; undefined = does not apply to this kind, or could not be measured. */
export interface PointResult {
  point: Point;
  resolvedIsolation: string | undefined;
  gapHandling: string | undefined;
  drainMsgsPerS: number | undefined;
  publishReqPerS: number | undefined;
  load: LoadResult | undefined;
  lagP50Ms: number | undefined;
  lagP99Ms: number | undefined;
  cpuLoadgenS: number | undefined;
  cpuServerS: number | undefined;
  cpuWorkerS: number | undefined;
  cpuDbS: number | undefined;
  messagesPublished: number | undefined;
  messagesConsumed: number | undefined;
  ackedOffset: number | undefined;
  maxOffset: number | undefined;
  drained: boolean | undefined;
  check: CounterCheck | undefined;
  /** Messages the workers moved to eob_poison_<topic> (0 unless a payload was rejected). */
  poisoned?: number;
  /** Offset mode: offsets the workers passed as holes, and of those, passed by the bound without proof. */
  gapsPassed: number | undefined;
  gapsPassedByTimeout: number | undefined;
  durationS: number;
  note: string;
}

export interface SweepContext {
  sut: SystemUnderTest;
  options: SweepOptions;
  signal: AbortSignal | undefined;
  log: (line: string) => void;
}

/** Runs one point; never throws for a failure of the system (that is a row with a note), only for bugs here. */
export async function runPoint(ctx: SweepContext, point: Point): Promise<PointResult> {
  const started = performance.now();
  const result: PointResult = {
    point, resolvedIsolation: point.isolation, gapHandling: undefined, drainMsgsPerS: undefined, publishReqPerS: undefined,
    load: undefined, lagP50Ms: undefined, lagP99Ms: undefined, cpuLoadgenS: undefined, cpuServerS: undefined,
    cpuWorkerS: undefined, cpuDbS: undefined, messagesPublished: undefined, messagesConsumed: undefined,
    ackedOffset: undefined, maxOffset: undefined, drained: undefined, check: undefined, gapsPassed: undefined,
    gapsPassedByTimeout: undefined, durationS: 0, note: '',
  };
  const children: ChildService[] = [];
  const gapsBefore = ctx.sut.workerGaps.totals();
  const stopChildren = () => Promise.allSettled(children.map((c) => ctx.sut.stopService(c)));
  try {
    if (point.kind === 'http-ceiling') await runHttpCeiling(ctx, result, children);
    else {
      await resetTables(ctx, point.mode);
      if (point.kind === 'sql-ceiling') await runSqlCeiling(ctx, result);
      else if (point.kind === 'drain') await runDrain(ctx, result, children);
      else await runEndToEnd(ctx, result, children);
      // The check reads the acked offset, then the counters: a worker still running between the two reads
      // would make an undrained point look like it duplicated (seen: batch-1 points that ran out of time).
      await stopChildren();
      if (point.mode === 'offset' && (point.kind === 'drain' || point.kind === 'end-to-end')) {
        const gaps = ctx.sut.workerGaps.totals();
        result.gapsPassed = gaps.gapsPassed - gapsBefore.gapsPassed;
        result.gapsPassedByTimeout = gaps.gapsPassedByTimeout - gapsBefore.gapsPassedByTimeout;
      }
      await checkPoint(ctx, result);
    }
  } catch (error) {
    result.note = appendNote(result.note, (error as Error).message.split('\n').slice(0, 3).join(' | '));
  } finally {
    await stopChildren();
  }
  if (ctx.signal?.aborted === true) result.note = appendNote(result.note, 'interrupted');
  result.durationS = (performance.now() - started) / 1000;
  return result;
}

function appendNote(note: string, more: string): string {
  return note === '' ? more : `${note}; ${more}`;
}

async function resetTables(ctx: SweepContext, mode: Mode): Promise<void> {
  const db = ctx.sut.db;
  const topic = ctx.options.topic;
  await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
  await ensureSchema(db, { topic, topicSchema: 'queue', dedup: false });
  await createOffsetsTable(db, topic);
  // TRUNCATE also resets AUTO_INCREMENT, so a backlog's offsets are 1..N and the acked offset counts messages.
  for (const table of [messagesTable(topic), offsetsTable(topic), queueTable(topic), '`counter`']) {
    await db.query(`TRUNCATE TABLE ${table}`);
  }
  await truncatePoisonTable(db, topic);
  const dedup = await db.query<unknown[]>('SHOW TABLES LIKE ?', [dedupTable(topic).replace(/`/g, '')]);
  if (dedup.length > 0) await db.query(`TRUNCATE TABLE ${dedupTable(topic)}`);
  void mode;
}

/** Rows per INSERT of the backlog: DESIGN 6 measured ~124,000 rows/s with 100-row INSERTs on 8 connections; 1000-row statements on the pool's 4 connections do as well with fewer round trips. */
const BACKLOG_ROWS_PER_INSERT = 1_000;

/** Publishes `n` messages round-robin over `counters` straight into the topic table (multi-row INSERTs). */
export async function publishBacklog(ctx: SweepContext, mode: Mode, n: number, counters: readonly string[]): Promise<void> {
  const table = mode === 'offset' ? messagesTable(ctx.options.topic) : queueTable(ctx.options.topic);
  let next = 0;
  const chunks: number[] = [];
  for (let left = n; left > 0; left -= BACKLOG_ROWS_PER_INSERT) chunks.push(Math.min(BACKLOG_ROWS_PER_INSERT, left));
  const pool = ctx.sut.pool;
  const db = executorOf(pool);
  const run = async () => {
    for (let size = chunks.shift(); size !== undefined; size = chunks.shift()) {
      const messages: OutgoingMessage[] = [];
      for (let i = 0; i < size; i += 1) {
        messages.push({ uuid: randomUUID(), payload: { counter_uuid: counters[next % counters.length] }, metadata: {} });
        next += 1;
      }
      const { sql, values } = insertMessagesSql(table, messages);
      await db.query(sql, values);
    }
  };
  await Promise.all([run(), run(), run()]);
}

function workerFlags(ctx: SweepContext, p: Point, extraFailpoints: readonly string[]): WorkerFlags {
  return {
    mode: p.mode,
    topic: ctx.options.topic,
    consumerGroup: ctx.options.consumerGroup,
    ...(p.batchSize === undefined ? {} : { batchSize: p.batchSize }),
    ...(p.pollIntervalMs === undefined ? {} : { pollIntervalMs: p.pollIntervalMs }),
    ...(p.isolation === undefined ? {} : { isolation: p.isolation }),
    ...(p.ackMode === undefined ? {} : { ackMode: p.ackMode }),
    profile: p.handlerProfile === 'watermill' ? 'watermill' : 'batched',
    failpoints: extraFailpoints,
  };
}

/** Starts the point's workers and records the settings they resolved (their `worker started {...}` line). */
async function startWorkers(ctx: SweepContext, result: PointResult, children: ChildService[], extraFailpoints: readonly string[]): Promise<ChildService[]> {
  const started = await Promise.all(
    Array.from({ length: result.point.workers }, async () => {
      const w = await ctx.sut.startWorker(workerFlags(ctx, result.point, extraFailpoints));
      children.push(w);
      return w;
    }),
  );
  const line = started[0]?.outputTail().split('\n').find((l) => l.startsWith('worker started'));
  if (line !== undefined) {
    try {
      const settings = JSON.parse(line.slice('worker started'.length).trim()) as { isolation?: string; gapHandling?: string };
      result.resolvedIsolation = settings.isolation ?? result.resolvedIsolation;
      result.gapHandling = settings.gapHandling;
    } catch {
      // The line's JSON is informative only.
    }
  }
  return started;
}

function sumCpu(services: readonly ChildService[]): number | undefined {
  let total = 0;
  for (const s of services) {
    const c = s.cpuSeconds();
    if (c === undefined) return undefined;
    total += c;
  }
  return total;
}

/** Resolves with the first worker that exits while the point runs (a crash, a failpoint), never otherwise. */
function firstUnexpectedExit(workers: readonly ChildService[]): Promise<ChildService> {
  return new Promise((resolve) => {
    for (const w of workers) w.onExit((_status, expected) => { if (!expected) resolve(w); });
  });
}

async function runDrain(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const p = result.point;
  const n = p.backlogMessages ?? ctx.options.backlogMessages;
  await publishBacklog(ctx, p.mode, n, makeCounterIds(ctx.options.counters));
  result.messagesPublished = n;
  const sampler = startSampler(ctx.sut.db, { mode: p.mode, topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: DRAIN_SAMPLE_MS });
  try {
    const workers = await startWorkers(ctx, result, children, ctx.options.workerFailpoints);
    const cpuWorkerBefore = sumCpu(workers);
    const cpuDbBefore = ctx.sut.dbCpuSeconds();
    const crashed = firstUnexpectedExit(workers);
    const outcome = await Promise.race([
      sampler.waitFor((s) => s.progress >= n, ctx.options.drainTimeoutS * 1000, ctx.signal).then((done) => (done ? 'drained' : 'timeout')),
      crashed.then((w) => `${w.name} exited (${w.exitStatus?.signal ?? `code ${w.exitStatus?.code}`}): ${lastLine(w.outputTail())}`),
    ]);
    result.cpuWorkerS = cpuDelta(cpuWorkerBefore, sumCpu(workers));
    result.cpuDbS = cpuDelta(cpuDbBefore, ctx.sut.dbCpuSeconds());
    if (outcome === 'timeout' && ctx.signal?.aborted !== true) result.note = appendNote(result.note, `backlog not drained within ${ctx.options.drainTimeoutS} s: rate over what was consumed`);
    else if (outcome !== 'drained' && outcome !== 'timeout') result.note = appendNote(result.note, outcome);
  } finally {
    await sampler.stop();
  }
  const rate = drainRate(sampler.samples, n);
  result.drainMsgsPerS = rate.perSecond;
  const lag = lagPercentiles(sampler.samples, rate.startMs, rate.endMs);
  result.lagP50Ms = lag.p50;
  result.lagP99Ms = lag.p99;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.slice(0, 200) ?? '';
}

async function runSqlCeiling(ctx: SweepContext, result: PointResult): Promise<void> {
  const p = result.point;
  const n = p.backlogMessages ?? ctx.options.backlogMessages;
  await publishBacklog(ctx, 'offset', n, makeCounterIds(ctx.options.counters));
  result.messagesPublished = n;
  result.resolvedIsolation = p.isolation;
  const sampler = startSampler(ctx.sut.db, { mode: 'offset', topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: DRAIN_SAMPLE_MS });
  const cpuSelf = selfCpuSeconds();
  const cpuDb = ctx.sut.dbCpuSeconds();
  try {
    await runSqlConsumeLoop(ctx.sut.mysqlUrl, {
      topic: ctx.options.topic,
      consumerGroup: ctx.options.consumerGroup,
      batchSize: p.batchSize ?? 1000,
      isolation: p.isolation ?? defaultIsolation('offset', 'batched'),
      untilOffset: n,
      deadlineMs: ctx.options.drainTimeoutS * 1000,
      signal: ctx.signal,
    });
    // One last sample after the loop's final commit, so the end of the drain is seen.
    await new Promise((r) => setTimeout(r, 150));
  } finally {
    await sampler.stop();
  }
  result.cpuWorkerS = cpuDelta(cpuSelf, selfCpuSeconds());
  result.cpuDbS = cpuDelta(cpuDb, ctx.sut.dbCpuSeconds());
  result.drainMsgsPerS = drainRate(sampler.samples, n).perSecond;
}

async function runHttpCeiling(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const server = await ctx.sut.startServer({ topic: ctx.options.topic });
  children.push(server.service);
  const r = await measureLoad(ctx, server.baseUrl, 'noop', ctx.options.httpCeilingDurationS, server.service, [], result);
  result.publishReqPerS = r.okPerSecond;
}

async function measureLoad(
  ctx: SweepContext,
  baseUrl: string,
  route: 'count' | 'noop',
  durationS: number,
  server: ChildService,
  workers: readonly ChildService[],
  result: PointResult,
): Promise<LoadResult> {
  const before = { self: selfCpuSeconds(), server: server.cpuSeconds(), workers: sumCpu(workers), db: ctx.sut.dbCpuSeconds() };
  const load = startLoad({
    baseUrl,
    route,
    counters: makeCounterIds(ctx.options.counters),
    connections: ctx.options.endToEndConnections,
    durationS,
    overallRate: route === 'count' ? ctx.options.endToEndRate : undefined,
    timeoutS: 10,
  });
  const onAbort = () => load.stop();
  ctx.signal?.addEventListener('abort', onAbort);
  try {
    const r = await load.result;
    result.load = r;
    result.cpuLoadgenS = cpuDelta(before.self, selfCpuSeconds());
    result.cpuServerS = cpuDelta(before.server, server.cpuSeconds());
    if (workers.length > 0) result.cpuWorkerS = cpuDelta(before.workers, sumCpu(workers));
    result.cpuDbS = cpuDelta(before.db, ctx.sut.dbCpuSeconds());
    return r;
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

async function runEndToEnd(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const p = result.point;
  const server = await ctx.sut.startServer({ topic: ctx.options.topic, topicSchema: p.mode, ...(p.coalesce === undefined ? {} : { coalesce: p.coalesce }) });
  children.push(server.service);
  const workers = await startWorkers(ctx, result, children, []);
  const sampler = startSampler(ctx.sut.db, { mode: p.mode, topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: 250 });
  let loadStart = 0;
  let loadEnd = 0;
  try {
    loadStart = performance.now();
    const r = await measureLoad(ctx, server.baseUrl, 'count', ctx.options.endToEndDurationS, server.service, workers, result);
    loadEnd = performance.now();
    result.publishReqPerS = r.okPerSecond;
    if (r.requestsNon2xx + r.errors + r.timeouts > 0) {
      result.note = appendNote(result.note, `${r.requestsNon2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    }
    const published = await sampler.latest().then(async () => (await readPublished(ctx, p.mode)));
    const caughtUp = await sampler.waitFor((s) => s.progress >= published, ctx.options.catchUpTimeoutS * 1000, ctx.signal);
    if (!caughtUp && ctx.signal?.aborted !== true) result.note = appendNote(result.note, `workers had not caught up ${ctx.options.catchUpTimeoutS} s after the load`);
    result.messagesPublished = published;
  } finally {
    await sampler.stop();
  }
  const windowSamples = sampler.samples.filter((s) => s.atMs >= loadStart);
  result.drainMsgsPerS = drainRate(windowSamples, result.messagesPublished).perSecond;
  const lag = lagPercentiles(sampler.samples, loadStart, loadEnd);
  result.lagP50Ms = lag.p50;
  result.lagP99Ms = lag.p99;
}

async function readPublished(ctx: SweepContext, mode: Mode): Promise<number> {
  const table = mode === 'offset' ? messagesTable(ctx.options.topic) : queueTable(ctx.options.topic);
  const rows = await ctx.sut.db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * After the point (workers stopped): every counter must equal the number of its consumed messages. Offset
 * mode: messages up to the acked offset; queue mode: rows acked. Also records acked vs max offset.
 */
async function checkPoint(ctx: SweepContext, result: PointResult): Promise<void> {
  const db = ctx.sut.db;
  const topic = ctx.options.topic;
  const mode = result.point.kind === 'sql-ceiling' ? 'offset' : result.point.mode;
  const idExpr = "JSON_UNQUOTE(JSON_EXTRACT(`payload`, '$.counter_uuid'))";
  let rows: { id: string; n: number }[];
  if (mode === 'offset') {
    const acked = await db.query<{ a: number | null }[]>(`SELECT \`offset_acked\` AS a FROM ${offsetsTable(topic)} WHERE \`consumer_group\` = ?`, [ctx.options.consumerGroup]);
    const max = await db.query<{ m: number | null; c: number }[]>(`SELECT MAX(\`offset\`) AS m, COUNT(*) AS c FROM ${messagesTable(topic)}`);
    result.ackedOffset = Number(acked[0]?.a ?? 0);
    result.maxOffset = Number(max[0]?.m ?? 0);
    result.messagesPublished = Number(max[0]?.c ?? 0);
    rows = await db.query(`SELECT ${idExpr} AS id, COUNT(*) AS n FROM ${messagesTable(topic)} WHERE \`offset\` <= ? GROUP BY id`, [result.ackedOffset]);
    result.drained = result.ackedOffset >= result.maxOffset;
  } else {
    const counts = await db.query<{ c: number; a: number | null; m: number | null }[]>(`SELECT COUNT(*) AS c, SUM(\`acked\`) AS a, MAX(\`offset\`) AS m FROM ${queueTable(topic)}`);
    result.messagesPublished = Number(counts[0]?.c ?? 0);
    result.maxOffset = Number(counts[0]?.m ?? 0);
    rows = await db.query(`SELECT ${idExpr} AS id, COUNT(*) AS n FROM ${queueTable(topic)} WHERE \`acked\` = 1 GROUP BY id`);
    result.drained = Number(counts[0]?.a ?? 0) >= result.messagesPublished;
  }
  const expected = new Map(rows.map((r) => [r.id, Number(r.n)]));
  const actual = await selectAllCounters(db);
  result.check = checkCounters(expected, actual);
  result.poisoned = await countPoisoned(db, topic);
  result.messagesConsumed = result.check.expectedTotal;
  if (result.check.verdict === 'invalid') {
    result.note = appendNote(result.note, `counters wrong: ${result.check.wrongCounters.slice(0, 3).join(', ')}`);
  }
}

/** Run-wide references the ratio columns are computed against. */
export interface References {
  httpCeilingReqPerS: number | undefined;
  sqlCeilingByBatch: Map<number, number>;
  watermillProfileMsgsPerS: number | undefined;
}

/** The best of each reference measured in this run (valid points only). */
export function references(results: readonly PointResult[]): References {
  const best = (values: (number | undefined)[]) => {
    const v = values.filter((x): x is number => x !== undefined);
    return v.length === 0 ? undefined : Math.max(...v);
  };
  const sqlCeilingByBatch = new Map<number, number>();
  for (const r of results) {
    if (r.point.kind !== 'sql-ceiling' || r.drainMsgsPerS === undefined || r.point.batchSize === undefined) continue;
    sqlCeilingByBatch.set(r.point.batchSize, Math.max(sqlCeilingByBatch.get(r.point.batchSize) ?? 0, r.drainMsgsPerS));
  }
  return {
    httpCeilingReqPerS: best(results.filter((r) => r.point.kind === 'http-ceiling').map((r) => r.publishReqPerS)),
    sqlCeilingByBatch,
    watermillProfileMsgsPerS: best(
      results.filter((r) => r.point.kind === 'drain' && r.point.handlerProfile === 'watermill' && r.check?.verdict === 'valid').map((r) => r.drainMsgsPerS),
    ),
  };
}

export const CSV_COLUMNS = [
  'point', 'kind', 'repetition', 'mode', 'workers', 'handler_profile', 'batch_size', 'poll_interval_ms', 'isolation',
  'gap_handling', 'ack_mode', 'coalesce', 'connections', 'offered_rate_req_per_s', 'duration_s', 'backlog_messages', 'counters',
  'drain_msgs_per_s', 'publish_req_per_s', 'requests_2xx', 'requests_non2xx', 'request_errors', 'request_timeouts',
  'latency_p50_ms', 'latency_p99_ms', 'lag_p50_ms', 'lag_p99_ms',
  'cpu_loadgen_s', 'cpu_server_s', 'cpu_worker_s', 'cpu_db_s',
  'messages_published', 'messages_consumed', 'acked_offset', 'max_offset', 'drained', 'verdict', 'lost', 'duplicated', 'poisoned',
  'gaps_passed', 'gaps_passed_by_timeout',
  'ratio_vs_baseline', 'ratio_vs_watermill_profile', 'ratio_vs_http_ceiling', 'ratio_vs_sql_ceiling',
  'db_version', 'db_flush_log_at_trx_commit', 'point_duration_s', 'note',
] as const;

export interface DbColumns {
  db_version: string;
  db_flush_log_at_trx_commit: number | undefined;
}

/** One CSV row of a point result, with its ratios against the run's references. */
export function toRow(r: PointResult, refs: References, o: SweepOptions, db: DbColumns): CsvRow {
  const p = r.point;
  const isLoad = p.kind === 'end-to-end' || p.kind === 'http-ceiling';
  const rate = r.drainMsgsPerS;
  const ceilingSql = p.batchSize === undefined ? undefined : refs.sqlCeilingByBatch.get(p.batchSize);
  return {
    point: pointLabel(p),
    kind: p.kind,
    repetition: p.repetition,
    mode: p.kind === 'http-ceiling' ? undefined : p.mode,
    workers: p.kind === 'drain' || p.kind === 'end-to-end' ? p.workers : undefined,
    handler_profile: p.handlerProfile,
    batch_size: p.batchSize,
    poll_interval_ms: p.pollIntervalMs,
    isolation: r.resolvedIsolation,
    gap_handling: r.gapHandling,
    ack_mode: p.ackMode,
    coalesce: p.coalesce,
    connections: isLoad ? o.endToEndConnections : undefined,
    offered_rate_req_per_s: p.kind === 'end-to-end' ? o.endToEndRate : undefined,
    duration_s: p.kind === 'end-to-end' ? o.endToEndDurationS : p.kind === 'http-ceiling' ? o.httpCeilingDurationS : undefined,
    backlog_messages: p.backlogMessages,
    counters: o.counters,
    drain_msgs_per_s: rate,
    publish_req_per_s: r.publishReqPerS,
    requests_2xx: r.load?.requests2xx,
    requests_non2xx: r.load?.requestsNon2xx,
    request_errors: r.load?.errors,
    request_timeouts: r.load?.timeouts,
    latency_p50_ms: r.load?.latencyP50Ms,
    latency_p99_ms: r.load?.latencyP99Ms,
    lag_p50_ms: r.lagP50Ms,
    lag_p99_ms: r.lagP99Ms,
    cpu_loadgen_s: r.cpuLoadgenS,
    cpu_server_s: r.cpuServerS,
    cpu_worker_s: r.cpuWorkerS,
    cpu_db_s: r.cpuDbS,
    messages_published: r.messagesPublished,
    messages_consumed: r.messagesConsumed,
    acked_offset: r.ackedOffset,
    max_offset: r.maxOffset,
    drained: r.drained,
    verdict: p.kind === 'http-ceiling' ? 'n/a' : (r.check?.verdict ?? 'unknown'),
    lost: r.check?.lost,
    duplicated: r.check?.duplicated,
    poisoned: r.poisoned,
    gaps_passed: r.gapsPassed,
    gaps_passed_by_timeout: r.gapsPassedByTimeout,
    ratio_vs_baseline: ratio(rate, PUBLISHED_BASELINE_MSGS_PER_S),
    ratio_vs_watermill_profile: ratio(rate, refs.watermillProfileMsgsPerS),
    ratio_vs_http_ceiling: isLoad ? ratio(r.publishReqPerS, refs.httpCeilingReqPerS) : undefined,
    ratio_vs_sql_ceiling: p.kind === 'sql-ceiling' ? undefined : ratio(rate, ceilingSql),
    db_version: db.db_version,
    db_flush_log_at_trx_commit: db.db_flush_log_at_trx_commit,
    point_duration_s: r.durationS,
    note: r.note === '' ? undefined : r.note,
  };
}

export interface SweepRun {
  results: PointResult[];
  interrupted: boolean;
}

/** Runs the planned points in order; stops early (keeping what was measured) when `signal` aborts. */
export async function runSweep(
  ctx: SweepContext,
  points: readonly Point[],
  onPoint: (done: number, label: string, result?: PointResult) => void,
): Promise<SweepRun> {
  const results: PointResult[] = [];
  for (const [i, point] of points.entries()) {
    if (ctx.signal?.aborted === true) return { results, interrupted: true };
    onPoint(i, pointLabel(point));
    const r = await runPoint(ctx, point);
    results.push(r);
    onPoint(i + 1, pointLabel(point), r);
  }
  return { results, interrupted: ctx.signal?.aborted === true };
}
