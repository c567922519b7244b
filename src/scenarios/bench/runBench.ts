// One bench run from resolved options to files: starts the system (per engine, one after the other), runs the
// sweep with progress, and writes results/bench/<timestamp>/ (results.csv, options.json, charts, and with two
// engines engines.txt, the side-by-side table) even when interrupted.
import path from 'node:path';
import { SystemUnderTest, redactUrl, type SystemOptions } from '../../harness/systemUnderTest.ts';
import type { EngineName } from '../../harness/engines.ts';
import { planPoints, pointLabel } from './plan.ts';
import { references, toRow, CSV_COLUMNS, type DbColumns } from './results.ts';
import { runSweep } from './sweep.ts';
import { PUBLISHED_BASELINE_MSGS_PER_S, type SweepOptions } from './options.ts';
import { type PointResult } from './points.ts';
import { createResultsDir, collectVersions } from '../../bench/resultsDir.ts';
import { projectRoot } from '../../projectRoot.ts';
import { createProgress } from '../../bench/progress.ts';
import { toCsv, type CsvRow } from '../../bench/csv.ts';
import { drainChartSpec, endToEndChartSpec, renderSvg, svgToPng, type DrainPoint, type EndToEndBar } from '../../bench/chart.ts';
import { engineComparisonTable } from '../../bench/engineComparison.ts';
import { chartRules, drainChartData, endToEndChartData, medianRows, summaryTable } from '../../bench/report.ts';
import { round } from '../../bench/metrics.ts';

export interface BenchRunOptions {
  sweep: SweepOptions;
  system: Partial<SystemOptions>;
  /**
   * The engines to run, one after the other, each on a system of its own (default: system.engine, or
   * MariaDB). With two, results.csv holds both, the charts a series per engine, and the summary a
   * side-by-side table.
   */
  engines?: readonly EngineName[];
  /** Folder holding results/<scenario>/...; default <project>/results. */
  resultsRoot: string;
  ci: boolean;
  /** Lines for the terminal (summary, warnings). */
  out: (line: string) => void;
}

export interface BenchRunResult {
  dir: string;
  rows: CsvRow[];
  interrupted: boolean;
  summary: string;
}

/** One engine's part of a run: its rows (ratios against its own references) and what it ran on. */
interface EngineRun {
  engine: EngineName;
  rows: CsvRow[];
  interrupted: boolean;
  database: unknown;
}

export async function runBench(o: BenchRunOptions): Promise<BenchRunResult> {
  const engines = o.engines ?? [o.system.engine ?? 'mariadb'];
  const points = planPoints(o.sweep, engines[0]);
  const startedAt = new Date();
  const runs: EngineRun[] = [];
  for (const engine of engines) {
    const run = await runEngine(o, engine, planPoints(o.sweep, engine), engines.length > 1 ? `${engine}: ` : '');
    runs.push(run);
    if (run.interrupted) break;
  }
  const interrupted = runs.some((r) => r.interrupted) || runs.length < engines.length;
  const rows = runs.flatMap((r) => r.rows);
  const dir = createResultsDir(o.resultsRoot, 'bench', startedAt);
  dir.writeText('results.csv', toCsv(CSV_COLUMNS, rows));
  dir.writeJson('options.json', {
    scenario: 'bench',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted,
    engines,
    sweep: o.sweep,
    points: points.map(pointLabel),
    system: { databaseUrl: shownUrl(o.system), quietChildren: o.system.quietChildren },
    // One entry per engine: its version and durability settings.
    databases: Object.fromEntries(runs.map((r) => [r.engine, r.database])),
    versions: await collectVersions(projectRoot()),
    publishedBaselineMsgsPerS: PUBLISHED_BASELINE_MSGS_PER_S,
  });
  // With repetitions, the charts and the summary show each point's median (per engine); results.csv keeps every run.
  const repeated = rows.some((r) => typeof r.repetition === 'number' && r.repetition > 1);
  const shownRuns = runs.map((r) => ({ engine: r.engine, rows: repeated ? medianRows(r.rows) : r.rows }));
  const shown = shownRuns.flatMap((r) => r.rows);
  if (repeated) dir.writeText('medians.csv', toCsv(CSV_COLUMNS, shown));
  await writeCharts(dir.writeText, shownRuns).catch((e: Error) => o.out(`charts not written: ${e.message}`));
  const parts = shownRuns.map((r) => `${shownRuns.length > 1 ? `== ${r.engine} ==\n` : ''}${summaryTable(r.rows)}`);
  if (shownRuns.length > 1) {
    const table = engineComparisonTable(shown);
    dir.writeText('engines.txt', `${table}\n`);
    parts.push(`== engines side by side (same run) ==\n${table}`);
  }
  const summary = `${repeated ? 'medians over the repetitions (every run: results.csv)\n' : ''}${parts.join('\n\n')}`;
  o.out(summary);
  o.out(`${interrupted ? 'INTERRUPTED: partial results in' : 'results in'} ${path.relative(process.cwd(), dir.path) || dir.path}`);
  return { dir: dir.path, rows, interrupted, summary };
}

