// Runs one point of the bench: a fresh topic, then the runner of the point's kind (http-ceiling, sql-ceiling,
// drain, end-to-end; a peer job queue's in peerPoint.ts), then the counter check, which makes every point a
// correctness run as well.
import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from '../../system/pubsub/types.ts';
import { resetConsumption } from '../../system/sql/mariadb/observation.ts';
import { truncatePoisonTable } from '../../system/sql/mariadb/poisonTable.ts';
import { analyzePgTopic, primePgTopicStatistics } from '../../system/sql/postgres/observation.ts';
import { countPoisonedMessages, readDrainPosition } from '../../bench/tableReads.ts';
import type { ChildService } from '../../harness/childService.ts';
import { defaultIsolation } from '../../system/worker.ts';
import type { SystemUnderTest, WorkerFlags } from '../../harness/systemUnderTest.ts';
import { resolveWorkerSettings } from '../../system/worker.ts';
import { startSampler } from '../../bench/sampler.ts';
import { cpuUsPerMessage, drainRate, lagPercentiles } from '../../bench/metrics.ts';
import { checkCounters, type CounterCheck } from '../../bench/counterCheck.ts';
import { makeCounterIds, startLoad, type LoadResult } from '../../bench/load.ts';
import { cpuDelta, selfCpuSeconds } from '../../harness/processCpu.ts';
import { runSqlConsumeLoopInProcess } from '../../bench/sqlCeiling.ts';
import type { IsolationLevel, TopicMode } from '../../system/pubsub/types.ts';
import { DEFAULT_CONNECTIONS, DRAIN_SAMPLE_MS, type SweepOptions } from './sweepOptions.ts';
import { drainRoundsOf, type Point } from './plan.ts';
import { runPeerPoint, type PeerFacts } from './peerPoint.ts';

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
  /**
   * CPU microseconds per message of each process over the window its CPU was read in, divided by the messages
   * that went through it in that window: server and load generator over the load (per 2xx answer), worker and
   * database from the start of the load (end to end) or of the workers (drain) to the end of the drain.
   */
  cpuUsPerMsg: { loadgen: number | undefined; server: number | undefined; worker: number | undefined; db: number | undefined };
  messagesPublished: number | undefined;
  messagesConsumed: number | undefined;
  ackedOffset: number | undefined;
  maxOffset: number | undefined;
  /**
   * Drains: the backlog was consumed within the measuring window (drainTimeoutS). The counter check runs on
   * the state after the workers stopped, which may be later; the note says so when the two differ.
   */
  drained: boolean | undefined;
  /** Offset-mode drains: the median of the SQL ceiling's loop over the same backlog, once before each round's workers (runDrain). */
  pairedSqlCeilingMsgsPerS?: number | undefined;
  /** Offset-mode drains: each round's drain over its paired ceiling (SweepOptions.drainRounds). */
  drainRatios?: number[];
  /**
   * The same rounds' CPU per message (workers + database) over the ceiling's (its loop + database): what the
   * pub/sub layer costs beyond the raw loop, read from CPU time rather than from a rate the machine's other
   * users set (three quick runs at load 16-20: 1.1, 1.1, 0.9, while the rounds' rate ratios ran 0.65-1.46).
   */
  drainCpuRatios?: number[];
  /** The run was interrupted while (or before) this point ran: its figures are partial or missing. */
  interrupted: boolean;
  check: CounterCheck | undefined;
  /** Messages the workers moved to eob_poison_<topic> (0 unless a payload was rejected). */
  poisoned?: number;
  /** Offset mode: offsets the workers passed as holes, and of those, passed by the bound without proof. */
  gapsPassed: number | undefined;
  gapsPassedByTimeout: number | undefined;
  durationS: number;
  note: string;
  /** Peer points: the peer's version, settings, task and guarantee, and what its check counted. */
  peer?: PeerFacts;
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
    cpuWorkerS: undefined, cpuDbS: undefined, cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: undefined, db: undefined }, messagesPublished: undefined, messagesConsumed: undefined,
    ackedOffset: undefined, maxOffset: undefined, drained: undefined, check: undefined, gapsPassed: undefined,
    gapsPassedByTimeout: undefined, durationS: 0, note: '', interrupted: false,
  };
  const children: ChildService[] = [];
  const gapsBefore = ctx.sut.workerGaps.totals();
  const stopChildren = () => Promise.allSettled(children.map((c) => ctx.sut.stopService(c)));
  try {
    if (point.kind === 'http-ceiling') await runHttpCeiling(ctx, result, children);
    else if (point.kind === 'peer') await runPeerPoint(ctx, result);
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
  if (ctx.signal?.aborted === true) {
    result.interrupted = true;
    result.note = appendNote(result.note, 'interrupted while this point ran: figures partial');
  }
  result.durationS = (performance.now() - started) / 1000;
  return result;
}

