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
  if (typeof v === 'number') return c.startsWith('ratio') || c === 'cpu_vs_http_answer' || c === 'cpu_vs_sql_ceiling' ? v.toFixed(2) : c.includes('us_per_msg') ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
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
  if (drain !== undefined) parts.push(`${cell(r, 'drain_msgs_per_s')} ${r.kind === 'peer' ? 'jobs/s' : 'msgs/s'}`);
  if (num(r.ratio_drain_vs_peer) !== undefined) parts.push(`our drain ${cell(r, 'ratio_drain_vs_peer')}x this`);
  if (num(r.ratio_vs_sql_ceiling) !== undefined) {
    const rounds = num(r.drain_rounds);
    const spread = rounds !== undefined && rounds > 1 ? ` (median of ${rounds} paired rounds, ${cell(r, 'ratio_vs_sql_ceiling_min')}-${cell(r, 'ratio_vs_sql_ceiling_max')}, spread ${((num(r.ratio_vs_sql_ceiling_max) ?? 0) - (num(r.ratio_vs_sql_ceiling_min) ?? 0)).toFixed(2)})` : '';
    parts.push(`${cell(r, 'ratio_vs_sql_ceiling')} of SQL ceiling${spread}`);
    if (num(r.cpu_vs_sql_ceiling) !== undefined) parts.push(`CPU per message ${cell(r, 'cpu_vs_sql_ceiling')}x the ceiling's`);
  }
  if (num(r.ratio_vs_http_ceiling) !== undefined && r.kind !== 'http-ceiling') parts.push(`${cell(r, 'ratio_vs_http_ceiling')} of HTTP ceiling`);
  if (num(r.ratio_vs_baseline) !== undefined && r.kind !== 'http-ceiling') parts.push(`${cell(r, 'ratio_vs_baseline')}x 154/s`);
  const cpu = (
    [['cpu_server_us_per_msg', 'server'], ['cpu_worker_us_per_msg', r.kind === 'sql-ceiling' ? 'loop' : 'worker'], ['cpu_db_us_per_msg', 'db'], ['cpu_loadgen_us_per_msg', 'loadgen']] as const
  )
    .filter(([c]) => num(r[c]) !== undefined)
    .map(([c, name]) => `${name} ${cell(r, c)}`);
  if (cpu.length > 0) parts.push(`CPU ${r.kind === 'peer' ? 'us/job' : 'us/msg'} ${cpu.join(', ')}${systemCpuText(r)}`);
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
  const peers = peersTable(rows);
  if (peers !== undefined) out.push('', 'peers (same run; ratios first: our drain over the peer, the peer\'s CPU per job over ours):', peers);
  // A peer that loses or doubles a job is a finding about the peer (its guarantee allows duplicates), not ours.
  const invalid = rows.filter((r) => r.verdict === 'invalid' && r.kind !== 'peer');
  if (invalid.length > 0) out.push(`NOT VALID: ${invalid.map((r) => `${r.point} (lost ${r.lost}, duplicated ${r.duplicated})`).join('; ')}`);
  const peerFindings = rows.filter((r) => r.verdict === 'invalid' && r.kind === 'peer');
  if (peerFindings.length > 0) out.push(`peer findings: ${peerFindings.map((r) => `${r.point} (lost ${r.lost ?? '-'}, duplicated ${r.duplicated ?? '-'})`).join('; ')}`);
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
  'ratio_drain_vs_peer',
  'ratio_peer_cpu_vs_drain',
  'reference_drain_msgs_per_s',
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

/** One line of the peers table. */
export interface PeerTableRow {
  what: string;
  ratioDrainVsPeer: number | undefined;
  ratioCpuVsDrain: number | undefined;
  perSecond: number | undefined;
  workerUs: number | undefined;
  dbUs: number | undefined;
  guarantee: string;
  check: string;
  version: string;
  settings: string;
}

/**
 * The peers beside our drain, one line each, ratios first: our drain's rate over the peer's (the number of times
 * it is the faster) and the peer's CPU per job (worker and database) over ours per message, then the rates, the
 * CPU, the guarantee and what the check found. The first line is the drain they are compared with.
 */
export function peerTableRows(rows: readonly CsvRow[]): PeerTableRow[] {
  const peers = rows.filter((r) => r.kind === 'peer');
  if (peers.length === 0) return [];
  const referenceLabel = peers.map((r) => r.reference_drain_point).find((v) => typeof v === 'string');
  const reference = rows.find((r) => r.kind === 'drain' && r.point === referenceLabel);
  const out: PeerTableRow[] = [];
  if (reference !== undefined) {
    out.push({
      what: `ours: ${String(reference.point)}`,
      ratioDrainVsPeer: 1,
      ratioCpuVsDrain: 1,
      perSecond: num(reference.drain_msgs_per_s),
      workerUs: num(reference.cpu_worker_us_per_msg),
      dbUs: num(reference.cpu_db_us_per_msg),
      guarantee: 'exactly-once: the effect and the ack commit in one transaction',
      check: checkText(reference),
      version: 'this commit',
      settings: `batch ${String(reference.batch_size ?? '-')}, ${String(reference.isolation ?? '-')}`,
    });
  }
  for (const r of peers) {
    out.push({
      what: `${String(r.peer)} ${String(r.peer_task ?? '')}`.trim(),
      ratioDrainVsPeer: num(r.ratio_drain_vs_peer),
      ratioCpuVsDrain: num(r.ratio_peer_cpu_vs_drain),
      perSecond: num(r.drain_msgs_per_s),
      workerUs: num(r.cpu_worker_us_per_msg),
      dbUs: num(r.cpu_db_us_per_msg),
      guarantee: String(r.guarantee ?? '-'),
      check: checkText(r),
      version: String(r.peer_version ?? '-'),
      settings: String(r.peer_settings ?? '-'),
    });
  }
  return out;
}

function checkText(r: CsvRow): string {
  if (r.verdict === 'n/a') return 'no effect to count';
  if (r.verdict === 'valid') return 'none lost, none doubled';
  if (r.verdict === 'invalid') return `lost ${String(r.lost ?? '-')}, duplicated ${String(r.duplicated ?? '-')}`;
  return String(r.verdict ?? 'unknown');
}

/** The peers table as text, or undefined for a run without peer points. */
export function peersTable(rows: readonly CsvRow[]): string | undefined {
  const table = peerTableRows(rows);
  if (table.length === 0) return undefined;
  const fixed = (v: number | undefined, digits: number) => (v === undefined ? '-' : v.toFixed(digits));
  const whole = (v: number | undefined) => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
  const header = ['', 'ours / peer', 'peer CPU / ours', 'per s', 'worker us', 'db us', 'check', 'guarantee', 'version'];
  const lines = [header, ...table.map((t) => [t.what, fixed(t.ratioDrainVsPeer, 2), fixed(t.ratioCpuVsDrain, 2), whole(t.perSecond), fixed(t.workerUs, 1), fixed(t.dbUs, 1), t.check, t.guarantee, t.version])];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const text = lines.map((l) => l.map((v, i) => (i === 0 || i >= 6 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd());
  text.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return text.join('\n');
}
