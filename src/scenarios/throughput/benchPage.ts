// The page of a bench run (index.html beside results.csv): the outcome, the headline figures as same-run
// ratios, every point's row, the two charts (the peers table beside the drain chart), the configuration and the
// machine.
import type { CsvRow } from '../../bench/csv.ts';
import { bestRow, peerTableRows } from '../../bench/report.ts';
import { machineFacts, tableFromRows, type HtmlReport, type ReportTable } from '../../bench/htmlReport.ts';
import type { SweepOptions } from './sweepOptions.ts';

/** Columns of the page's table; a column empty in every row is left out (e.g. CPU per message before it existed). */
const COLUMNS: [string, string][] = [
  ['point', 'point'],
  ['drain_msgs_per_s', 'drain msgs/s'],
  ['publish_req_per_s', 'published req/s'],
  ['latency_p99_ms', 'latency p99 ms'],
  ['lag_p99_ms', 'lag p99 ms'],
  ['cpu_server_us_per_msg', 'server µs/msg'],
  ['cpu_worker_us_per_msg', 'worker µs/msg'],
  ['cpu_db_us_per_msg', 'db µs/msg'],
  ['cpu_system_us_per_msg', 'server+worker+db µs/msg'],
  ['cpu_vs_http_answer', '× an HTTP answer (CPU)'],
  ['cpu_loadgen_us_per_msg', 'loadgen µs/msg'],
  ['drained', 'drained'],
  ['verdict', 'verdict'],
  ['lost', 'lost'],
  ['duplicated', 'dup'],
  ['ratio_vs_baseline', '× 154 msg/s'],
  ['ratio_vs_watermill_profile', '× watermill'],
  ['ratio_vs_sql_ceiling', '/ SQL ceiling'],
  ['ratio_vs_http_ceiling', '/ HTTP ceiling'],
  ['ratio_drain_vs_peer', 'our drain ÷ peer'],
  ['peer_version', 'peer version'],
  ['note', 'note'],
];

/**
 * The peers beside our drain (PostgreSQL runs with peer points), ratios first: our drain's rate over the peer's,
 * the peer's CPU per job over ours per message; then rates, CPU, what the check found, the guarantee, the
 * version and settings. The first row is the drain the peers are compared with.
 */
export function peersReportTable(rows: readonly CsvRow[]): ReportTable | undefined {
  const table = peerTableRows(rows);
  if (table.length === 0) return undefined;
  const fixed = (v: number | undefined, digits: number) => (v === undefined ? '-' : v.toFixed(digits));
  const whole = (v: number | undefined) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
  return {
    caption: 'Peers, same run: our drain against graphile-worker and pg-boss on the same PostgreSQL, backlog and counters',
    columns: ['', 'our drain ÷ peer (rate)', 'peer ÷ ours (CPU per job)', 'jobs or msgs/s', 'worker µs/job', 'db µs/job', 'check', 'guarantee', 'version', 'settings'],
    rows: table.map((t, i) => ({
      cells: [t.what, fixed(t.ratioDrainVsPeer, 2), fixed(t.ratioCpuVsDrain, 2), whole(t.perSecond), fixed(t.workerUs, 1), fixed(t.dbUs, 1), t.check, t.guarantee, t.version, t.settings],
      status: i === 0 && t.what.startsWith('ours') ? 'good' : t.check.startsWith('lost') ? 'bad' : 'neutral',
    })),
  };
}

