// What a bench run shows its reader: the summary table on the terminal (best point, baseline, ceilings,
// ratios) and the two charts, built from the CSV rows.
import type { CsvRow } from './csv.ts';
import { formatCell } from './csv.ts';
import type { DrainPoint, EndToEndPoint, Reference } from './chart.ts';
import { percentile } from './metrics.ts';

const num = (v: CsvRow[string]): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The drain series of the chart: one line per mode / isolation / handler profile / ack mode. */
export function drainChartData(rows: readonly CsvRow[]): { points: DrainPoint[]; ceiling: DrainPoint[] } {
  const points: DrainPoint[] = [];
  const ceiling: DrainPoint[] = [];
  for (const r of rows) {
    const rate = num(r.drain_msgs_per_s);
    const batch = num(r.batch_size);
    if (rate === undefined || batch === undefined || rate <= 0) continue;
    const status = { drained: r.drained === true, valid: r.verdict === 'valid' };
    if (r.kind === 'sql-ceiling') ceiling.push({ series: 'sql ceiling', batch_size: batch, drain_msgs_per_s: rate, ...status });
    if (r.kind !== 'drain') continue;
    const parts = [r.mode === 'queue' ? `queue x${r.workers}` : 'offset', String(r.isolation ?? ''), String(r.handler_profile)];
    if (r.ack_mode !== 'transactional') parts.push(String(r.ack_mode));
    points.push({ series: parts.join(' '), batch_size: batch, drain_msgs_per_s: rate, ...status });
  }
  return { points, ceiling };
}

/** One entry per end-to-end point (the label without its "end-to-end" prefix: the chart's title says it). */
export function endToEndChartData(rows: readonly CsvRow[]): EndToEndPoint[] {
  return rows
    .filter((r) => r.kind === 'end-to-end')
    .map((r) => ({
      point: `${String(r.point).replace(/^end-to-end /, '')}${typeof r.repetition === 'number' && r.repetition > 1 ? ` #${r.repetition}` : ''}`,
      publish_req_per_s: num(r.publish_req_per_s),
      drain_msgs_per_s: num(r.drain_msgs_per_s),
      latency_p50_ms: num(r.latency_p50_ms),
      latency_p99_ms: num(r.latency_p99_ms),
      lag_p50_ms: num(r.lag_p50_ms),
      lag_p99_ms: num(r.lag_p99_ms),
      valid: r.verdict === 'valid',
    }));
}

/** The references each chart draws as rules: msgs/s ones on the drain chart, req/s ones on the end-to-end chart. */
export function chartRules(rows: readonly CsvRow[], baseline: number): { drain: Reference[]; endToEnd: Reference[] } {
  const http = Math.max(0, ...rows.filter((r) => r.kind === 'http-ceiling').map((r) => num(r.publish_req_per_s) ?? 0));
  return {
    drain: [{ label: `published baseline ${baseline} msg/s`, value: baseline }],
    endToEnd: http > 0 ? [{ label: `HTTP ceiling ${Math.round(http).toLocaleString('en-US')} req/s`, value: http }] : [],
  };
}

/**
 * The valid, exactly-once (transactional) row with the highest value of `column` among rows of `kind`, leaving
 * out the watermill handler: it is the baseline the best configuration is compared with, not a candidate.
 */
export function bestRow(rows: readonly CsvRow[], kind: string, column: string): CsvRow | undefined {
  return rows
    .filter(
      (r) =>
        r.kind === kind && r.verdict === 'valid' && r.ack_mode === 'transactional' && r.handler_profile !== 'watermill' && num(r[column]) !== undefined,
    )
    .sort((a, b) => (num(b[column]) ?? 0) - (num(a[column]) ?? 0))[0];
}

const SUMMARY_COLUMNS: [string, string][] = [
  ['point', 'point'],
  ['drain_msgs_per_s', 'drain/s'],
  ['publish_req_per_s', 'publish/s'],
  ['lag_p99_ms', 'lag p99 ms'],
  ['latency_p99_ms', 'lat p99 ms'],
  ['verdict', 'verdict'],
  ['lost', 'lost'],
  ['duplicated', 'dup'],
  ['ratio_vs_baseline', 'x154'],
  ['ratio_vs_watermill_profile', 'x wm'],
  ['ratio_vs_sql_ceiling', '/sql'],
  ['ratio_vs_http_ceiling', '/http'],
];

