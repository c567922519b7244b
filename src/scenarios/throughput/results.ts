// The bench's results: the references the ratio columns are computed against, the CSV columns, and one row
// per point.
import { ratio } from '../../bench/metrics.ts';
import type { CsvRow } from '../../bench/csv.ts';
import { PUBLISHED_BASELINE_MSGS_PER_S, type SweepOptions } from './sweepOptions.ts';
import { pointLabel, type Point } from './plan.ts';
import { type PointResult } from './points.ts';
import { DEFAULT_BATCH_SIZE } from '../../system/pubsub/consumeLoop.ts';

/** Run-wide references the ratio columns are computed against. */
export interface References {
  /**
   * The best HTTP ceiling of the run, whatever its connection count: the tightest upper bound measured. (At a
   * count where the load generator itself slows the ceiling down, a ratio to that count's ceiling alone would
   * flatter the end-to-end points measured there.)
   */
  httpCeilingReqPerS: number | undefined;
  /**
   * The least server CPU one HTTP answer cost (POST /noop, us per request) among the run's ceilings at each
   * connection count. What node:http and the kernel charge per request moves with the load pattern (one run:
   * 19.9 us at 50 autocannon connections, 28.4 at 200) and with the machine's speed (12.6-34 us between days on
   * the same machine), and so does everything else a message costs; CPU per message divided by it is the
   * figure that travels between runs and machines, as the rate ratios do.
   */
  httpAnswerCpuUsByConnections: Map<number, number>;
  sqlCeilingByBatch: Map<number, number>;
  watermillProfileMsgsPerS: number | undefined;
  /** The drain each peer is compared with (defaultDrain). */
  drainForPeers: DrainReference | undefined;
}

/** One of our drains as the reference of the peer rows: its label, rate and CPU per message (worker + database). */
export interface DrainReference {
  point: string;
  msgsPerS: number;
  cpuUsPerMsg: number | undefined;
}

/**
 * The drain the peers are compared with: the fastest valid exactly-once offset drain of the run with the
 * batched handler at the worker's default batch size (1000), what a user of the worker gets without tuning it,
 * at whichever isolation level went fastest. The peers run with their own documentation's throughput settings,
 * and the batch size of pg-boss's fetch is the same 1000.
 */
export function defaultDrain(results: readonly PointResult[]): DrainReference | undefined {
  let best: PointResult | undefined;
  for (const r of results) {
    const p = r.point;
    if (p.kind !== 'drain' || p.mode !== 'offset' || p.handler !== 'batched' || p.ackMode !== 'transactional' || p.batchSize !== DEFAULT_BATCH_SIZE) continue;
    if (r.check?.verdict !== 'valid' || r.drainMsgsPerS === undefined || r.interrupted) continue;
    if (best === undefined || r.drainMsgsPerS > (best.drainMsgsPerS ?? 0)) best = r;
  }
  if (best === undefined || best.drainMsgsPerS === undefined) return undefined;
  const { worker, db } = best.cpuUsPerMsg;
  return { point: pointLabel(best.point), msgsPerS: best.drainMsgsPerS, cpuUsPerMsg: worker === undefined || db === undefined ? undefined : worker + db };
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
  const httpAnswerCpuUsByConnections = new Map<number, number>();
  for (const r of results) {
    const us = r.cpuUsPerMsg.server;
    if (r.point.kind !== 'http-ceiling' || us === undefined || r.point.connections === undefined) continue;
    httpAnswerCpuUsByConnections.set(r.point.connections, Math.min(httpAnswerCpuUsByConnections.get(r.point.connections) ?? Infinity, us));
  }
  return {
    httpAnswerCpuUsByConnections,
    httpCeilingReqPerS: best(results.filter((r) => r.point.kind === 'http-ceiling').map((r) => r.publishReqPerS)),
    sqlCeilingByBatch,
    watermillProfileMsgsPerS: best(
      results.filter((r) => r.point.kind === 'drain' && r.point.handler === 'watermill' && r.check?.verdict === 'valid').map((r) => r.drainMsgsPerS),
    ),
    drainForPeers: defaultDrain(results),
  };
}

