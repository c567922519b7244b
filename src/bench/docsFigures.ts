// The figures of README.md and docs/*.md: tables rebuilt from one named run kept under docs/results/<run>/, so
// the docs cannot drift from what was measured. A generated table sits between markers that name it and the
// run it comes from:
//
//   <!-- figures:bench run=reference-quick -->
//   ...the table, rewritten by `make docs-figures`...
//   <!-- /figures:bench -->
//
// A run directory holds what `eob bench` and `eob chaos` wrote (bench/results.csv, chaos/results.csv, and their
// options.json) and a README.md recording the machine, the versions and the date once. This module is pure:
// it is handed the files' text and returns text, so the test and the script share every rule.

import { parseCsv, type Cell, type CsvRow } from './csv.ts';

/** What a run directory holds, as text; a file the run does not have is undefined. */
export interface RunFiles {
  benchCsv?: string;
  chaosCsv?: string;
  /** chaos/drain-kill.csv: ours and the peers SIGKILLed in the middle of a drain (PostgreSQL). */
  drainKillCsv?: string;
}

/** One marked table in a document. */
export interface FigureMarker {
  name: string;
  run: string;
  /** The text between the opening and the closing marker. */
  body: string;
}

/** A generated table that does not match what its run gives. */
export interface FigureMismatch {
  name: string;
  run: string;
  expected: string;
  found: string;
}

const MARKER = /<!-- figures:([a-z-]+) run=([A-Za-z0-9._-]+) -->\n([\s\S]*?)<!-- \/figures:\1 -->/g;
const OPEN = /<!-- figures:([a-z-]+)( run=[^ ]*)? -->/g;

export const FIGURE_NAMES = ['headline', 'bench', 'peers', 'chaos', 'drain-kill', 'engines'] as const;
export type FigureName = (typeof FIGURE_NAMES)[number];

/** Every marked table of a document, in order. Throws on an opening marker that is malformed or never closed. */
export function findMarkers(text: string): FigureMarker[] {
  const markers = [...text.matchAll(MARKER)].map((m) => ({ name: m[1]!, run: m[2]!, body: m[3]! }));
  const opened = [...text.matchAll(OPEN)];
  if (opened.length !== markers.length) {
    const names = opened.map((m) => m[0]).join(', ');
    throw new Error(`a figures marker is malformed or not closed (found ${names}): write <!-- figures:NAME run=RUN --> ... <!-- /figures:NAME -->`);
  }
  for (const m of markers) {
    if (!(FIGURE_NAMES as readonly string[]).includes(m.name)) {
      throw new Error(`unknown figure "${m.name}": the figures are ${FIGURE_NAMES.join(', ')}`);
    }
  }
  return markers;
}

/**
 * Rewrites every marked table of a document from its run (or, with `cite`, from that run, changing the
 * markers to cite it). `load` returns a run's files.
 */
export function rebuildDocument(text: string, load: (run: string) => RunFiles, cite?: string): string {
  findMarkers(text);
  return text.replace(MARKER, (_all, name: string, run: string) => {
    const source = cite ?? run;
    return `<!-- figures:${name} run=${source} -->\n${renderFigure(name as FigureName, load(source))}<!-- /figures:${name} -->`;
  });
}

/** The marked tables of a document that differ from what their runs give. */
export function checkDocument(text: string, load: (run: string) => RunFiles): FigureMismatch[] {
  return findMarkers(text).flatMap((m) => {
    const expected = renderFigure(m.name as FigureName, load(m.run));
    return expected === m.body ? [] : [{ name: m.name, run: m.run, expected, found: m.body }];
  });
}

