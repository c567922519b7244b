// What a bench run shows its reader: a line per finished point, the summary table on the terminal (same-run
// ratios first, then CPU per message, then absolute figures) and the two charts' data, built from the CSV rows.
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
  // The best HTTP ceiling at each connection count; the count is named when the run measured more than one.
  const http = new Map<string, number>();
  for (const r of rows) {
    const v = num(r.publish_req_per_s);
    if (r.kind !== 'http-ceiling' || v === undefined || v <= 0) continue;
    const key = String(r.connections ?? '');
    http.set(key, Math.max(http.get(key) ?? 0, v));
  }
  const named = http.size > 1;
  return {
    drain: [{ label: `published baseline ${baseline} msg/s`, value: baseline }],
    endToEnd: [...http].map(([connections, value]) => ({
      label: `HTTP ceiling${named ? ` (${connections} connections)` : ''} ${Math.round(value).toLocaleString('en-US')} req/s`,
      value,
    })),
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

/**
 * The summary's columns: ratios measured in the same run first (they travel between machines and runs far
 * better than absolute figures), then CPU per message (what noise moves least), then absolute figures.
 */
const SUMMARY_COLUMNS: [string, string][] = [
  ['point', 'point'],
  ['verdict', 'verdict'],
  ['ratio_vs_sql_ceiling', '/sql ceil'],
  ['ratio_vs_http_ceiling', '/http ceil'],
  ['ratio_vs_watermill_profile', 'x watermill'],
  ['ratio_vs_baseline', 'x 154/s'],
  ['cpu_server_us_per_msg', 'srv us/msg'],
  ['cpu_worker_us_per_msg', 'wrk us/msg'],
  ['cpu_db_us_per_msg', 'db us/msg'],
  ['cpu_system_us_per_msg', 'sys us/msg'],
  ['cpu_vs_http_answer', 'x http answer'],
  ['cpu_loadgen_us_per_msg', 'gen us/msg'],
  ['drain_msgs_per_s', 'drain/s'],
  ['publish_req_per_s', 'publish/s'],
  ['latency_p99_ms', 'lat p99 ms'],
  ['lag_p99_ms', 'lag p99 ms'],
  ['lost', 'lost'],
  ['duplicated', 'dup'],
];

function cell(r: CsvRow, c: string): string {
  const v = r[c];
  if (typeof v === 'number') return c.startsWith('ratio') || c === 'cpu_vs_http_answer' ? v.toFixed(2) : c.includes('us_per_msg') ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  return formatCell(v);
}

/** ` (system 52.5 = 2.33x an HTTP answer)`: the end-to-end CPU goal's figure, when the row has it. */
function systemCpuText(r: CsvRow): string {
  if (num(r.cpu_system_us_per_msg) === undefined) return '';
  const times = num(r.cpu_vs_http_answer) === undefined ? '' : ` = ${cell(r, 'cpu_vs_http_answer')}x an HTTP answer`;
  return ` (system ${cell(r, 'cpu_system_us_per_msg')}${times})`;
}

/** One finished point in a line: the figures a reader checks first (rate, ratios, CPU per message, verdict). */
export function pointLine(r: CsvRow): string {
  const parts: string[] = [];
  const drain = num(r.drain_msgs_per_s);
  const publish = num(r.publish_req_per_s);
  if (publish !== undefined) parts.push(`${cell(r, 'publish_req_per_s')} req/s`);
  if (drain !== undefined) parts.push(`${cell(r, 'drain_msgs_per_s')} msgs/s`);
  if (num(r.ratio_vs_sql_ceiling) !== undefined) parts.push(`${cell(r, 'ratio_vs_sql_ceiling')} of SQL ceiling`);
  if (num(r.ratio_vs_http_ceiling) !== undefined && r.kind !== 'http-ceiling') parts.push(`${cell(r, 'ratio_vs_http_ceiling')} of HTTP ceiling`);
  if (num(r.ratio_vs_baseline) !== undefined && r.kind !== 'http-ceiling') parts.push(`${cell(r, 'ratio_vs_baseline')}x 154/s`);
  const cpu = (
    [['cpu_server_us_per_msg', 'server'], ['cpu_worker_us_per_msg', r.kind === 'sql-ceiling' ? 'loop' : 'worker'], ['cpu_db_us_per_msg', 'db'], ['cpu_loadgen_us_per_msg', 'loadgen']] as const
  )
    .filter(([c]) => num(r[c]) !== undefined)
    .map(([c, name]) => `${name} ${cell(r, c)}`);
  if (cpu.length > 0) parts.push(`CPU us/msg ${cpu.join(', ')}${systemCpuText(r)}`);
  if (num(r.latency_p99_ms) !== undefined && r.kind === 'end-to-end') parts.push(`latency p99 ${cell(r, 'latency_p99_ms')} ms`);
  if (num(r.lag_p99_ms) !== undefined) parts.push(`lag p99 ${cell(r, 'lag_p99_ms')} ms`);
  if (r.kind === 'drain' && r.drained === false) parts.push('NOT drained in time');
  parts.push(String(r.verdict ?? 'unknown'));
  if (typeof r.point_duration_s === 'number') parts.push(`${r.point_duration_s.toFixed(1)} s`);
  const note = r.note === undefined || r.note === '' ? '' : ` (${String(r.note)})`;
  return `${String(r.point)}: ${parts.join(', ')}${note}`;
}

/**
 * A plain-text table of every row, then the headline lines: best drain, best end to end, references. A column
 * no row has a figure in is left out; a cell that does not apply to its row reads "-", so no number is blank.
 */
export function summaryTable(rows: readonly CsvRow[]): string {
  const columns = SUMMARY_COLUMNS.filter(([c]) => c === 'point' || c === 'verdict' || rows.some((r) => r[c] !== undefined && r[c] !== ''));
  const shown = (r: CsvRow, c: string) => {
    const text = cell(r, c);
    return text === '' ? '-' : text;
  };
  const table = [columns.map(([, h]) => h), ...rows.map((r) => columns.map(([c]) => shown(r, c)))];
  const widths = columns.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  const lines = table.map((line) => line.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const out = [...headlines(rows), '', lines.join('\n')];
  const invalid = rows.filter((r) => r.verdict === 'invalid');
  if (invalid.length > 0) out.push(`NOT VALID: ${invalid.map((r) => `${r.point} (lost ${r.lost}, duplicated ${r.duplicated})`).join('; ')}`);
  const interrupted = rows.filter((r) => r.verdict === 'interrupted');
  if (interrupted.length > 0) out.push(`interrupted: ${interrupted.length} point(s) not measured (or only in part): verdict "interrupted"`);
  return out.join('\n');
}

/** The best drain and end-to-end point, led by the same-run ratios; a reference not measured is said so. */
function headlines(rows: readonly CsvRow[]): string[] {
  const out: string[] = [];
  const ratioText = (r: CsvRow, column: string, text: (v: string) => string, reference: string) =>
    num(r[column]) === undefined ? `${reference} not measured in this run` : text(cell(r, column));
  const bestDrain = bestRow(rows, 'drain', 'drain_msgs_per_s');
  if (bestDrain !== undefined) {
    const ratios = [
      ratioText(bestDrain, 'ratio_vs_sql_ceiling', (v) => `${v} of the SQL ceiling`, 'SQL ceiling'),
      ratioText(bestDrain, 'ratio_vs_watermill_profile', (v) => `${v}x the watermill handler`, 'watermill handler'),
      `${cell(bestDrain, 'ratio_vs_baseline')}x the published 154 msg/s`,
    ];
    const cpu = [['worker', 'cpu_worker_us_per_msg'], ['db', 'cpu_db_us_per_msg']]
      .filter(([, c]) => num(bestDrain[c!]) !== undefined)
      .map(([name, c]) => `${name} ${cell(bestDrain, c!)}`);
    out.push(
      `best drain:      ${bestDrain.point}: ${ratios.join(', ')}; ${cell(bestDrain, 'drain_msgs_per_s')} msgs/s` +
        (cpu.length === 0 ? '' : `; CPU us/msg ${cpu.join(', ')}`),
    );
  }
  const bestE2e = bestRow(rows, 'end-to-end', 'publish_req_per_s');
  if (bestE2e !== undefined) {
    const ratios = [
      ratioText(bestE2e, 'ratio_vs_http_ceiling', (v) => `${v} of the HTTP ceiling`, 'HTTP ceiling'),
      ratioText(bestE2e, 'ratio_vs_watermill_profile', (v) => `${v}x the watermill handler`, 'watermill handler'),
      `${cell(bestE2e, 'ratio_vs_baseline')}x the published 154 msg/s`,
    ];
    const cpu = [['server', 'cpu_server_us_per_msg'], ['worker', 'cpu_worker_us_per_msg'], ['db', 'cpu_db_us_per_msg'], ['loadgen', 'cpu_loadgen_us_per_msg']]
      .filter(([, c]) => num(bestE2e[c!]) !== undefined)
      .map(([name, c]) => `${name} ${cell(bestE2e, c!)}`);
    out.push(
      `best end to end: ${bestE2e.point}: ${ratios.join(', ')}; ${cell(bestE2e, 'publish_req_per_s')} req/s published, ` +
        `${cell(bestE2e, 'drain_msgs_per_s')} msgs/s drained, lag p99 ${cell(bestE2e, 'lag_p99_ms') || '-'} ms` +
        (cpu.length === 0 ? '' : `; CPU us/msg ${cpu.join(', ')}${systemCpuText(bestE2e)}`),
    );
  }
  return out;
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
  'cpu_loadgen_us_per_msg',
  'cpu_server_us_per_msg',
  'cpu_worker_us_per_msg',
  'cpu_db_us_per_msg',
  'cpu_system_us_per_msg',
  'cpu_vs_http_answer',
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
    out.verdict = verdicts.size === 1 ? group[0]!.verdict : verdicts.has('invalid') ? 'invalid' : verdicts.has('interrupted') ? 'interrupted' : 'unknown';
    for (const column of ['lost', 'duplicated'] as const) {
      const values = group.map((r) => num(r[column]));
      out[column] = values.every((v) => v === undefined) ? undefined : values.reduce<number>((a, v) => a + (v ?? 0), 0);
    }
    return out;
  });
}