export const CSV_COLUMNS = [
  'point', 'kind', 'repetition', 'mode', 'workers', 'handler_profile', 'batch_size', 'poll_interval_ms', 'isolation',
  'gap_handling', 'ack_mode', 'coalesce', 'connections', 'offered_rate_req_per_s', 'duration_s', 'backlog_messages', 'counters',
  'drain_msgs_per_s', 'publish_req_per_s', 'requests_2xx', 'requests_non2xx', 'request_errors', 'request_timeouts',
  'latency_p50_ms', 'latency_p99_ms', 'lag_p50_ms', 'lag_p99_ms',
  'cpu_loadgen_s', 'cpu_server_s', 'cpu_worker_s', 'cpu_db_s',
  'cpu_loadgen_us_per_msg', 'cpu_server_us_per_msg', 'cpu_worker_us_per_msg', 'cpu_db_us_per_msg', 'cpu_system_us_per_msg',
  'cpu_vs_http_answer',
  'messages_published', 'messages_consumed', 'counter_total', 'acked_offset', 'max_offset', 'drained', 'verdict', 'lost', 'duplicated', 'poisoned',
  'gaps_passed', 'gaps_passed_by_timeout',
  'paired_sql_ceiling_msgs_per_s', 'ratio_vs_baseline', 'ratio_vs_watermill_profile', 'ratio_vs_http_ceiling', 'ratio_vs_sql_ceiling',
  'drain_rounds', 'ratio_vs_sql_ceiling_min', 'ratio_vs_sql_ceiling_max', 'cpu_vs_sql_ceiling',
  'ratio_drain_vs_peer', 'ratio_peer_cpu_vs_drain', 'reference_drain_point', 'reference_drain_msgs_per_s',
  'peer', 'peer_version', 'peer_task', 'peer_settings', 'guarantee',
  'engine', 'topology', 'server_version', 'db_flush_log_at_trx_commit', 'point_duration_s', 'note',
] as const;

/** The database a row was measured on: its engine and version (both engines), MariaDB's flush setting. */
export interface DbColumns {
  engine: string;
  /** single, or galera (a private MariaDB Galera cluster: the points' processes on node 1, the nodes' CPU summed). */
  topology?: string;
  server_version: string;
  db_flush_log_at_trx_commit: number | undefined;
}

/**
 * Whether the SQL ceiling bounds a point: it runs the offset mode's consume statements on one connection, the
 * most an offset consumer group can use (one row lock orders its transactions), so it bounds offset-mode
 * drains and end-to-end points (whose handler profile only adds work). A queue-mode point runs other
 * statements (claim with SKIP LOCKED, per-row ack) on several connections at once: no ratio against it.
 */
export function boundedBySqlCeiling(p: Point): boolean {
  return (p.kind === 'drain' || p.kind === 'end-to-end') && p.mode === 'offset';
}

/**
 * What the system under test spends per message end to end: server, worker and database together (the load
 * generator is the harness's). Undefined unless all three were read.
 */