function appendNote(note: string, more: string): string {
  return note === '' ? more : `${note}; ${more}`;
}

async function resetTables(ctx: SweepContext, mode: TopicMode): Promise<void> {
  const db = ctx.sut.db;
  const topic = ctx.options.topic;
  const engine = ctx.sut.sql;
  await engine.ensureSchema(db, { topic, mode: 'offset', dedup: false });
  await engine.ensureSchema(db, { topic, mode: 'queue', dedup: false });
  await engine.ensureGroup(db, { topic, consumerGroup: ctx.options.consumerGroup });
  await engine.truncateTopic(db, { topic });
  // The seam has no poison truncation; on PostgreSQL a point's poison count includes earlier points' (0 unless
  // a payload was rejected, which no bench point does).
  if (engine.name === 'mariadb') await truncatePoisonTable(db, topic);
  void mode;
}

/** Rows per INSERT of the backlog: measured here: ~124,000 rows/s with 100-row INSERTs on 8 connections; 1000-row statements on the pool's 4 connections do as well with fewer round trips. */
const BACKLOG_ROWS_PER_INSERT = 1_000;

/** Publishes `n` messages round-robin over `counters` straight into the topic table (multi-row INSERTs). */
export async function publishBacklog(ctx: SweepContext, mode: TopicMode, n: number, counters: readonly string[]): Promise<void> {
  let next = 0;
  const chunks: number[] = [];
  for (let left = n; left > 0; left -= BACKLOG_ROWS_PER_INSERT) chunks.push(Math.min(BACKLOG_ROWS_PER_INSERT, left));
  const db = ctx.sut.db;
  const engine = ctx.sut.sql;
  const run = async () => {
    for (let size = chunks.shift(); size !== undefined; size = chunks.shift()) {
      const messages: OutgoingMessage[] = [];
      for (let i = 0; i < size; i += 1) {
        messages.push({ uuid: randomUUID(), payload: { counter_uuid: counters[next % counters.length] }, metadata: {} });
        next += 1;
      }
      await engine.publish(db, { topic: ctx.options.topic, mode, messages });
    }
  };
  await Promise.all([run(), run(), run()]);
  // Every consumer of a backlog (the SQL ceiling point, the paired ceiling's runs, the drain's workers) starts
  // on an analyzed table, whatever ran before it. Unanalyzed, the sampler's readings scan the whole table
  // (analyzePgTopic says why), and the table is unanalyzed until autovacuum's first pass: the sql-ceiling
  // points, which run first, paid for it and the later drains did not. Measured here, offset mode, READ
  // COMMITTED, batch 1 to 5000 in the standard run's order, batch 1000: without this the sql-ceiling point read
  // 15,611 msgs/s at 95.5 us/msg of database CPU, the ceiling paired with the drain 42,856 and the drain's
  // database 12.4 us/msg; with it, 54,138 at 11.9, paired 65,036, drain 66,185 at 8.9.
  if (engine.name === 'postgres' && mode === 'offset') await analyzePgTopic(db, ctx.options.topic);
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
    handler: p.handler === 'watermill' ? 'watermill' : 'batched',
    failpoints: extraFailpoints,
  };
}

