// What a chaos run writes: results.csv (one row per case), history.jsonl, verdict.json,
// options.json, a timeline chart per case (timelineChart.ts), index.html (chaosPage.ts), and the summary table.
import { readdirSync } from 'node:fs';
import { toCsv, type CsvRow } from '../../bench/csv.ts';
import { writeHtmlReport } from '../../bench/htmlReport.ts';
import { chaosPage } from './chaosPage.ts';
import { timelineChartSpec } from './timelineChart.ts';
import { renderSvg, svgToPng } from '../../bench/chart.ts';
import { percentile } from '../../bench/metrics.ts';
import type { ResultsDir } from '../../bench/resultsDir.ts';
import { countOutcomes, summarizeRequests, writeHistoryJsonl } from './history.ts';
import { FAULT_NAMES } from './nemesis.ts';
import { defaultIsolation, gapHandlingFor } from '../../system/worker.ts';
import { caseFileName, type CaseResult } from './caseResult.ts';
import { ANOMALY_KINDS, anomalyColumn, type Verdict } from './checker.ts';
import { illegalKinds } from './chaosMatrix.ts';
import { writeCaseRecord } from './caseRecord.ts';
import { DRAIN_KILL_CSV_COLUMNS, drainKillCsvRow, type DrainKillResult } from './drainKill.ts';

export const CHAOS_CSV_COLUMNS: readonly string[] = [
  'case',
  'profile',
  'mode',
  'batch_size',
  'ack_mode',
  'isolation',
  'handler_profile',
  'gap_handling',
  'gap_proof',
  'worker_processes',
  'consumers_per_worker',
  'coalesce',
  'dedup',
  'retry_client',
  'http_concurrency',
  'requests',
  'warmup_requests',
  'raw_publishers',
  'raw_requests',
  'faults_total',
  ...FAULT_NAMES.map((f) => `faults_${f.replace(/-/g, '_')}`),
  'faults_not_recovered',
  'allocator_stalls',
  'allocator_stalls_in_window',
  'requests_ok',
  'requests_fail',
  'requests_unknown',
  'attempts',
  'raw_ok',
  'raw_fail',
  'raw_unknown',
  'messages',
  'total',
  'lost',
  'duplicated',
  'publish_duplicated',
  ...ANOMALY_KINDS.map(anomalyColumn),
  'tolerated_kinds',
  'illegal_kinds',
  'consumer_event_log',
  'poisoned',
  'gaps_passed',
  'gaps_passed_by_timeout',
  'conflict_retries',
  'verdict',
  'expected_verdict',
  'passed',
  'drain_msgs_per_s',
  'drain_during_faults_msgs_per_s',
  ...FAULT_NAMES.flatMap((f) => [`recovery_${f.replace(/-/g, '_')}_median_ms`, `recovery_${f.replace(/-/g, '_')}_max_ms`]),
  'quiesced',
  'case_duration_s',
  'engine',
  'topology',
  'server_version',
  'seed',
  'why',
];

