// One bench run from resolved options to files: starts the system (per engine, one after the other), runs the
// sweep with progress, and writes results/bench/<timestamp>/ (results.csv, options.json, charts, and with two
// engines engines.txt, the side-by-side table; index.html) even when interrupted.
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { SystemUnderTest, type SystemOptions, type Topology } from '../../harness/systemUnderTest.ts';
import { LEVELS_OF_ENGINE, type ReplicationLevel } from '../../harness/replication/replicaPair.ts';
import { redactDatabaseUrl } from '../../system/db/urlRedaction.ts';
import type { EngineName } from '../../harness/engines.ts';
import { planRun, pointLabel, type Point } from './plan.ts';
import { references, toRow, CSV_COLUMNS, type DbColumns } from './results.ts';
import { runSweep } from './sweep.ts';
import { PUBLISHED_BASELINE_MSGS_PER_S, type SweepOptions } from './sweepOptions.ts';
import { type PointResult } from './points.ts';
import { createResultsDir, collectVersions } from '../../bench/resultsDir.ts';
import { projectRoot } from '../../projectRoot.ts';
import { createProgress } from '../../bench/progress.ts';
import { toCsv, type CsvRow } from '../../bench/csv.ts';
import { drainChartsSpec, endToEndChartSpec, renderSvg, svgToPng, type EngineDrain, type EndToEndPoint } from '../../bench/chart.ts';
import { writeHtmlReport } from '../../bench/htmlReport.ts';
import { benchPage } from './benchPage.ts';
import { engineComparison, engineComparisonTable } from '../../bench/engineComparison.ts';
import { chartRules, drainChartData, endToEndChartData, medianRows, pointLine, summaryTable } from '../../bench/report.ts';
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
  /**
   * Topologies to run MariaDB's points on, one system each, one after the other (default: single). `galera` adds
   * a private 3-node Galera cluster after the single server, so every point has its 1-node figure in the same
   * run: rows carry `topology`, and the side-by-side table gives the cluster's figures over the single server's.
   */
  topologies?: readonly Topology[];
  /**
   * With topology primary-replica: the replication levels to run, one system each, after the single server
   * (default: every level of the engine). Rows carry `topology` as `primary-replica <level>`.
   */
  replicationLevels?: readonly ReplicationLevel[];
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
  const engines = o.engines ?? [o.system.engine ?? 'mariadb'];
  const topologies = o.topologies ?? ['single'];
  const plan = planRun(o.sweep, engines);
  // Each engine on each topology it has (a cluster is MariaDB's), the single server first.
  // A primary/replica pair once per replication level, each level a system of its own.
  const plans = plan.engines.flatMap((p) =>
    topologies
      .filter((t) => t !== 'galera' || p.engine === 'mariadb')
      .flatMap((topology): { engine: EngineName; points: Point[]; topology: Topology; replication?: ReplicationLevel }[] =>
        topology !== 'primary-replica'
          ? [{ ...p, topology }]
          : LEVELS_OF_ENGINE[p.engine].filter((l) => o.replicationLevels === undefined || o.replicationLevels.includes(l)).map((replication) => ({ ...p, topology, replication })),
      ),
  );
  const estimates = plans.flatMap((p) => {
    const first = plan.engines.findIndex((e) => e.engine === p.engine);
    const before = plan.engines.slice(0, first).reduce((n, e) => n + e.points.length, 0);
    return plan.estimatesS.slice(before, before + p.points.length);
  });
  const total = estimates.length;
  const startedAt = new Date();
  const progress = createProgress({
    title: 'bench',
    unit: 'points',
    total,
    ci: o.ci,
    estimateS: (i) => estimates[i]!,
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
  const runs: EngineRun[] = [];
  try {
    let before = 0;
    for (const { engine, points, topology, replication } of plans) {
      const shownTopology = topologyColumn(topology, replication);
      const run: EngineRun = { engine, topology, replication, points, results: [], dbColumns: { engine, topology: shownTopology, server_version: 'unknown', db_flush_log_at_trx_commit: undefined }, database: undefined };
      runs.push(run);
      const label = systemLabel(run);
      if (!abort.signal.aborted) await runEngine(o, run, abort.signal, progress, before, total, plans.length > 1 ? `${label}: ` : '');
      before += points.length;
    }
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Points not run (interrupted, or the system failed to start) are rows too, so the CSV lists the whole plan.
  const interrupted = abort.signal.aborted || runs.some((r) => r.results.length < r.points.length);
  const rowsByRun = runs.map((run) => {
    const results = [...run.results, ...run.points.slice(run.results.length).map(notRun)];
    // Ratios are against this engine's own references: a drain is compared with the SQL ceiling of its engine.
    const refs = references(results);
    return { engine: run.engine, label: systemLabel(run), results, rows: results.map((r) => roundRow(toRow(r, refs, o.sweep, run.dbColumns))) };
  });
  const rows = rowsByRun.flatMap((r) => r.rows);
  const measured = rowsByRun.reduce((n, r) => n + r.results.filter((x) => !x.interrupted).length, 0);
  // `latest` moves only to a complete run: an interrupted one is kept, but is not what `latest` shows.
  const dir = createResultsDir(o.resultsRoot, 'bench', startedAt, { latest: !interrupted });
  dir.writeText('results.csv', toCsv(CSV_COLUMNS, rows));
  const versions = await collectVersions(projectRoot());
  dir.writeJson('options.json', {
    scenario: 'bench',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    interrupted,
    engines,
    topologies,
    sweep: o.sweep,
    points: Object.fromEntries(plans.map((p) => [systemLabel(p), p.points.map(pointLabel)])),
    system: { databaseUrl: shownUrl(o.system), quietChildren: o.system.quietChildren },
    // One entry per engine: its version and durability settings.
    databases: Object.fromEntries(runs.map((r) => [systemLabel(r), r.database])),
    versions,
    publishedBaselineMsgsPerS: PUBLISHED_BASELINE_MSGS_PER_S,
  });
  // With repetitions, the charts and the summary show each point's median (per engine); results.csv keeps every run.
  const repeated = rows.some((r) => typeof r.repetition === 'number' && r.repetition > 1);
  const shownRuns = rowsByRun.map((r) => ({ engine: r.label, rows: repeated ? medianRows(r.rows) : r.rows }));
  const shown = shownRuns.flatMap((r) => r.rows);
  if (repeated) dir.writeText('medians.csv', toCsv(CSV_COLUMNS, shown));
  await writeCharts(dir.writeText, shownRuns).catch((e: Error) => o.out(`charts not written: ${e.message}`));
  const mariadbRun = runs.find((r) => r.engine === 'mariadb');
  writeHtmlReport(
    dir,
    benchPage({
      rows: shown,
      medians: repeated,
      sweep: o.sweep,
      startedAt,
      finishedAt: new Date(),
      interrupted,
      // Each engine's version (the page's database line), MariaDB's flush setting where it ran.
      database: { db_version: runs.map((r) => `${systemLabel(r)} ${r.dbColumns.server_version}`).join('; '), db_flush_log_at_trx_commit: mariadbRun?.dbColumns.db_flush_log_at_trx_commit },
      comparison: shownRuns.length > 1 ? engineComparison(shown) : undefined,
      gitCommit: versions.gitCommit,
      files: readdirSync(dir.path),
    }),
  );
  const parts = shownRuns.map((r) => `${shownRuns.length > 1 ? `== ${r.engine} ==\n` : ''}${summaryTable(r.rows)}`);
  if (shownRuns.length > 1) {
    const table = engineComparisonTable(shown);
    dir.writeText('engines.txt', `${table}\n`);
    parts.push(`== ${topologies.length > 1 ? 'systems' : 'engines'} side by side (same run) ==\n${table}`);
  }
  const summary = `${repeated ? 'medians over the repetitions (every run: results.csv)\n' : ''}${parts.join('\n\n')}`;
  o.out(summary);
  o.out(`${interrupted ? `INTERRUPTED after ${measured} of ${total} points: partial results in` : 'results in'} ${path.relative(process.cwd(), dir.path) || dir.path}`);
  return { dir: dir.path, rows, interrupted, summary };
}

/** One engine's part of a run on one topology: its plan, what was measured, and what it ran on. */
interface EngineRun {
  engine: EngineName;
  topology: Topology;
  /** primary-replica: the level this system replicates at. */
  replication: ReplicationLevel | undefined;
  points: Point[];
  results: PointResult[];
  dbColumns: DbColumns;
  database: unknown;
}

/** Runs one engine's points on a system of its own; fills `run` as it goes, so an interruption keeps what was measured. */
async function runEngine(
  o: BenchRunOptions,
  run: EngineRun,
  signal: AbortSignal,
  progress: ReturnType<typeof createProgress>,
  before: number,
  total: number,
  prefix: string,
): Promise<void> {
  const sut = await SystemUnderTest.start({ ...o.system, engine: run.engine, topology: run.topology, replication: run.replication, handleSignals: false, log: (line) => progress.log(`${prefix}${line}`) });
  try {
    const facts = await sut.serverFacts();
    const flush = facts.settings.innodb_flush_log_at_trx_commit;
    run.dbColumns = { engine: run.engine, topology: topologyColumn(run.topology, run.replication), server_version: facts.version, db_flush_log_at_trx_commit: typeof flush === 'number' ? flush : undefined };
    run.database = facts;
    const lineOut = o.ci || !process.stderr.isTTY ? o.out : (line: string) => progress.log(line);
    await runSweep({ sut, options: o.sweep, signal, log: (l) => progress.log(`${prefix}${l}`) }, run.points, (done, label, r) => {
      progress.update(before + done, `${prefix}${label}`);
      if (r === undefined) return;
      run.results.push(r);
      const row = roundRow(toRow(r, references(run.results), o.sweep, run.dbColumns));
      lineOut(`[${before + done}/${total}] ${prefix}${pointLine(row)}`);
    });
  } finally {
    progress.update(before + run.results.length, signal.aborted ? 'interrupted: stopping the system' : 'stopping the system');
    await sut.close();
  }
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

/** `mariadb`, `mariadb galera` for a cluster, `mariadb primary-replica semi-sync`: how the terminal, the charts and the tables name a system. */
function systemLabel(run: { engine: EngineName; topology: Topology; replication?: ReplicationLevel | undefined }): string {
  return run.topology === 'single' ? run.engine : `${run.engine} ${topologyColumn(run.topology, run.replication)}`;
}

/** The `topology` column: the topology, and a pair's replication level beside it. */
function topologyColumn(topology: Topology, replication: ReplicationLevel | undefined): string {
  return replication === undefined ? topology : `${topology} ${replication}`;
}

function shownUrl(system: Partial<SystemOptions>): string {
  const url = system.databaseUrl;
  return url === undefined ? 'private database' : redactDatabaseUrl(url);
}

/** Ratios (`ratio_*`, `cpu_vs_*`) keep 3 decimals: a goal such as 2.0x of an HTTP answer is read at the second; the rest 1. */
function roundRow(row: CsvRow): CsvRow {
  const out: CsvRow = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'number' ? round(v, k.startsWith('ratio') || k.startsWith('cpu_vs_') ? 3 : 1) : v;
  return out;
}

/** The two charts; with several engines the drain chart has a panel per engine and each end-to-end row its engine's name. */
async function writeCharts(write: (name: string, text: string | Buffer) => string, runs: readonly { engine: string; rows: readonly CsvRow[] }[]): Promise<void> {
  const all = runs.flatMap((r) => r.rows);
  const rules = chartRules(all, PUBLISHED_BASELINE_MSGS_PER_S);
  const named = runs.length > 1;
  const tag = (engine: string, text: string) => (named ? `${engine} ${text}` : text);
  const drains: EngineDrain[] = [];
  const bars: EndToEndPoint[] = [];
  for (const run of runs) {
    const drain = drainChartData(run.rows);
    if (drain.points.length + drain.ceiling.length > 0) drains.push({ engine: run.engine, points: drain.points, ceiling: drain.ceiling });
    bars.push(...endToEndChartData(run.rows).map((b) => ({ ...b, point: tag(run.engine, b.point) })));
  }
  if (drains.length > 0) {
    // One engine: one chart; several: one panel per engine, each with its own colours and its black ceiling.
    const svg = await renderSvg(drainChartsSpec(drains, rules.drain));
    write('drain.svg', svg);
    write('drain.png', svgToPng(svg));
  }
  if (bars.length > 0) {
    const svg = await renderSvg(endToEndChartSpec(bars, rules.endToEnd));
    write('end-to-end.svg', svg);
    write('end-to-end.png', svgToPng(svg));
  }
}
