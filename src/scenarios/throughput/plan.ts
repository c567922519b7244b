// The bench's plan: which points a run measures, in what order (ceilings and the baseline first), on each of
// its engines; a short label for each; and the estimate of each point's seconds the progress bar's time left
// is made of.
import type { EngineName } from '../../system/sql/engine.ts';
import type { IsolationLevel, AckMode } from '../../system/pubsub/types.ts';
import { defaultIsolation } from '../../system/worker.ts';
import type { TopicMode } from '../../system/pubsub/types.ts';
import { DEFAULT_CONNECTIONS, DEFAULT_POLL_INTERVAL_MS, type PointKind, type SweepOptions, drainBacklog } from './sweepOptions.ts';
import type { HandlerName } from '../../system/counterHandler.ts';
import { DEFAULT_BATCH_SIZE } from '../../system/pubsub/consumeLoop.ts';
import { peerSpecLabel, type PeerSpec } from '../../bench/peers/peerSpec.ts';

/** One configuration point of the sweep. */
export interface Point {
  kind: PointKind;
  mode: TopicMode;
  workers: number;
  handler: HandlerName | 'raw-sql' | 'none';
  batchSize: number | undefined;
  pollIntervalMs: number | undefined;
  isolation: IsolationLevel | undefined;
  ackMode: AckMode | undefined;
  coalesce: boolean | undefined;
  /** Load-generator connections (HTTP ceiling and end-to-end points). */
  connections: number | undefined;
  backlogMessages: number | undefined;
  repetition: number;
  baseline: boolean;
  /** Peer points: the peer job queue and its task (bench/peers/). */
  peer?: PeerSpec;
}

/**
 * Queue-mode drains get at most this backlog. The offset mode's 400k (standard) at queue mode's rates (x2
 * workers: 54,386 msgs/s at batch 1000, 90,706 at 5000 in the standard run of 2026-11-27) ran past the 6 s
 * window: 8 of 15 queue drains of a standard run were cut there. 150k takes under 3 s at those rates, leaving
 * room for one worker at half of them.
 */
export const QUEUE_DRAIN_BACKLOG_MAX = 150_000;