/** A plain-text table of every row, then the headline lines: best drain, best end to end, references. */
export function summaryTable(rows: readonly CsvRow[]): string {
  const cell = (r: CsvRow, c: string) => {
    const v = r[c];
    if (typeof v === 'number') return c.startsWith('ratio') ? v.toFixed(2) : String(Math.round(v));
    return formatCell(v);
  };
  const table = [SUMMARY_COLUMNS.map(([, h]) => h), ...rows.map((r) => SUMMARY_COLUMNS.map(([c]) => cell(r, c)))];
  const widths = SUMMARY_COLUMNS.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  const lines = table.map((line) => line.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const out = [lines.join('\n'), ''];
  const bestDrain = bestRow(rows, 'drain', 'drain_msgs_per_s');
  if (bestDrain !== undefined) {
    out.push(
      `best drain:       ${bestDrain.point}: ${cell(bestDrain, 'drain_msgs_per_s')} msgs/s, ` +
        `${cell(bestDrain, 'ratio_vs_baseline')}x the published 154 msg/s, ${cell(bestDrain, 'ratio_vs_watermill_profile')}x the watermill handler, ` +
        `${cell(bestDrain, 'ratio_vs_sql_ceiling')} of the SQL ceiling`,
    );
  }
  const bestE2e = bestRow(rows, 'end-to-end', 'publish_req_per_s');
  if (bestE2e !== undefined) {
    out.push(
      `best end to end:  ${bestE2e.point}: ${cell(bestE2e, 'publish_req_per_s')} req/s published, ${cell(bestE2e, 'drain_msgs_per_s')} msgs/s drained, ` +
        `lag p99 ${cell(bestE2e, 'lag_p99_ms')} ms, ${cell(bestE2e, 'ratio_vs_http_ceiling')} of the HTTP ceiling`,
    );
  }
  const invalid = rows.filter((r) => r.verdict === 'invalid');
  if (invalid.length > 0) out.push(`NOT VALID: ${invalid.map((r) => `${r.point} (lost ${r.lost}, duplicated ${r.duplicated})`).join('; ')}`);
  return out.join('\n');
}

/** Columns that are measurements: the median over repetitions is taken of these; the others are configuration. */
const MEASURED_COLUMNS = new Set([
  'drain_msgs_per_s',
  'publish_req_per_s',
  'requests_2xx',
  'latency_p50_ms',
  'latency_p99_ms',
  'lag_p50_ms',
  'lag_p99_ms',
  'cpu_loadgen_s',
  'cpu_server_s',
  'cpu_worker_s',
  'cpu_db_s',
  'ratio_vs_baseline',
  'ratio_vs_watermill_profile',
  'ratio_vs_http_ceiling',
  'ratio_vs_sql_ceiling',
  'point_duration_s',
]);

/**
 * One row per configuration point with the median of each measurement over its repetitions (single figures
 * move by 10-20 % between runs on a shared 2-core machine). `repetition` says how many; a point is valid
 * only if every repetition was; lost and duplicated add up.
 */
export function medianRows(rows: readonly CsvRow[]): CsvRow[] {
  const groups = new Map<string, CsvRow[]>();
  for (const r of rows) {
    const key = String(r.point);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    const out: CsvRow = { ...group[0]!, repetition: `median of ${group.length}` };
    for (const column of MEASURED_COLUMNS) {
      const values = group.map((r) => num(r[column])).filter((v): v is number => v !== undefined);
      out[column] = percentile(values, 50);
    }
    const verdicts = new Set(group.map((r) => r.verdict));
    out.verdict = verdicts.size === 1 ? group[0]!.verdict : verdicts.has('invalid') ? 'invalid' : 'unknown';
    for (const column of ['lost', 'duplicated'] as const) {
      const values = group.map((r) => num(r[column]));
      out[column] = values.every((v) => v === undefined) ? undefined : values.reduce<number>((a, v) => a + (v ?? 0), 0);
    }
    return out;
  });
}
