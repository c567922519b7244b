// One bench run from resolved options to files: starts the system, runs the sweep with progress, and writes
// results/bench/<timestamp>/ (results.csv, options.json, charts, index.html) even when interrupted.
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { SystemUnderTest, type SystemOptions } from '../../harness/systemUnderTest.ts';
import { planPoints, pointLabel } from './plan.ts';
import { references, toRow, CSV_COLUMNS } from './results.ts';
import { runSweep } from './sweep.ts';
import { PUBLISHED_BASELINE_MSGS_PER_S, type SweepOptions } from './options.ts';
import { type PointResult } from './points.ts';
import { createResultsDir, collectVersions, collectDatabaseInfo } from '../../bench/resultsDir.ts';
import { projectRoot } from '../../projectRoot.ts';
import { createProgress } from '../../bench/progress.ts';
import { toCsv, type CsvRow } from '../../bench/csv.ts';
import { drainChartSpec, endToEndChartSpec, renderSvg, svgToPng } from '../../bench/chart.ts';
import { chartRules, drainChartData, endToEndChartData, medianRows, summaryTable } from '../../bench/report.ts';
import { round } from '../../bench/metrics.ts';
import { writeHtmlReport } from '../../bench/htmlReport.ts';
import { benchPage } from './benchPage.ts';
import { redactMysqlUrl } from '../../system/db/mysqlUrl.ts';

export interface BenchRunOptions {
  sweep: SweepOptions;
  system: Partial<SystemOptions>;
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

export async function runBench(o: BenchRunOptions): Promise<BenchRunResult> {
  const points = planPoints(o.sweep);
  const startedAt = new Date();
  const progress = createProgress(points.length, { ci: o.ci });
  const sut = await SystemUnderTest.start({ ...o.system, log: (line) => progress.log(line) });
  const results: PointResult[] = [];
  let interrupted = false;
  let dbColumns = { db_version: 'unknown', db_flush_log_at_trx_commit: undefined as number | undefined };
  let dbInfo: unknown;
  try {
    const info = await collectDatabaseInfo(sut.db);
    dbColumns = { db_version: info.db_version, db_flush_log_at_trx_commit: info.db_flush_log_at_trx_commit };
    dbInfo = info;
    const run = await runSweep({ sut, options: o.sweep, signal: sut.interrupted, log: (l) => progress.log(l) }, points, (done, label, r) => {
      progress.update(done, label);
      if (r !== undefined) {
        results.push(r);
        if (o.ci || !process.stderr.isTTY) {
          const rate = r.drainMsgsPerS ?? r.publishReqPerS;
          o.out(`[${done}/${points.length}] ${pointLabel(r.point)}: ${rate === undefined ? '-' : Math.round(rate)}/s ${r.check?.verdict ?? ''} ${r.note}`);
        }
      }
    });
    interrupted = run.interrupted;
  } finally {
    progress.stop();
    await sut.close();
  }
  const refs = references(results);
  const rows = results.map((r) => roundRow(toRow(r, refs, o.sweep, dbColumns)));
  const dir = createResultsDir(o.resultsRoot, 'bench', startedAt);
  dir.writeText('results.csv', toCsv(CSV_COLUMNS, rows));
  const versions = await collectVersions(projectRoot());
  dir.writeJson('options.json', {
    scenario: 'bench',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted,
    sweep: o.sweep,
    points: points.map(pointLabel),
    system: { mysqlUrl: o.system.mysqlUrl === undefined ? 'private database' : redactMysqlUrl(o.system.mysqlUrl), quietChildren: o.system.quietChildren },
    database: dbInfo,
    versions,
    publishedBaselineMsgsPerS: PUBLISHED_BASELINE_MSGS_PER_S,
  });
  // With repetitions, the charts and the summary show each point's median; results.csv keeps every run.
  const repeated = rows.some((r) => typeof r.repetition === 'number' && r.repetition > 1);
  const shown = repeated ? medianRows(rows) : rows;
  if (repeated) dir.writeText('medians.csv', toCsv(CSV_COLUMNS, shown));
  await writeCharts(dir.writeText, shown).catch((e: Error) => o.out(`charts not written: ${e.message}`));
  writeHtmlReport(
    dir,
    benchPage({ rows: shown, medians: repeated, sweep: o.sweep, startedAt, finishedAt: new Date(), interrupted, database: dbColumns, gitCommit: versions.gitCommit, files: readdirSync(dir.path) }),
  );
  const summary = `${repeated ? 'medians over the repetitions (every run: results.csv)\n' : ''}${summaryTable(shown)}`;
  o.out(summary);
  o.out(`${interrupted ? 'INTERRUPTED: partial results in' : 'results in'} ${path.relative(process.cwd(), dir.path) || dir.path}`);
  return { dir: dir.path, rows, interrupted, summary };
}

function roundRow(row: CsvRow): CsvRow {
  const out: CsvRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'number' ? round(v, k.startsWith('ratio') ? 3 : 1) : v;
  return out;
}

async function writeCharts(write: (name: string, text: string | Buffer) => string, rows: readonly CsvRow[]): Promise<void> {
  const rules = chartRules(rows, PUBLISHED_BASELINE_MSGS_PER_S);
  const drain = drainChartData(rows);
  if (drain.points.length + drain.ceiling.length > 0) {
    const svg = await renderSvg(drainChartSpec(drain.points, drain.ceiling, rules.drain));
    write('drain.svg', svg);
    write('drain.png', svgToPng(svg));
  }
  const endToEnd = endToEndChartData(rows);
  if (endToEnd.length > 0) {
    const svg = await renderSvg(endToEndChartSpec(endToEnd, rules.endToEnd));
    write('end-to-end.svg', svg);
    write('end-to-end.png', svgToPng(svg));
  }
}