function systemCpuUsPerMsg(r: PointResult): number | undefined {
  const { server, worker, db } = r.cpuUsPerMsg;
  return r.point.kind !== 'end-to-end' || server === undefined || worker === undefined || db === undefined ? undefined : server + worker + db;
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** The check's verdict as the row states it: a peer's no-op task has no effect to count (n/a while the counters stay 0). */
function verdictOf(r: PointResult): string {
  const p = r.point;
  if (r.interrupted) return 'interrupted';
  if (p.kind === 'http-ceiling') return 'n/a';
  if (p.kind === 'peer' && p.peer?.task === 'noop') return r.peer?.counterTotal === undefined ? 'unknown' : r.peer.counterTotal === 0 ? 'n/a' : 'invalid';
  return r.check?.verdict ?? 'unknown';
}

/** CPU microseconds per message of the worker and the database together, when both were read. */
function workerAndDbUs(r: PointResult): number | undefined {
  const { worker, db } = r.cpuUsPerMsg;
  return worker === undefined || db === undefined ? undefined : worker + db;
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** One CSV row of a point result, with its ratios against the run's references. */
export function toRow(r: PointResult, refs: References, o: SweepOptions, db: DbColumns): CsvRow {
  const p = r.point;
  const peer = p.kind === 'peer' ? r.peer : undefined;
  const reference = p.kind === 'peer' ? refs.drainForPeers : undefined;
  const isLoad = p.kind === 'end-to-end' || p.kind === 'http-ceiling';
  const rate = r.drainMsgsPerS;
  const systemUs = systemCpuUsPerMsg(r);
  const ceilingSql = p.batchSize === undefined || !boundedBySqlCeiling(p) ? undefined : maxDefined(refs.sqlCeilingByBatch.get(p.batchSize), r.pairedSqlCeilingMsgsPerS);
  // An offset drain with paired rounds: the median of its rounds' ratios (each drain over the ceiling measured
  // seconds before it on the same backlog), not the median drain over the best ceiling of the run.
  const rounds = r.drainRatios !== undefined && r.drainRatios.length > 0 ? r.drainRatios : undefined;
  const ratioVsSql = p.kind === 'sql-ceiling' ? undefined : rounds !== undefined ? medianOf(rounds) : ratio(rate, ceilingSql);
  return {
    point: pointLabel(p),
    kind: p.kind,
    repetition: p.repetition,
    mode: p.kind === 'http-ceiling' || p.kind === 'peer' ? undefined : p.mode,
    workers: p.kind === 'drain' || p.kind === 'end-to-end' ? p.workers : undefined,
    handler_profile: p.handler,
    batch_size: p.batchSize,
    poll_interval_ms: p.pollIntervalMs,
    isolation: r.resolvedIsolation,
    gap_handling: r.gapHandling,
    ack_mode: p.ackMode,
    coalesce: p.coalesce,
    connections: p.connections,
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
    cpu_loadgen_us_per_msg: r.cpuUsPerMsg.loadgen,
    cpu_server_us_per_msg: r.cpuUsPerMsg.server,
    cpu_worker_us_per_msg: r.cpuUsPerMsg.worker,
    cpu_db_us_per_msg: r.cpuUsPerMsg.db,
    cpu_system_us_per_msg: systemUs,
    cpu_vs_http_answer: systemUs === undefined || p.connections === undefined ? undefined : ratio(systemUs, refs.httpAnswerCpuUsByConnections.get(p.connections)),
    messages_published: r.messagesPublished,
    messages_consumed: r.messagesConsumed,
    // The sum of the counters after the point: the messages (or a peer's completed jobs) a check found applied.
    counter_total: r.check?.countedTotal ?? r.peer?.counterTotal,
    acked_offset: r.ackedOffset,
    max_offset: r.maxOffset,
    drained: r.drained,
    verdict: verdictOf(r),
    lost: r.check?.lost,
    duplicated: r.check?.duplicated,
    poisoned: r.poisoned,
    gaps_passed: r.gapsPassed,
    gaps_passed_by_timeout: r.gapsPassedByTimeout,
    ratio_vs_baseline: p.kind === 'peer' ? undefined : ratio(rate, PUBLISHED_BASELINE_MSGS_PER_S),
    ratio_vs_watermill_profile: p.kind === 'peer' ? undefined : ratio(rate, refs.watermillProfileMsgsPerS),
    ratio_vs_http_ceiling: isLoad ? ratio(r.publishReqPerS, refs.httpCeilingReqPerS) : undefined,
    paired_sql_ceiling_msgs_per_s: r.pairedSqlCeilingMsgsPerS,
    ratio_vs_sql_ceiling: ratioVsSql,
    drain_rounds: rounds?.length,
    cpu_vs_sql_ceiling: r.drainCpuRatios !== undefined && r.drainCpuRatios.length > 0 ? medianOf(r.drainCpuRatios) : undefined,
    ratio_vs_sql_ceiling_min: rounds === undefined ? undefined : Math.min(...rounds),
    ratio_vs_sql_ceiling_max: rounds === undefined ? undefined : Math.max(...rounds),
    // Our drain over the peer: how many times the peer's rate ours is, and the peer's CPU per job (worker and
    // database) over ours per message.
    ratio_drain_vs_peer: ratio(reference?.msgsPerS, rate),
    ratio_peer_cpu_vs_drain: ratio(workerAndDbUs(r), reference?.cpuUsPerMsg),
    reference_drain_point: reference?.point,
    reference_drain_msgs_per_s: reference?.msgsPerS,
    peer: p.peer?.peer,
    peer_version: peer?.version,
    peer_task: peer?.task,
    peer_settings: peer?.settings,
    guarantee: peer?.guarantee,
    engine: db.engine,
    topology: db.topology ?? 'single',
    server_version: db.server_version,
    db_flush_log_at_trx_commit: db.db_flush_log_at_trx_commit,
    point_duration_s: r.durationS,
    note: r.note === '' ? undefined : r.note,
  };
}