/** Expands the grid into points, in the order they run: ceilings, baseline, drain, end to end. */
export function planPoints(o: SweepOptions, engine: EngineName = 'mariadb'): Point[] {
  const g = o.grid;
  const points: Point[] = [];
  const none = { pollIntervalMs: undefined, ackMode: undefined, coalesce: undefined, connections: undefined, baseline: false };
  const seen = new Set<string>();
  const add = (p: Point) => {
    const key = JSON.stringify({ ...p, baseline: false });
    if (seen.has(key)) return;
    seen.add(key);
    points.push(p);
  };
  for (let repetition = 1; repetition <= g.repetitions; repetition += 1) {
    if (o.include.httpCeiling) {
      for (const connections of o.endToEndConnections) {
        add({ ...none, kind: 'http-ceiling', mode: 'offset', workers: 0, handler: 'none', batchSize: undefined, isolation: undefined, coalesce: undefined, connections, backlogMessages: undefined, repetition });
      }
    }
    if (o.include.sqlCeiling) {
      for (const batchSize of g.batchSizes) {
        add({ ...none, kind: 'sql-ceiling', mode: 'offset', workers: 0, handler: 'raw-sql', batchSize, isolation: defaultIsolation('offset', 'batched', engine), backlogMessages: drainBacklog(o.backlogMessages, batchSize), repetition });
      }
    }
    if (o.include.baseline) {
      for (const batchSize of o.baselineBatchSizes) {
        add({ kind: 'drain', mode: 'offset', workers: 1, handler: 'watermill', batchSize, pollIntervalMs: g.pollIntervals[0], isolation: defaultIsolation('offset', 'watermill', engine), ackMode: 'transactional', coalesce: undefined, connections: undefined, backlogMessages: o.baselineBacklogMessages, repetition, baseline: true });
      }
    }
    // The peers (PostgreSQL only: they are PostgreSQL job queues) are compared with our offset drains at the
    // worker's default batch, so they run right after those: on this shared machine a reference measured
    // minutes earlier saw another machine (a standard run here: our batch-1000 drain at 8,300-10,670 msgs/s
    // under a load average of 18, the peers ten minutes later at 13). A peer has no topic mode of ours (its
    // row's mode is empty); 'queue' only fills the field.
    let peersAdded = false;
    const addPeers = () => {
      if (peersAdded || !o.include.peers || engine !== 'postgres') return;
      peersAdded = true;
      for (const peer of o.peers) {
        add({ ...none, kind: 'peer', mode: 'queue', workers: 1, handler: 'none', batchSize: undefined, isolation: undefined, backlogMessages: drainBacklog(o.backlogMessages, DEFAULT_BATCH_SIZE), repetition, peer });
      }
    };
    if (o.include.drain) {
      // A drain never polls an empty topic until its backlog is done, so the poll interval is not varied here
      // (end-to-end points vary it: there it sets the lag of an idle worker).
      for (const mode of g.modes)
        for (const batchSize of g.batchSizes) {
          // The watermill handler is the reference *offset* consumer; its read-then-write handler under queue
          // mode's parallel READ COMMITTED consumers would be a different (and lossy) design.
          for (const handler of mode === 'offset' ? g.handlers : g.handlers.filter((h) => h === 'batched'))
            for (const ackMode of g.ackModes)
              for (const isolation of mode === 'offset' ? g.isolations : g.queueIsolations)
                for (const workers of mode === 'offset' ? [1] : g.queueWorkers) {
                  // The watermill handler drains ~5,000 msgs/s at best: its backlog is the baseline's, but at
                  // least 20 batches, or a large batch would be one transaction and no rate.
                  const backlog =
                    handler === 'watermill'
                      ? Math.min(o.backlogMessages, Math.max(o.baselineBacklogMessages, batchSize * 20))
                      : mode === 'queue'
                        ? Math.min(drainBacklog(o.backlogMessages, batchSize), QUEUE_DRAIN_BACKLOG_MAX)
                        : drainBacklog(o.backlogMessages, batchSize);
                  add({ kind: 'drain', mode, workers, handler, batchSize, pollIntervalMs: g.pollIntervals[0], isolation, ackMode, coalesce: undefined, connections: undefined, backlogMessages: backlog, repetition, baseline: false });
                }
          if (mode === 'offset' && batchSize === DEFAULT_BATCH_SIZE) addPeers();
        }
    }
    // Without an offset drain at the default batch (--only peer, other batch sizes) they run after the drains.
    addPeers();
    if (o.include.endToEnd) {
      for (const connections of o.endToEndConnections)
        for (const mode of g.modes)
          for (const coalesce of g.coalesce)
            for (const pollIntervalMs of g.pollIntervals) {
              // End to end runs at the worker's default isolation (named, so the label says it).
              add({ kind: 'end-to-end', mode, workers: 1, handler: 'batched', batchSize: o.endToEndBatchSize, pollIntervalMs, isolation: mode === 'offset' ? defaultIsolation('offset', 'batched', engine) : g.queueIsolations[0], ackMode: 'transactional', coalesce, connections, backlogMessages: undefined, repetition, baseline: false });
            }
    }
  }
  return points;
}

/** A run's plan over its engines, one after the other (runBench): each engine's points, and every step's estimate. */
export interface RunPlan {
  engines: { engine: EngineName; points: Point[] }[];
  /** By step over the whole run: the point's estimated seconds on its own engine (estimatePointSeconds), for the progress bar's time left. */
  estimatesS: number[];
}

export function planRun(o: SweepOptions, engines: readonly EngineName[]): RunPlan {
  const plans = engines.map((engine) => ({ engine, points: planPoints(o, engine) }));
  return { engines: plans, estimatesS: plans.flatMap((p) => p.points.map((point) => estimatePointSeconds(point, o, p.engine))) };
}