async function runEngine(o: BenchRunOptions, engine: EngineName, points: ReturnType<typeof planPoints>, prefix: string): Promise<EngineRun> {
  const progress = createProgress(points.length, { ci: o.ci });
  const sut = await SystemUnderTest.start({ ...o.system, engine, log: (line) => progress.log(`${prefix}${line}`) });
  const results: PointResult[] = [];
  let interrupted = false;
  let dbColumns: DbColumns = { engine, server_version: 'unknown', db_flush_log_at_trx_commit: undefined };
  let database: unknown;
  try {
    const facts = await sut.serverFacts();
    const flush = facts.settings.innodb_flush_log_at_trx_commit;
    dbColumns = { engine, server_version: facts.version, db_flush_log_at_trx_commit: typeof flush === 'number' ? flush : undefined };
    database = facts;
    const run = await runSweep({ sut, options: o.sweep, signal: sut.interrupted, log: (l) => progress.log(`${prefix}${l}`) }, points, (done, label, r) => {
      progress.update(done, `${prefix}${label}`);
      if (r !== undefined) {
        results.push(r);
        if (o.ci || !process.stderr.isTTY) {
          const rate = r.drainMsgsPerS ?? r.publishReqPerS;
          o.out(`[${prefix}${done}/${points.length}] ${pointLabel(r.point)}: ${rate === undefined ? '-' : Math.round(rate)}/s ${r.check?.verdict ?? ''} ${r.note}`);
        }
      }
    });
    interrupted = run.interrupted;
  } finally {
    progress.stop();
    await sut.close();
  }
  // Ratios are against this engine's own references: a drain is compared with the SQL ceiling of its engine.
  const refs = references(results);
  return { engine, rows: results.map((r) => roundRow(toRow(r, refs, o.sweep, dbColumns))), interrupted, database };
}

function shownUrl(system: Partial<SystemOptions>): string {
  const url = system.databaseUrl ?? system.mysqlUrl;
  return url === undefined ? 'private database' : redactUrl(url);
}

function roundRow(row: CsvRow): CsvRow {
  const out: CsvRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'number' ? round(v, k.startsWith('ratio') ? 3 : 1) : v;
  return out;
}

/** The two charts; with several engines each series (and the SQL ceiling) carries its engine's name. */
async function writeCharts(write: (name: string, text: string | Buffer) => string, runs: readonly { engine: EngineName; rows: readonly CsvRow[] }[]): Promise<void> {
  const all = runs.flatMap((r) => r.rows);
  const rules = chartRules(all, PUBLISHED_BASELINE_MSGS_PER_S);
  const named = runs.length > 1;
  const tag = (engine: EngineName, text: string) => (named ? `${engine} ${text}` : text);
  const points: DrainPoint[] = [];
  const ceiling: DrainPoint[] = [];
  const bars: EndToEndBar[] = [];
  for (const run of runs) {
    const drain = drainChartData(run.rows);
    points.push(...drain.points.map((p) => ({ ...p, series: tag(run.engine, p.series) })));
    // One dashed ceiling line for one engine; with several, each engine's ceiling is a series of its own,
    // so two ceilings are not drawn as one line.
    if (named) points.push(...drain.ceiling.map((p) => ({ ...p, series: tag(run.engine, p.series) })));
    else ceiling.push(...drain.ceiling);
    bars.push(...endToEndChartData(run.rows).map((b) => ({ ...b, point: tag(run.engine, b.point) })));
  }
  if (points.length + ceiling.length > 0) {
    const svg = await renderSvg(drainChartSpec(points, ceiling, rules));
    write('drain.svg', svg);
    write('drain.png', svgToPng(svg));
  }
  if (bars.length > 0) {
    const svg = await renderSvg(endToEndChartSpec(bars, rules.filter((r) => r.label.startsWith('HTTP'))));
    write('end-to-end.svg', svg);
    write('end-to-end.png', svgToPng(svg));
  }
}