const fmt = (v: CsvRow[string], digits = 0) => (typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');

export interface BenchPageInput {
  rows: readonly CsvRow[];
  /** Rows are medians over repetitions (every run is in results.csv). */
  medians: boolean;
  sweep: SweepOptions;
  startedAt: Date;
  finishedAt: Date;
  interrupted: boolean;
  database: { db_version: string; db_flush_log_at_trx_commit: number | undefined };
  /** The systems side by side (engines, or one server against a cluster), measured in the same run; undefined with one. */
  comparison?: string[][] | undefined;
  gitCommit: string | undefined;
  /** Files written into the run folder. */
  files: readonly string[];
}

export function benchPage(i: BenchPageInput): HtmlReport {
  // A control (ack mode other than transactional) is meant to be invalid; an exactly-once point is not.
  const failed = i.rows.filter((r) => r.verdict === 'invalid' && r.ack_mode === 'transactional');
  // A peer that lost or doubled a job is a finding about the peer, reported beside it, not one of our controls.
  const controls = i.rows.filter((r) => r.verdict === 'invalid' && r.ack_mode !== 'transactional' && r.kind !== 'peer');
  const peerFindings = i.rows.filter((r) => r.verdict === 'invalid' && r.kind === 'peer');
  const undrained = i.rows.filter((r) => r.kind === 'drain' && r.drained === false);
  const checked = i.rows.filter((r) => r.verdict === 'valid' || r.verdict === 'invalid').length;
  const unchecked = i.rows.filter((r) => r.verdict !== 'valid' && r.verdict !== 'invalid' && r.verdict !== 'n/a');
  const outcome = i.interrupted
    ? { ok: false, text: `INTERRUPTED: ${i.rows.length} point(s) measured before the stop; the figures below are partial` }
    : failed.length > 0
      ? { ok: false, text: `NOT VALID: ${failed.length} exactly-once point(s) lost or duplicated messages` }
      : unchecked.length > 0
        ? { ok: false, text: `${checked} checked point(s) as expected, but ${unchecked.length} could not be checked (verdict ${[...new Set(unchecked.map((r) => String(r.verdict)))].join(', ')})` }
        : { ok: true, text: `All ${checked} checked point(s) as expected: every exactly-once point valid (nothing lost, nothing duplicated)` };
  const verdicts: HtmlReport['verdicts'] = [];
  const drain = bestRow(i.rows, 'drain', 'drain_msgs_per_s');
  if (drain !== undefined) {
    verdicts.push({
      ok: true,
      text: `best drain: ${drain.point}: ${fmt(drain.drain_msgs_per_s)} msgs/s = ${fmt(drain.ratio_vs_sql_ceiling, 2)} of the SQL ceiling at the same batch size, ` +
        `${fmt(drain.ratio_vs_watermill_profile, 1)}× the watermill handler and ${fmt(drain.ratio_vs_baseline)}× the published 154 msg/s (same run)`,
    });
  }
  const e2e = bestRow(i.rows, 'end-to-end', 'publish_req_per_s');
  if (e2e !== undefined) {
    verdicts.push({
      ok: true,
      text: `best end to end: ${e2e.point}: ${fmt(e2e.publish_req_per_s)} req/s published and ${fmt(e2e.drain_msgs_per_s)} msgs/s drained = ` +
        `${fmt(e2e.ratio_vs_http_ceiling, 2)} of the HTTP ceiling (same run); latency p99 ${fmt(e2e.latency_p99_ms)} ms, lag p99 ${fmt(e2e.lag_p99_ms)} ms`,
    });
  }
  for (const r of i.rows.filter((x) => x.kind === 'peer')) {
    const rate = fmt(r.drain_msgs_per_s);
    verdicts.push({
      ok: true,
      text: typeof r.ratio_drain_vs_peer === 'number'
        ? `our drain ${fmt(r.ratio_drain_vs_peer, 2)}× peer ${r.peer} ${r.peer_version} (task ${r.peer_task}), whose CPU per job is ${fmt(r.ratio_peer_cpu_vs_drain, 2)}× ours: ` +
          `${rate} jobs/s against ${fmt(r.reference_drain_msgs_per_s)} msgs/s (${r.reference_drain_point}, same run); ${r.guarantee}`
        : `peer ${r.peer} ${r.peer_version}, task ${r.peer_task}: ${rate} jobs/s; no drain of ours at batch 1000 in this run to compare with; ${r.guarantee}`,
    });
  }
  for (const r of peerFindings) verdicts.push({ ok: false, text: `peer finding: ${r.point}: lost ${fmt(r.lost)}, duplicated ${fmt(r.duplicated)} of the jobs it completed. ${r.note ?? ''}`.trim() });
  for (const r of failed) verdicts.push({ ok: false, text: `NOT VALID: ${r.point}: lost ${fmt(r.lost)}, duplicated ${fmt(r.duplicated)}. ${r.note ?? ''}`.trim() });
  for (const r of controls) verdicts.push({ ok: true, text: `control caught: ${r.point} (${r.ack_mode}): lost ${fmt(r.lost)}, duplicated ${fmt(r.duplicated)}, as it must` });
  for (const r of unchecked) verdicts.push({ ok: false, text: `not checked: ${r.point}: verdict ${r.verdict}. ${r.note ?? ''}`.trim() });
  // One line for all of them: on a busy machine most points can miss the drain limit, and a line each buries the rest.
  if (undrained.length > 0) {
    verdicts.push({
      ok: false,
      text: `not drained in time (${undrained.length} point(s); each rate is over the part drained, a lower bound): ${undrained.map((r) => String(r.point).replace(/^drain /, '')).join('; ')}`,
    });
  }
  const files: [string, string][] = [
    ['results.csv', 'every point and repetition, every column, units in the column names'],
    ['medians.csv', 'the median of each point over its repetitions (what this page shows)'],
    ['options.json', 'the resolved options, versions of node and the packages, the database settings, the git commit'],
    ['drain.svg', 'the drain chart as SVG'],
    ['end-to-end.svg', 'the end-to-end chart as SVG'],
  ];
  const charts: [string, string][] = [
    ['drain.png', 'Drain msgs/s against batch size: each marker a measured point (triangle: not drained in time; cross: NOT valid), the SQL ceiling dashed black'],
    ['end-to-end.png', 'End to end: published req/s and drained msgs/s per point against the HTTP ceiling, with request latency and lag'],
  ];
  const peers = peersReportTable(i.rows);
  const shownCharts = charts.filter(([f]) => i.files.includes(f)).map(([file, caption]) => ({ file, caption, ...(file === 'drain.png' && peers !== undefined ? { table: peers } : {}) }));
  // Without a drain chart (a run of peers alone) the peers table stands with the others.
  const peersBesideChart = shownCharts.some((c) => c.table !== undefined);
  return {
    title: `bench, ${i.sweep.profile} profile, ${i.startedAt.toISOString()}`,
    outcome,
    verdicts,
    tables: [
      ...(i.comparison === undefined || i.comparison.length < 2
        ? []
        : [
            {
              caption: 'Side by side, measured in the same run (with two systems, the last column is the second over the first)',
              columns: i.comparison[0]!.map((h, n) => (n === 0 ? 'figure' : h)),
              rows: i.comparison.slice(1).map((cells) => ({ cells, status: 'neutral' as const })),
            },
          ]),
      ...(peers !== undefined && !peersBesideChart ? [peers] : []),
      tableFromRows(i.medians ? 'Every point (median over the repetitions)' : 'Every point', i.rows, i.comparison === undefined ? COLUMNS : [['engine', 'engine'], ['topology', 'topology'], ...COLUMNS], (r) =>
        r.verdict === 'invalid' && r.ack_mode === 'transactional' ? 'bad' : r.verdict === 'valid' ? 'good' : 'neutral',
      ),
    ],
    charts: shownCharts,
    facts: [
      ['profile', i.sweep.profile],
      ['started / finished', `${i.startedAt.toISOString()} / ${i.finishedAt.toISOString()} (${Math.round((i.finishedAt.getTime() - i.startedAt.getTime()) / 1000)} s)`],
      ['database', `${i.database.db_version}, innodb_flush_log_at_trx_commit=${i.database.db_flush_log_at_trx_commit ?? '?'}`],
      ['git commit', i.gitCommit ?? 'unknown'],
      ...machineFacts(),
    ],
    files: files.filter(([f]) => i.files.includes(f)).map(([file, label]) => ({ file, label })),
  };
}