export function csvRow(r: CaseResult, profile: string): CsvRow {
  const c = r.case;
  const v = r.verdict;
  const raw = countOutcomes(summarizeRequests(r.history.filter((a) => a.via === 'sql')).values());
  const row: CsvRow = {
    case: c.name,
    profile,
    mode: c.mode,
    batch_size: c.worker.batchSize,
    ack_mode: c.worker.ackMode ?? 'transactional',
    isolation: c.worker.isolation ?? defaultIsolation(c.mode, c.worker.handler ?? 'batched', r.engine),
    handler_profile: c.worker.handler ?? 'batched',
    gap_handling: gapHandlingFor(c.mode, c.worker.handler ?? 'batched', c.worker.gapHandling, r.engine),
    // PostgreSQL's read needs no gap proof (it reads below xmin only).
    gap_proof: r.engine !== 'mariadb' || gapHandlingFor(c.mode, c.worker.handler ?? 'batched', c.worker.gapHandling, r.engine) !== 'contiguous' ? undefined : (c.worker.gapProof ?? 'statements'),
    worker_processes: c.workers,
    consumers_per_worker: c.worker.concurrency ?? 1,
    coalesce: c.server.coalesce ?? true,
    dedup: c.server.dedup ?? false,
    retry_client: c.retry,
    http_concurrency: c.concurrency,
    requests: c.requests,
    warmup_requests: warmupRequests(r),
    raw_publishers: c.raw?.publishers ?? 0,
    raw_requests: c.raw?.requests ?? 0,
    faults_total: r.faults.length,
    faults_not_recovered: r.faults.filter((f) => f.recoveryMs === undefined).length,
    allocator_stalls: sumProof(r, 'stalls'),
    allocator_stalls_in_window: sumProof(r, 'inWindow'),
    requests_ok: v?.requests.ok,
    requests_fail: v?.requests.fail,
    requests_unknown: v?.requests.unknown,
    attempts: v?.requests.attempts,
    raw_ok: raw.ok,
    raw_fail: raw.fail,
    raw_unknown: raw.unknown,
    messages: v?.messages.total,
    total: v?.total,
    lost: v?.lost,
    duplicated: v?.duplicated,
    publish_duplicated: v?.publishDuplicated,
    tolerated_kinds: c.tolerates.join(' '),
    illegal_kinds: illegalKinds(c).join(' '),
    consumer_event_log: v?.consumerEvidence,
    poisoned: r.poisoned,
    gaps_passed: r.gapsPassed,
    gaps_passed_by_timeout: r.gapsPassedByTimeout,
    conflict_retries: r.conflictRetries,
    verdict: r.interrupted === true ? 'interrupted' : (v?.verdict ?? 'error'),
    expected_verdict: r.expected,
    passed: r.passed,
    drain_msgs_per_s: r.drainMsgsPerS,
    drain_during_faults_msgs_per_s: r.drainDuringFaultsMsgsPerS,
    quiesced: r.quiesced,
    case_duration_s: r.durationMs / 1000,
    engine: r.engine,
    topology: r.topology ?? 'single',
    server_version: r.databaseVersion,
    seed: r.seed,
    why: r.why,
  };
  for (const k of ANOMALY_KINDS) row[anomalyColumn(k)] = v?.anomalies[k];
  for (const f of FAULT_NAMES) {
    const key = f.replace(/-/g, '_');
    const events = r.faults.filter((e) => e.fault === f);
    row[`faults_${key}`] = events.length;
    const recoveries = events.map((e) => e.recoveryMs).filter((x): x is number => x !== undefined);
    row[`recovery_${key}_median_ms`] = percentile(recoveries, 50);
    row[`recovery_${key}_max_ms`] = recoveries.length === 0 ? undefined : Math.max(...recoveries);
  }
  return row;
}

/**
 * Distinct requests of the warm-up phase. They go through the same checker as the load's, so requests_ok +
 * requests_fail + requests_unknown = requests + warmup_requests + raw_requests.
 */
export function warmupRequests(r: CaseResult): number {
  return new Set(r.history.filter((a) => a.phase === 'warmup').map((a) => a.requestId)).size;
}

/**
 * The verdict as verdict.json shows it: the end-to-end figure (every request counted exactly once) says why it
 * was not checked, or why it does not hold, instead of a bare `"holds": false` beside a valid verdict.
 */
export function presentVerdict(v: Verdict | undefined): unknown {
  if (v === undefined) return undefined;
  const e = v.endToEnd;
  const endToEnd = !e.checked
    ? {
        checked: false,
        why: 'not checked: only a case whose client retries against a deduplicating server promises every request counted exactly once; here a fail or unknown outcome may leave its request uncounted, which the counter bound allows',
        distinctRequestIds: e.distinctRequestIds,
        total: e.total,
      }
    : e.holds
      ? { checked: true, holds: true, distinctRequestIds: e.distinctRequestIds, total: e.total }
      : {
          checked: true,
          holds: false,
          why: `total ${e.total} != ${e.distinctRequestIds} distinct request ids (${v.requests.fail} fail, ${v.requests.unknown} unknown outcome(s) left after retries)`,
          distinctRequestIds: e.distinctRequestIds,
          total: e.total,
        };
  // The findings are the witnesses' source; each case's anomalies.jsonl has them, explained.
  const { findings: _findings, ...shown } = v;
  return { ...shown, endToEnd };
}