/**
 * Starts the point's workers and records the settings they run with, resolved from the spec they were started
 * with by the worker's own rules (resolveWorkerSpec), not read back from their output.
 */
async function startWorkers(ctx: SweepContext, result: PointResult, children: ChildService[], extraFailpoints: readonly string[]): Promise<ChildService[]> {
  const spec = workerFlags(ctx, result.point, extraFailpoints);
  const started = await Promise.all(
    Array.from({ length: result.point.workers }, async () => {
      const w = await ctx.sut.startWorker(spec);
      children.push(w);
      return w;
    }),
  );
  // The engine's own rules (the watermill handler's isolation and gap handling differ on PostgreSQL).
  const resolved = resolveWorkerSettings({ mode: spec.mode ?? 'offset', handler: spec.handler ?? 'batched', isolation: spec.isolation, gapHandling: spec.gapHandling }, ctx.sut.engine);
  result.resolvedIsolation = resolved.isolation;
  result.gapHandling = resolved.gapHandling;
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

/** Resolves with the first worker that exits by itself while the point runs (a crash, a failpoint), never otherwise. */
function firstUnexpectedExit(workers: readonly ChildService[]): Promise<ChildService> {
  return new Promise((resolve) => {
    for (const w of workers) w.onExit((_status, _expected, cause) => { if (cause !== 'stopped') resolve(w); });
  });
}

async function runDrain(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const p = result.point;
  const n = p.backlogMessages ?? ctx.options.backlogMessages;
  const counters = makeCounterIds(ctx.options.counters);
  await publishBacklog(ctx, p.mode, n, counters);
  result.messagesPublished = n;
  if (p.mode !== 'offset') {
    await drainOnce(ctx, result, children, n);
    return;
  }
  // Offset mode: rounds of the SQL ceiling's loop and the workers on the same backlog, seconds apart, each
  // round a pair, the ratio the median of the pairs' ratios (see SweepOptions.drainRounds for the measurement
  // that chose this over one drain against the best of several ceilings).
  const rounds = drainRoundsOf(p, ctx.options);
  const drains: number[] = [];
  const ceilings: number[] = [];
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let round = 0; round < rounds && ctx.signal?.aborted !== true; round += 1) {
    if (round > 0) await consumeAgain(ctx, p.mode, n, counters);
    const ceiling = await runSqlLoop(ctx, p.batchSize ?? 1000, pairedIsolation(ctx, p), n);
    await consumeAgain(ctx, p.mode, n, counters);
    const run = await drainOnce(ctx, result, children, n);
    const drain = run.msgsPerS;
    if (ceiling.msgsPerS !== undefined) ceilings.push(ceiling.msgsPerS);
    if (drain !== undefined) drains.push(drain);
    if (ceiling.msgsPerS !== undefined && drain !== undefined) ratios.push(drain / ceiling.msgsPerS);
    const ceilingCpu = ceiling.cpuLoopS === undefined || ceiling.cpuDbS === undefined ? undefined : cpuUsPerMessage(ceiling.cpuLoopS + ceiling.cpuDbS, ceiling.consumed);
    if (ceilingCpu !== undefined && run.cpuUsPerMsg !== undefined && ceilingCpu > 0) cpuRatios.push(run.cpuUsPerMsg / ceilingCpu);
    // The workers of every round but the last stop here; the last round's consumption is the one the point's
    // counter check judges (runPoint stops them).
    if (round < rounds - 1) {
      await Promise.allSettled(children.splice(0).map((c) => ctx.sut.stopService(c)));
      await checkPoint(ctx, result);
      if (result.check?.verdict === 'invalid') break;
    }
  }
  result.drainMsgsPerS = median(drains);
  result.pairedSqlCeilingMsgsPerS = median(ceilings);
  result.drainRatios = ratios;
  result.drainCpuRatios = cpuRatios;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Makes the backlog unconsumed again: on MariaDB the group's position and the counters are emptied; no
 * statement behind the engine seam undoes a consumption on PostgreSQL (the position is a transaction id and
 * an offset), so there the topic is emptied and the same backlog published again (~1 s for 20,000 rows here).
 */
async function consumeAgain(ctx: SweepContext, mode: TopicMode, n: number, counters: readonly string[]): Promise<void> {
  if (ctx.sut.engine === 'mariadb') await resetConsumption(ctx.sut.db, ctx.options.topic);
  else {
    await resetTables(ctx, mode);
    await publishBacklog(ctx, mode, n, counters);
  }
}

/**
 * One drain of the backlog by freshly started workers; its rate (msgs/s) or undefined. CPU and the drained flag
 * add up over the rounds of a point (a round that ran out of time marks the point not drained).
 */
async function drainOnce(ctx: SweepContext, result: PointResult, children: ChildService[], n: number): Promise<DrainRun> {
  const p = result.point;
  // Awaited: the sampler's baseline (a count of the whole backlog on PostgreSQL) is taken before the workers
  // start and before the CPU readings, so neither the drain nor its CPU includes it.
  const sampler = await startSampler(ctx.sut.db, { engine: ctx.sut.sql, mode: p.mode, topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: DRAIN_SAMPLE_MS });
  let cpuUsPerMsg: number | undefined;
  try {
    const workers = await startWorkers(ctx, result, children, ctx.options.workerFailpoints);
    const cpuWorkerBefore = sumCpu(workers);
    const cpuDbBefore = ctx.sut.dbCpuSeconds();
    const crashed = firstUnexpectedExit(workers);
    const outcome = await Promise.race([
      sampler.waitFor((s) => s.progress >= n, ctx.options.drainTimeoutS * 1000, ctx.signal).then((done) => (done ? 'drained' : 'timeout')),
      crashed.then((w) => `${w.name} exited (${w.exitStatus?.signal ?? `code ${w.exitStatus?.code}`}): ${lastLine(w.outputTail())}`),
    ]);
    const cpuWorkerS = cpuDelta(cpuWorkerBefore, sumCpu(workers));
    const cpuDbS = cpuDelta(cpuDbBefore, ctx.sut.dbCpuSeconds());
    // Messages consumed in the same window as the CPU readings (the backlog was published before it began).
    const consumed = outcome === 'drained' ? n : sampler.samples[sampler.samples.length - 1]?.progress;
    result.cpuWorkerS = addDefined(result.cpuWorkerS, cpuWorkerS);
    result.cpuDbS = addDefined(result.cpuDbS, cpuDbS);
    drainConsumed.set(result, (drainConsumed.get(result) ?? 0) + (consumed ?? 0));
    cpuUsPerMsg = cpuWorkerS === undefined || cpuDbS === undefined ? undefined : cpuUsPerMessage(cpuWorkerS + cpuDbS, consumed);
    result.cpuUsPerMsg.worker = cpuUsPerMessage(result.cpuWorkerS, drainConsumed.get(result));
    result.cpuUsPerMsg.db = cpuUsPerMessage(result.cpuDbS, drainConsumed.get(result));
    result.drained = result.drained !== false && outcome === 'drained';
    if (outcome === 'timeout' && ctx.signal?.aborted !== true) result.note = appendNote(result.note, `backlog not drained within ${ctx.options.drainTimeoutS} s: rate over what was consumed`);
    else if (outcome !== 'drained' && outcome !== 'timeout') result.note = appendNote(result.note, outcome);
  } finally {
    await sampler.stop();
  }
  // No lag for a drain: every message was published before the workers started, so "now minus created_at of
  // the last acked message" is the backlog's age (seconds), not how far the consumer trails the publishers.
  const rate = drainRate(sampler.samples, n).perSecond;
  if (p.mode !== 'offset') result.drainMsgsPerS = rate;
  return { msgsPerS: rate, cpuUsPerMsg };
}

interface DrainRun {
  msgsPerS: number | undefined;
  /** The workers' and the database's CPU per message over the drain. */
  cpuUsPerMsg: number | undefined;
}

/** Messages the drain rounds of a point consumed, for CPU per message over all of them. */
const drainConsumed = new WeakMap<PointResult, number>();

function addDefined(a: number | undefined, b: number | undefined): number | undefined {
  return b === undefined ? a : (a ?? 0) + b;
}

function pairedIsolation(ctx: SweepContext, p: Point): IsolationLevel {
  return p.isolation ?? defaultIsolation('offset', 'batched', ctx.sut.engine);
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.slice(0, 200) ?? '';
}

interface SqlLoopRun {
  msgsPerS: number | undefined;
  consumed: number | undefined;
  /** The loop's process, from its first transaction to its last. */
  cpuLoopS: number | undefined;
  cpuDbS: number | undefined;
}

/** The SQL ceiling's loop over a backlog of `n` already in the offset table, from acked offset 0. */
async function runSqlLoop(ctx: SweepContext, batchSize: number, isolation: IsolationLevel, n: number): Promise<SqlLoopRun> {
  // Awaited: the sampler's baseline (a count of the whole backlog on PostgreSQL) is taken before the database's
  // CPU is read and the loop starts, so neither the loop's rate nor the database's CPU includes it.
  const sampler = await startSampler(ctx.sut.db, { engine: ctx.sut.sql, mode: 'offset', topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: DRAIN_SAMPLE_MS });
  const cpuDb = ctx.sut.dbCpuSeconds();
  let loop: { consumed: number; cpuS: number } | undefined;
  let cpuDbAfter: number | undefined;
  try {
    loop = await runSqlConsumeLoopInProcess(ctx.sut.databaseUrl, {
      topic: ctx.options.topic,
      consumerGroup: ctx.options.consumerGroup,
      batchSize,
      isolation,
      untilConsumed: n,
      deadlineMs: ctx.options.drainTimeoutS * 1000,
      signal: ctx.signal,
    }, () => {
      // Before the loop's connection closes: PostgreSQL's backend for it is a process, gone (and its CPU with
      // it) once closed; read after, the ceiling's database CPU was 0.6-1.6 us/msg against the drain's 6.6-7.3.
      cpuDbAfter = ctx.sut.dbCpuSeconds();
    });
    // One last sample after the loop's final commit, so the end of the drain is seen.
    await new Promise((r) => setTimeout(r, 150));
  } finally {
    await sampler.stop();
  }
  return { msgsPerS: drainRate(sampler.samples, n).perSecond, consumed: loop?.consumed, cpuLoopS: loop?.cpuS, cpuDbS: cpuDelta(cpuDb, cpuDbAfter ?? ctx.sut.dbCpuSeconds()) };
}

async function runSqlCeiling(ctx: SweepContext, result: PointResult): Promise<void> {
  const p = result.point;
  const n = p.backlogMessages ?? ctx.options.backlogMessages;
  await publishBacklog(ctx, 'offset', n, makeCounterIds(ctx.options.counters));
  result.messagesPublished = n;
  result.resolvedIsolation = p.isolation;
  const run = await runSqlLoop(ctx, p.batchSize ?? 1000, p.isolation ?? defaultIsolation('offset', 'batched', ctx.sut.engine), n);
  // The loop's process's CPU in the worker column (it does the worker's job), read by the process itself over
  // its transactions, so a drain's worker CPU per message can be set against the loop's.
  result.cpuWorkerS = run.cpuLoopS;
  result.cpuDbS = run.cpuDbS;
  result.cpuUsPerMsg.worker = cpuUsPerMessage(result.cpuWorkerS, run.consumed);
  result.cpuUsPerMsg.db = cpuUsPerMessage(result.cpuDbS, run.consumed);
  result.drainMsgsPerS = run.msgsPerS;
}

async function runHttpCeiling(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const server = await ctx.sut.startServer({ topic: ctx.options.topic });
  children.push(server.service);
  const before = cpuReadings(ctx, server.service, []);
  const r = await measureLoad(ctx, server.baseUrl, 'noop', ctx.options.httpCeilingDurationS, result);
  const after = cpuReadings(ctx, server.service, []);
  result.cpuLoadgenS = cpuDelta(before.self, after.self);
  result.cpuServerS = cpuDelta(before.server, after.server);
  result.cpuUsPerMsg.loadgen = cpuUsPerMessage(result.cpuLoadgenS, r.requests2xx);
  result.cpuUsPerMsg.server = cpuUsPerMessage(result.cpuServerS, r.requests2xx);
  result.publishReqPerS = r.okPerSecond;
}

interface CpuReadings {
  self: number;
  server: number | undefined;
  workers: number | undefined;
  db: number | undefined;
}

function cpuReadings(ctx: SweepContext, server: ChildService, workers: readonly ChildService[]): CpuReadings {
  return { self: selfCpuSeconds(), server: server.cpuSeconds(), workers: sumCpu(workers), db: ctx.sut.dbCpuSeconds() };
}

/** Runs autocannon for `durationS` (stopped early on abort); records its result on `result`. */
async function measureLoad(ctx: SweepContext, baseUrl: string, route: 'count' | 'noop', durationS: number, result: PointResult): Promise<LoadResult> {
  const load = startLoad({
    baseUrl,
    route,
    counters: makeCounterIds(ctx.options.counters),
    connections: result.point.connections ?? DEFAULT_CONNECTIONS,
    durationS,
    overallRate: route === 'count' ? ctx.options.endToEndRate : undefined,
    timeoutS: 10,
  });
  const onAbort = () => load.stop();
  ctx.signal?.addEventListener('abort', onAbort);
  try {
    const r = await load.result;
    result.load = r;
    return r;
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The pool of the no-coalescing points. One INSERT per request is bound by the commits in flight, one per
 * connection: the server's default pool (2) suits coalescing and starves this comparison. Measured on the
 * 2-core machine, `eob bench --profile quick --only end-to-end --coalesce off`, 2 interleaved pairs: pool 16
 * 3,699 and 4,730 req/s at 187 and 147 us of server CPU per message, pool 2 2,480 and 2,657 at 232 and 214.
 */
const NO_COALESCE_POOL_SIZE = 16;

async function runEndToEnd(ctx: SweepContext, result: PointResult, children: ChildService[]): Promise<void> {
  const p = result.point;
  // The sampler reads this topic while the load fills it, and no backlog (publishBacklog's ANALYZE) comes
  // first: with `--only end-to-end` on a new server the table had no statistics, and each 250 ms reading was a
  // seq scan of the growing table on the database's cores, inside the measured window. Primed here, before the
  // server and the worker start, so nothing of the priming is in the window or in the topic.
  if (ctx.sut.engine === 'postgres' && p.mode === 'offset') await primePgTopicStatistics(ctx.sut.db, ctx.options.topic);
  const server = await ctx.sut.startServer({
    topic: ctx.options.topic,
    topicSchema: p.mode,
    ...(p.coalesce === undefined ? {} : { coalesce: p.coalesce }),
    ...(p.coalesce === false ? { poolSize: NO_COALESCE_POOL_SIZE } : {}),
  });
  children.push(server.service);
  const workers = await startWorkers(ctx, result, children, []);
  // Awaited: the baseline the window's consumption is counted from is taken before the load starts.
  const sampler = await startSampler(ctx.sut.db, { engine: ctx.sut.sql, mode: p.mode, topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup, intervalMs: 250 });
  let loadStart = 0;
  let loadEnd = 0;
  try {
    const progressBefore = (await sampler.latest()).progress;
    loadStart = performance.now();
    const before = cpuReadings(ctx, server.service, workers);
    const r = await measureLoad(ctx, server.baseUrl, 'count', ctx.options.endToEndDurationS, result);
    loadEnd = performance.now();
    const afterLoad = cpuReadings(ctx, server.service, workers);
    // The server and the load generator work while the load runs: their CPU over it, per 2xx answer (one
    // message each). The same window's 2xx count is the one their rate is computed from.
    result.cpuLoadgenS = cpuDelta(before.self, afterLoad.self);
    result.cpuServerS = cpuDelta(before.server, afterLoad.server);
    result.cpuUsPerMsg.loadgen = cpuUsPerMessage(result.cpuLoadgenS, r.requests2xx);
    result.cpuUsPerMsg.server = cpuUsPerMessage(result.cpuServerS, r.requests2xx);
    result.publishReqPerS = r.okPerSecond;
    if (r.requestsNon2xx + r.errors + r.timeouts > 0) {
      result.note = appendNote(result.note, `${r.requestsNon2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    }
    const published = await sampler.latest().then(async () => (await readPublished(ctx, p.mode)));
    const caughtUp = await sampler.waitFor((s) => s.progress >= published, ctx.options.catchUpTimeoutS * 1000, ctx.signal);
    // The workers and the database work until the backlog the load left is consumed: their CPU from the start
    // of the load to then, per message consumed in that window.
    const afterDrain = cpuReadings(ctx, server.service, workers);
    result.cpuWorkerS = cpuDelta(before.workers, afterDrain.workers);
    result.cpuDbS = cpuDelta(before.db, afterDrain.db);
    const consumed = (caughtUp ? published : (sampler.samples[sampler.samples.length - 1]?.progress ?? progressBefore)) - progressBefore;
    result.cpuUsPerMsg.worker = cpuUsPerMessage(result.cpuWorkerS, consumed);
    result.cpuUsPerMsg.db = cpuUsPerMessage(result.cpuDbS, consumed);
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

/** What the workers must reach, on the same scale as the sampler's progress (see readDrainPosition). */
async function readPublished(ctx: SweepContext, mode: TopicMode): Promise<number> {
  const p = await readDrainPosition(ctx.sut.db, ctx.sut.sql, { mode, topic: ctx.options.topic, consumerGroup: ctx.options.consumerGroup });
  return p.published;
}

/**
 * After the point (workers stopped): every counter must equal the number of its consumed messages. Offset
 * mode: messages up to the acked offset; queue mode: rows acked. Also records acked vs max offset.
 */
async function checkPoint(ctx: SweepContext, result: PointResult): Promise<void> {
  const db = ctx.sut.db;
  const topic = ctx.options.topic;
  const mode = result.point.kind === 'sql-ceiling' ? 'offset' : result.point.mode;
  const engine = ctx.sut.sql;
  const consumption = await engine.selectConsumption(db, { mode, topic, consumerGroup: ctx.options.consumerGroup });
  if (consumption.ackedOffset !== undefined) result.ackedOffset = consumption.ackedOffset;
  result.maxOffset = consumption.maxOffset;
  result.messagesPublished = consumption.published;
  if (result.point.kind === 'drain') {
    // `drained` is about the measuring window (runDrain); the check sees the state after the workers stopped,
    // which includes what they consumed while stopping (seen: queue drains at batch 1000-5000, 400k messages at
    // ~55k msgs/s, past the 6 s window, consumed the rest in the ~1 s before they stopped).
    if (result.drained === false && consumption.drained) result.note = appendNote(result.note, 'consumed to the end only after the window, while the workers stopped');
  } else {
    result.drained = consumption.drained;
  }
  const expected = consumption.consumedPerCounter;
  const actual = await engine.selectAllCounters(db);
  // A drain's rounds are checked one by one: a wrong round stays the point's verdict.
  const earlier = result.check;
  result.check = earlier?.verdict === 'invalid' ? earlier : checkCounters(expected, actual);
  result.poisoned = await countPoisonedMessages(db, engine, topic);
  result.messagesConsumed = result.check.expectedTotal;
  if (result.check.verdict === 'invalid') {
    result.note = appendNote(result.note, `counters wrong: ${result.check.wrongCounters.slice(0, 3).join(', ')}`);
  }
}
