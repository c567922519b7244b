// One bench run from resolved options to files: starts the system, runs the sweep with progress, and writes
// results/bench/<timestamp>/ (results.csv, options.json, charts, index.html) even when interrupted.
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { SystemUnderTest, type SystemOptions } from '../../harness/systemUnderTest.ts';
import { estimatePointSeconds, planPoints, pointLabel, type Point } from './plan.ts';
import { references, toRow, CSV_COLUMNS } from './results.ts';
import { runSweep } from './sweep.ts';
import { PUBLISHED_BASELINE_MSGS_PER_S, type SweepOptions } from './options.ts';
import { type PointResult } from './points.ts';
import { createResultsDir, collectVersions, collectDatabaseInfo } from '../../bench/resultsDir.ts';
import { projectRoot } from '../../projectRoot.ts';
import { createProgress } from '../../bench/progress.ts';
import { toCsv, type CsvRow } from '../../bench/csv.ts';
import { drainChartSpec, endToEndChartSpec, renderSvg, svgToPng } from '../../bench/chart.ts';
import { chartRules, drainChartData, endToEndChartData, medianRows, pointLine, summaryTable } from '../../bench/report.ts';
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

/** A signal this soon after the first is the same stop delivered twice (see onSignal), not a second Ctrl-C. */
const DUPLICATE_SIGNAL_MS = 1_000;

export async function runBench(o: BenchRunOptions): Promise<BenchRunResult> {
  const points = planPoints(o.sweep);
  const startedAt = new Date();
  const progress = createProgress({
    title: 'bench',
    unit: 'points',
    total: points.length,
    ci: o.ci,
    estimateS: (i) => estimatePointSeconds(points[i]!, o.sweep),
  });
  // Signals are handled from the first moment (the database's start included), SIGTERM as SIGINT: stop after
  // the current step, stop the children, write what was measured, remove the temp data. A second one exits at
  // once (the exit hooks SIGKILL the children).
  const abort = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // `timeout make bench` delivers SIGTERM twice at once: to the process group, and again from make, which
    // passes a fatal signal on to its children. Only a second signal a person sends (later) exits at once.
    if (abort.signal.aborted && performance.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
    if (abort.signal.aborted) {
      process.stderr.write(`\n${signal} again: exiting now\n`);
      process.exit(130);
    }
    progress.log(`${signal}: stopping after the current point, writing what was measured (again to exit at once)`);
    firstSignalAt = performance.now();
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: PointResult[] = [];
  let dbColumns = { db_version: 'unknown', db_flush_log_at_trx_commit: undefined as number | undefined };
  let dbInfo: unknown;
  try {
    const sut = await SystemUnderTest.start({ ...o.system, handleSignals: false, log: (line) => progress.log(line) });
    try {
      const info = await collectDatabaseInfo(sut.db);
      dbColumns = { db_version: info.db_version, db_flush_log_at_trx_commit: info.db_flush_log_at_trx_commit };
      dbInfo = info;
      const lineOut = o.ci || !process.stderr.isTTY ? o.out : (line: string) => progress.log(line);
      await runSweep({ sut, options: o.sweep, signal: abort.signal, log: (l) => progress.log(l) }, points, (done, label, r) => {
        progress.update(done, label);
        if (r === undefined) return;
        results.push(r);
        const row = roundRow(toRow(r, references(results), o.sweep, dbColumns));
        lineOut(`[${done}/${points.length}] ${pointLine(row)}`);
      });
    } finally {
      progress.update(results.length, abort.signal.aborted ? 'interrupted: stopping the system' : 'stopping the system');
      await sut.close();
    }
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Points not run (interrupted, or the system failed to start) are rows too, so the CSV lists the whole plan.
  const interrupted = abort.signal.aborted || results.length < points.length;
  for (const point of points.slice(results.length)) results.push(notRun(point));
  const refs = references(results);
  const rows = results.map((r) => roundRow(toRow(r, refs, o.sweep, dbColumns)));
  // `latest` moves only to a complete run: an interrupted one is kept, but is not what `latest` shows.
  const dir = createResultsDir(o.resultsRoot, 'bench', startedAt, { latest: !interrupted });
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
  o.out(`${interrupted ? `INTERRUPTED after ${results.filter((r) => !r.interrupted).length} of ${points.length} points: partial results in` : 'results in'} ${path.relative(process.cwd(), dir.path) || dir.path}`);
  return { dir: dir.path, rows, interrupted, summary };
}

/** The row of a point the run never reached. */
function notRun(point: Point): PointResult {
  return {
    point, resolvedIsolation: point.isolation, gapHandling: undefined, drainMsgsPerS: undefined, publishReqPerS: undefined, load: undefined,
    lagP50Ms: undefined, lagP99Ms: undefined, cpuLoadgenS: undefined, cpuServerS: undefined, cpuWorkerS: undefined, cpuDbS: undefined,
    cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: undefined, db: undefined },
    messagesPublished: undefined, messagesConsumed: undefined, ackedOffset: undefined, maxOffset: undefined, drained: undefined,
    interrupted: true, check: undefined, gapsPassed: undefined, gapsPassedByTimeout: undefined, durationS: 0, note: 'not run: the run was interrupted',
  };
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