/** db-stall-allocator's stalls (or those proven in the window) over the case; empty when it did not run. */
function sumProof(r: CaseResult, key: 'stalls' | 'inWindow'): number | undefined {
  const proofs = r.faults.flatMap((f) => (f.proof === undefined ? [] : [f.proof[key]]));
  return proofs.length === 0 ? undefined : proofs.reduce((a, b) => a + b, 0);
}

/** Run facts for the page, from what options.json records. */
function chaosFacts(dir: ResultsDir, options: unknown): [string, string][] {
  const o = (options ?? {}) as { backend?: string; faults?: string[] | null; duration_s?: number; database_versions?: string[]; versions?: { gitCommit?: string }; seed?: number | null; runs?: number | null };
  return [
    ['started', dir.startedAt.toISOString()],
    ['duration', o.duration_s === undefined ? '?' : `${Math.round(o.duration_s)} s`],
    ['backend', o.backend ?? '?'],
    ['faults', o.faults === null || o.faults === undefined ? "each case's own list" : o.faults.join(', ')],
    [
      'fault schedules',
      o.seed === null || o.seed === undefined
        ? 'the fixed round-robin (no seed)'
        : o.runs !== null && o.runs !== undefined
          ? `${o.runs} random schedule(s) from seed ${o.seed} (run i: seed ${o.seed} + i)`
          : `drawn from seed ${o.seed}`,
    ],
    ['database', (o.database_versions ?? []).join(', ') || '?'],
    ['git commit', o.versions?.gitCommit ?? 'unknown'],
  ];
}

export interface ChaosRunSummary {
  profile: string;
  results: CaseResult[];
  /** The worker-kill drains of ours and of the peers (PostgreSQL), written to drain-kill.csv and the page. */
  drainKills?: DrainKillResult[];
  passed: boolean;
}

export async function writeChaosResults(dir: ResultsDir, summary: ChaosRunSummary, options: unknown): Promise<void> {
  const rows = summary.results.map((r) => csvRow(r, summary.profile));
  dir.writeText('results.csv', toCsv(CHAOS_CSV_COLUMNS, rows));
  await writeHistoryJsonl(`${dir.path}/history.jsonl`, summary.results.flatMap((r) => r.history));
  dir.writeJson('verdict.json', {
    passed: summary.passed,
    profile: summary.profile,
    cases: summary.results.map((r) => ({
      case: r.case.name,
      engine: r.engine,
      server_version: r.databaseVersion,
      description: r.case.description,
      expected: r.expected,
      passed: r.passed,
      why: r.why,
      verdict: presentVerdict(r.verdict),
      faults: r.faults,
      skipped_faults: r.skippedFaults,
      phases: r.phases,
      quiesced: r.quiesced,
      error: r.error,
    })),
  });
  dir.writeJson('options.json', options);
  for (const r of summary.results) await writeCaseRecord(dir.path, r);
  const drainKills = summary.drainKills ?? [];
  if (drainKills.length > 0) dir.writeText('drain-kill.csv', toCsv(DRAIN_KILL_CSV_COLUMNS, drainKills.map(drainKillCsvRow)));
  for (const r of summary.results) {
    if (r.timeline.length === 0) continue;
    const svg = await renderSvg(timelineChartSpec(r));
    dir.writeText(`timeline-${caseFileName(r)}.svg`, svg);
    dir.writeText(`timeline-${caseFileName(r)}.png`, svgToPng(svg));
  }
  writeHtmlReport(dir, chaosPage({ ...summary, drainKills, rows, facts: chaosFacts(dir, options), files: readdirSync(dir.path) }));
}