/** A short name for terminal lines and chart labels. */
export function pointLabel(p: Point): string {
  const parts: string[] = [p.kind];
  // Labels name a point uniquely (medians group by them); the default connections are left unsaid.
  const connections = p.connections !== undefined && p.connections !== DEFAULT_CONNECTIONS ? `${p.connections} connections` : undefined;
  // No comma in a label: readers that split the CSV on commas would cut it.
  if (p.kind === 'http-ceiling') return connections === undefined ? 'http-ceiling (POST /noop)' : `http-ceiling (POST /noop) ${connections}`;
  if (p.kind === 'sql-ceiling') return `sql-ceiling batch ${p.batchSize}`;
  if (p.kind === 'peer') return `peer ${p.peer === undefined ? 'unknown' : peerSpecLabel(p.peer)}`;
  parts.push(p.mode === 'queue' ? `queue x${p.workers}` : 'offset');
  if (p.handler !== 'batched') parts.push(p.handler);
  parts.push(`batch ${p.batchSize}`);
  if (p.isolation !== undefined) parts.push(p.isolation);
  if (p.ackMode !== undefined && p.ackMode !== 'transactional') parts.push(p.ackMode);
  if (p.kind === 'end-to-end') parts.push(p.coalesce === true ? 'coalesce' : 'no-coalesce');
  if (connections !== undefined) parts.push(connections);
  // The default poll interval is left unsaid too.
  if (p.pollIntervalMs !== undefined && p.pollIntervalMs !== DEFAULT_POLL_INTERVAL_MS) parts.push(`poll ${p.pollIntervalMs} ms`);
  return parts.join(' ');
}

/**
 * Drain rates by batch size (msgs/s, offset mode, batched handler) the time-left estimate assumes, from the
 * standard run of 2026-11-27 on the 2-core development machine: batch 1 1,136, 10 9,493, 100 64,838, 1000
 * 134,918, 5000 360,464. Queue mode drained ~0.4x of that; the watermill handler ~1,000 (batch 1) to ~3,000.
 */
const DRAIN_RATE_GUESS: readonly [number, number][] = [[1, 1_100], [10, 9_500], [100, 65_000], [1000, 135_000], [5000, 360_000]];

function drainRateGuess(p: Point): number {
  const batch = p.batchSize ?? 1000;
  if (p.handler === 'watermill') return batch <= 1 ? 1_000 : 3_000;
  let rate = DRAIN_RATE_GUESS[0]![1];
  for (const [b, r] of DRAIN_RATE_GUESS) if (batch >= b) rate = r;
  return p.mode === 'queue' ? rate * 0.4 : rate;
}

/**
 * Seconds of the ANALYZE PostgreSQL runs on an offset-mode backlog once it is written (publishBacklog), so that
 * the sampler's readings are planned on statistics: 0.1-0.3 s each, measured here at the bench's backlogs.
 * (The end-to-end points' priming of the statistics, ~26 ms, is left in their fixed cost.)
 */
export const PG_BACKLOG_ANALYZE_S = 0.2;

/**
 * Rows a second publishBacklog writes, by engine. Not timed as the bench writes them on PostgreSQL: both are
 * the rates measured here with 100-row INSERTs on 8 connections, MariaDB ~124,000 (publishBacklog's
 * 1000-row statements on fewer connections did as well), PostgreSQL 79,700 with the pg driver at a load
 * average of 7-9 (the driver comparison in the PostgreSQL pool's module). runDrain's note of ~1 s to empty
 * a PostgreSQL topic and write 20,000 rows again says a write there can take longer.
 */
export const BACKLOG_WRITE_ROWS_PER_S: Readonly<Record<EngineName, number>> = { mariadb: 120_000, postgres: 80_000 };

/**
 * Seconds a run of the SQL ceiling's loop costs besides consuming its backlog: its process's start, timed
 * here from the fork to its first message (a refused URL, so nothing else in it) at a load average of 3-4:
 * 1.09, 1.09 and 2.29 s; and the 150 ms runSqlLoop waits for a last sample.
 */
export const SQL_LOOP_START_S = 1.25;

/**
 * The loop's rate over the drain's at the same batch size: offset drains ran at 0.88-0.93 of the SQL ceiling
 * of the same run at batch 100-5000 in the quiet standard run of 2026-11-27 (MariaDB).
 */
const SQL_LOOP_OVER_DRAIN = 1.1;

/**
 * Rounds of [the SQL ceiling's loop, the workers] an offset drain runs on its backlog (runDrain): the sweep's
 * drainRounds, but one for the watermill handler's baseline, which drains ~100x slower and whose ratio to the
 * SQL ceiling is not a goal.
 */