/** One generated table, ending with a newline. */
export function renderFigure(name: FigureName, files: RunFiles): string {
  switch (name) {
    case 'headline': return headline(files);
    case 'bench': return benchTable(rows(files.benchCsv, 'bench'));
    case 'peers': return peersTable(rows(files.benchCsv, 'bench'));
    case 'chaos': return chaosTable(rows(files.chaosCsv, 'chaos'));
    case 'drain-kill': return drainKillTable(rows(files.drainKillCsv, 'chaos/drain-kill'));
    case 'engines': return enginesTable(rows(files.benchCsv, 'bench'));
  }
}

function rows(csv: string | undefined, what: string): CsvRow[] {
  if (csv === undefined) throw new Error(`the run has no ${what.includes('/') ? `${what}.csv` : `${what}/results.csv`}: save the run again with scripts/docsFigures.ts --save (docs/results.md says how)`);
  return parseCsv(csv);
}

function table(header: readonly string[], align: readonly ('l' | 'r')[], body: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |\n`;
  return line(header) + line(align.map((a) => (a === 'r' ? '---:' : '---'))) + body.map(line).join('');
}

function num(v: Cell): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A rate or count with thousands separators, rounded to a whole number. */
function whole(v: Cell): string {
  const n = num(v);
  return n === undefined ? '' : Math.round(n).toLocaleString('en-US');
}

function fixed(v: Cell, digits: number): string {
  const n = num(v);
  return n === undefined ? '' : n.toFixed(digits);
}

function text(v: Cell): string {
  return v === undefined ? '' : String(v);
}

function engines(all: readonly CsvRow[]): string[] {
  return [...new Set(all.map((r) => text(r['engine'])))];
}

function cpuTriple(r: CsvRow): string {
  const parts = ['cpu_server_us_per_msg', 'cpu_worker_us_per_msg', 'cpu_db_us_per_msg'].map((c) => fixed(r[c], 1) || '-');
  return parts.every((p) => p === '-') ? '' : parts.join(' / ');
}

/** The exactly-once offset drain at the worker's default batch, the row the headline and the engines cite. */
function defaultDrain(all: readonly CsvRow[], engine: string): CsvRow | undefined {
  return all.find((r) => r['engine'] === engine && r['kind'] === 'drain' && r['mode'] === 'offset'
    && r['handler_profile'] === 'batched' && r['batch_size'] === 1000 && r['ack_mode'] === 'transactional');
}

function firstEndToEnd(all: readonly CsvRow[], engine: string): CsvRow | undefined {
  return all.find((r) => r['engine'] === engine && r['kind'] === 'end-to-end' && r['coalesce'] === true && r['mode'] === 'offset');
}

function headline(files: RunFiles): string {
  const bench = rows(files.benchCsv, 'bench');
  const chaos = files.chaosCsv === undefined ? [] : parseCsv(files.chaosCsv);
  const list = engines(bench);
  const pick = (engine: string, f: (all: readonly CsvRow[], e: string) => CsvRow | undefined, column: string, render: (v: Cell) => string) => {
    const r = f(bench, engine);
    return r === undefined ? '' : render(r[column]);
  };
  const valid = (engine: string) => {
    const checked = bench.filter((r) => r['engine'] === engine && r['verdict'] !== 'n/a' && r['verdict'] !== undefined && r['kind'] !== 'peer');
    return `${checked.filter((r) => r['verdict'] === 'valid').length} of ${checked.length}`;
  };
  const asExpected = (engine: string) => {
    const cases = chaos.filter((r) => r['engine'] === engine);
    return cases.length === 0 ? 'not run' : `${cases.filter((r) => r['passed'] === true).length} of ${cases.length}`;
  };
  const body: string[][] = [
    ['drain / SQL ceiling (offset, batch 1000)', ...list.map((e) => pick(e, defaultDrain, 'ratio_vs_sql_ceiling', (v) => fixed(v, 2)))],
    ['drain x watermill handler (same run)', ...list.map((e) => pick(e, defaultDrain, 'ratio_vs_watermill_profile', (v) => fixed(v, 1)))],
    ['drain x 154 msg/s', ...list.map((e) => pick(e, defaultDrain, 'ratio_vs_baseline', (v) => fixed(v, 0)))],
    ['end to end / HTTP ceiling', ...list.map((e) => pick(e, firstEndToEnd, 'ratio_vs_http_ceiling', (v) => fixed(v, 2)))],
    ['end to end CPU per message / one HTTP answer', ...list.map((e) => pick(e, firstEndToEnd, 'cpu_vs_http_answer', (v) => fixed(v, 2)))],
    ['bench points valid', ...list.map(valid)],
    ['chaos cases as expected', ...list.map(asExpected)],
  ];
  return table(['figure (same run, same engine)', ...list], ['l', ...list.map((): 'r' => 'r')], body);
}

function benchTable(all: readonly CsvRow[]): string {
  const body = all.filter((r) => r['kind'] !== 'peer').map((r) => [
    text(r['engine']),
    text(r['point']),
    fixed(r['ratio_vs_sql_ceiling'], 2) + ((num(r['drain_rounds']) ?? 0) < 2 ? '' : ` (${fixed(r['ratio_vs_sql_ceiling_min'], 2)}-${fixed(r['ratio_vs_sql_ceiling_max'], 2)})`),
    fixed(r['ratio_vs_http_ceiling'], 2),
    fixed(r['ratio_vs_watermill_profile'], 2),
    fixed(r['ratio_vs_baseline'], 1),
    cpuTriple(r),
    fixed(r['cpu_vs_http_answer'], 2),
    whole(r['drain_msgs_per_s']),
    whole(r['publish_req_per_s']),
    whole(r['lag_p99_ms']),
    text(r['verdict']) + (r['drained'] === false ? ' (not drained in time)' : ''),
  ]);
  return table(
    ['engine', 'point', '/ SQL ceiling (rounds)', '/ HTTP ceiling', 'x watermill', 'x 154 msg/s', 'CPU µs/msg server / worker / db', 'x HTTP answer', 'drain msgs/s', 'published req/s', 'lag p99 ms', 'verdict'],
    ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'l'],
    body,
  );
}

function peersTable(all: readonly CsvRow[]): string {
  const peers = all.filter((r) => r['kind'] === 'peer');
  const body = peers.map((r) => [
    `${text(r['peer'])} ${text(r['peer_version'])}`,
    text(r['peer_task']),
    text(r['guarantee']),
    fixed(r['ratio_drain_vs_peer'], 2),
    fixed(r['ratio_peer_cpu_vs_drain'], 2),
    whole(r['drain_msgs_per_s']),
    whole(r['reference_drain_msgs_per_s']),
    text(r['verdict']),
  ]);
  return table(
    ['peer', 'task', 'guarantee', 'ours ÷ peer (rate)', 'peer ÷ ours (CPU per job)', 'peer jobs/s', 'ours msgs/s', 'check'],
    ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'l'],
    body,
  );
}

function chaosTable(all: readonly CsvRow[]): string {
  const body = all.map((r) => [
    text(r['engine']),
    text(r['case']),
    text(r['expected_verdict']),
    text(r['verdict']),
    r['passed'] === true ? 'yes' : 'NO',
    `${whole(r['requests_ok'])} / ${whole(r['requests_fail'])} / ${whole(r['requests_unknown'])}`,
    whole(r['messages']),
    whole(r['total']),
    whole(r['lost']),
    whole(r['duplicated']),
    anomalies(r),
    r['gaps_passed'] === undefined ? '' : `${whole(r['gaps_passed'])} (${whole(r['gaps_passed_by_timeout'])})`,
    whole(r['faults_total']),
  ]);
  return table(
    ['engine', 'case', 'expected', 'verdict', 'as expected', 'ok / fail / unknown', 'messages', 'counted', 'lost', 'dup', 'anomalies by kind', 'holes passed (by bound)', 'faults'],
    ['l', 'l', 'l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'l', 'l', 'r'],
    body,
  );
}

// The checker's taxonomy, as its CSV columns name the kinds (a run from before the taxonomy has none of them).
const ANOMALY_COLUMNS = ['ack_publish_lost', 'never_counted', 'skipped', 'counted_twice', 'published_twice', 'unknown_outcome'];

/** The kinds a case showed, with their counts: `skipped 58, unknown-outcome 4`. */
function anomalies(r: CsvRow): string {
  return ANOMALY_COLUMNS.filter((c) => (num(r[c]) ?? 0) > 0).map((c) => `${c.replace(/_/g, '-')} ${whole(r[c])}`).join(', ');
}

function enginesTable(all: readonly CsvRow[]): string {
  const list = engines(all);
  const version = (e: string) => text(all.find((r) => r['engine'] === e)?.['server_version']);
  const of = (e: string, f: (rs: readonly CsvRow[], e: string) => CsvRow | undefined, render: (r: CsvRow) => string) => {
    const r = f(all, e);
    return r === undefined ? '' : render(r);
  };
  const ceiling = (rs: readonly CsvRow[], e: string) => rs.find((r) => r['engine'] === e && r['kind'] === 'sql-ceiling' && r['batch_size'] === 1000);
  const http = (rs: readonly CsvRow[], e: string) => rs.find((r) => r['engine'] === e && r['kind'] === 'http-ceiling');
  const body: string[][] = [
    ['server version', ...list.map(version)],
    ['drain / SQL ceiling, offset, batch 1000', ...list.map((e) => of(e, defaultDrain, (r) => fixed(r['ratio_vs_sql_ceiling'], 2)))],
    ['drain x watermill handler', ...list.map((e) => of(e, defaultDrain, (r) => fixed(r['ratio_vs_watermill_profile'], 1)))],
    ['drain CPU µs/msg, worker / database', ...list.map((e) => of(e, defaultDrain, (r) => `${fixed(r['cpu_worker_us_per_msg'], 1)} / ${fixed(r['cpu_db_us_per_msg'], 1)}`))],
    ['drain, offset, batch 1000 (msgs/s)', ...list.map((e) => of(e, defaultDrain, (r) => whole(r['drain_msgs_per_s'])))],
    ['SQL ceiling, batch 1000 (msgs/s): point / paired with the drain', ...list.map((e) => `${of(e, ceiling, (r) => whole(r['drain_msgs_per_s']))} / ${of(e, defaultDrain, (r) => whole(r['paired_sql_ceiling_msgs_per_s']))}`)],
    ['end to end / HTTP ceiling', ...list.map((e) => of(e, firstEndToEnd, (r) => fixed(r['ratio_vs_http_ceiling'], 2)))],
    ['end to end CPU µs/msg, server / worker / database', ...list.map((e) => of(e, firstEndToEnd, cpuTriple))],
    ['end to end CPU per message / one HTTP answer', ...list.map((e) => of(e, firstEndToEnd, (r) => fixed(r['cpu_vs_http_answer'], 2)))],
    ['end to end published req/s; HTTP ceiling req/s', ...list.map((e) => `${of(e, firstEndToEnd, (r) => whole(r['publish_req_per_s']))}; ${of(e, http, (r) => whole(r['publish_req_per_s']))}`)],
  ];
  return table(['figure (same run)', ...list], ['l', ...list.map((): 'r' => 'r')], body);
}

function drainKillTable(all: readonly CsvRow[]): string {
  const body = all.map((r) => [
    text(r['drainer']),
    text(r['guarantee']).split(':')[0]!,
    whole(r['jobs']),
    whole(r['kills']),
    whole(r['lost']),
    whole(r['duplicated']),
    r['passed'] === true ? 'yes' : 'NO',
  ]);
  return table(['drainer', 'guarantee', 'jobs', 'kills', 'lost', 'duplicated', 'as expected'], ['l', 'l', 'r', 'r', 'r', 'r', 'l'], body);
}