/** ok/fail/unknown of the raw SQL INSERTs, or '-' for a case without raw publishers. */
function rawCell(r: CaseResult): string {
  const raw = r.history.filter((a) => a.via === 'sql');
  if (raw.length === 0) return '-';
  const n = countOutcomes(summarizeRequests(raw).values());
  return `${n.ok}/${n.fail}/${n.unknown}`;
}

/** The kinds found, e.g. "skipped 35, unknown-outcome 2", or "none". */
export function anomalyCell(v: Verdict): string {
  const found = ANOMALY_KINDS.filter((k) => v.anomalies[k] > 0).map((k) => `${k} ${v.anomalies[k]}`);
  return found.length === 0 ? 'none' : found.join(', ');
}

/** One finished case in a line, for the terminal: result, verdict, counts that reconcile, recovery, time. */
export function caseLine(r: CaseResult, index: number, total: number): string {
  const v = r.verdict;
  const rec = r.faults.map((f) => f.recoveryMs).filter((x): x is number => x !== undefined);
  const parts = [
    `${r.passed ? 'PASS' : 'FAIL'} (expected ${r.expected}, verdict ${r.interrupted === true ? 'interrupted' : (v?.verdict ?? 'error')})`,
    v === undefined ? undefined : `requests ok/fail/unknown ${v.requests.ok}/${v.requests.fail}/${v.requests.unknown} (warm-up ${warmupRequests(r)} of them)`,
    v === undefined ? undefined : `lost ${v.lost}, dup ${v.duplicated}`,
    v === undefined ? undefined : `anomalies: ${anomalyCell(v)}`,
    r.faults.length === 0 ? 'no faults' : `${r.faults.length} fault(s), recovery p50/max ${Math.round(percentile(rec, 50) ?? 0)}/${rec.length === 0 ? '-' : Math.max(...rec)} ms`,
    `${Math.round(r.durationMs / 1000)} s`,
    r.seed === undefined ? undefined : `seed ${r.seed}`,
  ].filter((x): x is string => x !== undefined);
  return `[${index}/${total}] ${r.engine === 'mariadb' ? '' : `${r.engine} `}${r.case.name}: ${parts.join(', ')}${r.passed ? '' : `: ${r.why}`}`;
}

export { caseFileName };

/** The table printed at the end of a run; an engine column when the run had several. */
export function summaryTable(results: readonly CaseResult[]): string {
  const engines = new Set(results.map((r) => r.engine));
  const withEngine = engines.size > 1 || !engines.has('mariadb');
  const header = [...(withEngine ? ['engine'] : []), 'case', 'expected', 'verdict', 'ok/fail/unknown', 'of which warm-up', 'of which raw sql', 'msgs', 'total', 'lost', 'dup', 'pub_dup', 'anomalies', 'gaps passed (timeout)', 'faults', 'recovery p50/max ms', 'result'];
  const rows = results.map((r) => {
    const v = r.verdict;
    const rec = r.faults.map((f) => f.recoveryMs).filter((x): x is number => x !== undefined);
    return [
      ...(withEngine ? [r.engine] : []),
      r.case.name,
      r.expected,
      r.interrupted === true ? 'interrupted' : (v?.verdict ?? 'error'),
      v === undefined ? '-' : `${v.requests.ok}/${v.requests.fail}/${v.requests.unknown}`,
      String(warmupRequests(r)),
      rawCell(r),
      String(v?.messages.total ?? '-'),
      String(v?.total ?? '-'),
      String(v?.lost ?? '-'),
      String(v?.duplicated ?? '-'),
      String(v?.publishDuplicated ?? '-'),
      v === undefined ? '-' : anomalyCell(v),
      r.gapsPassed === undefined ? '-' : `${r.gapsPassed} (${r.gapsPassedByTimeout ?? 0})`,
      String(r.faults.length),
      rec.length === 0 ? '-' : `${Math.round(percentile(rec, 50) ?? 0)}/${Math.max(...rec)}`,
      r.passed ? 'PASS' : 'FAIL',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