export function drainRoundsOf(p: Point, o: Pick<SweepOptions, 'drainRounds'>): number {
  if (p.kind !== 'drain' || p.mode !== 'offset') return 0;
  return p.handler === 'watermill' ? 1 : o.drainRounds;
}

/**
 * Backlogs a point writes (publishBacklog) on `engine`. The SQL ceiling's one and a queue drain's one. An
 * offset drain's one on MariaDB, consumed by each round's ceiling loop and workers in turn (resetConsumption in
 * between). On PostgreSQL, where no statement undoes a consumption, one for each of those runs.
 */
export function backlogWrites(p: Point, engine: EngineName, o: Pick<SweepOptions, 'drainRounds'>): number {
  if (p.kind === 'sql-ceiling') return 1;
  if (p.kind !== 'drain') return 0;
  if (p.mode === 'queue') return 1;
  return engine === 'postgres' ? 2 * drainRoundsOf(p, o) : 1;
}

/** Runs of the SQL ceiling's loop in a point: the SQL ceiling's one; an offset drain's one per round. */
export function sqlLoopRuns(p: Point, o: Pick<SweepOptions, 'drainRounds'>): number {
  if (p.kind === 'sql-ceiling') return 1;
  return drainRoundsOf(p, o);
}

/**
 * The plan's estimate of a point's seconds on `engine`, for the time left on the progress bar: its fixed
 * costs, each backlog it writes (with PostgreSQL's ANALYZE of an offset-mode one), each run of the SQL
 * ceiling's loop, and its workers' drain or its load. Fixed costs measured in a quick run here: a child starts
 * in ~1 s (server and worker ~2 s together), the check and the stop take ~0.5 s.
 */
export function estimatePointSeconds(p: Point, o: SweepOptions, engine: EngineName = 'mariadb'): number {
  const backlog = p.backlogMessages ?? 0;
  const drainS = (rate: number) => Math.min(o.drainTimeoutS, backlog / rate);
  // publishBacklog analyzes every backlog on PostgreSQL but a queue drain's.
  const analyzeS = engine === 'postgres' && p.mode === 'offset' ? PG_BACKLOG_ANALYZE_S : 0;
  const writesS = backlogWrites(p, engine, o) * (backlog / BACKLOG_WRITE_ROWS_PER_S[engine] + analyzeS);
  const loopsS = sqlLoopRuns(p, o) * (SQL_LOOP_START_S + drainS(drainRateGuess({ ...p, handler: 'batched' }) * SQL_LOOP_OVER_DRAIN));
  switch (p.kind) {
    case 'http-ceiling':
      return 1.5 + o.httpCeilingDurationS;
    case 'sql-ceiling':
      return 0.5 + writesS + loopsS;
    case 'drain':
      return Math.max(1, drainRoundsOf(p, o)) * (1.5 + p.workers * 0.3 + drainS(drainRateGuess(p))) + writesS + loopsS;
    case 'peer':
      // The peer's process starts in ~1 s, its migrations check and the stop and check take ~2 s more;
      // pg-boss's deleteQueue of a 150,000-job backlog took 1.2-1.5 s.
      return 3 + backlog / PEER_ENQUEUE_JOBS_PER_S + Math.min(o.peerWindowS, backlog / peerRateGuess(p)) + (p.peer?.peer === 'pg-boss' ? 1.5 : 0);
    case 'end-to-end':
      return 3 + o.endToEndDurationS;
  }
}

/**
 * Jobs a second the peers' bulk APIs enqueue, three calls at a time: 150,000 jobs took graphile-worker's
 * addJobs 4.4-6.3 s and pg-boss's insert 6.4 s here at a load average of 6-10.
 */
export const PEER_ENQUEUE_JOBS_PER_S = 25_000;

/**
 * The peers' rates the time-left estimate assumes (jobs/s), measured here with 50,000 jobs at a load average of
 * 7-14: graphile-worker 8,863 with the no-op task and 1,284 with the counter task, pg-boss 10,000-12,600 with
 * either.
 */
function peerRateGuess(p: Point): number {
  if (p.peer?.peer === 'graphile-worker') return p.peer.task === 'noop' ? 9_000 : 1_500;
  return 11_000;
}
