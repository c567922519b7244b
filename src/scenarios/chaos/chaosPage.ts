// The page of a chaos run (index.html beside results.csv): PASS or FAIL, one verdict line per case (what it
// had to show and what it showed), the per-case table, each case's timeline, the configuration and machine.
import { machineFacts, tableFromRows, type HtmlReport, type ReportTable, type RowStatus } from '../../bench/htmlReport.ts';
import type { Witness } from './witnesses.ts';
import type { CsvRow } from '../../bench/csv.ts';
import { caseFileName, type CaseResult } from './caseResult.ts';
import { drainKillCsvRow, type DrainKillResult } from './drainKill.ts';

/** The worker-kill drains side by side: what each drainer's guarantee gave under the same kills. */
const DRAIN_KILL_COLUMNS: [string, string][] = [
  ['drainer', 'drainer'],
  ['version', 'version'],
  ['duplicated', 'duplicated'],
  ['lost', 'lost'],
  ['guarantee', 'guarantee'],
  ['jobs', 'jobs'],
  ['kills', 'kills'],
  ['killed_at_jobs', 'killed at (jobs done)'],
  ['jobs_freed_by_recovery', 'freed by recovery'],
  ['jobs_completed', 'completed'],
  ['counter_total', 'counter total'],
  ['expected', 'expected'],
  ['passed', 'passed'],
  ['why', 'why'],
];

const COLUMNS: [string, string][] = [
  ['case', 'case'],
  ['expected_verdict', 'expected'],
  ['verdict', 'verdict'],
  ['passed', 'passed'],
  ['requests_ok', 'ok'],
  ['requests_fail', 'fail'],
  ['requests_unknown', 'unknown'],
  ['messages', 'messages'],
  ['total', 'counter total'],
  ['lost', 'lost'],
  ['duplicated', 'dup'],
  ['publish_duplicated', 'publish dup'],
  ['ack_publish_lost', 'ack publish lost'],
  ['never_counted', 'never counted'],
  ['skipped', 'skipped'],
  ['counted_twice', 'counted twice'],
  ['published_twice', 'published twice'],
  ['unknown_outcome', 'unknown outcome'],
  ['seed', 'seed'],
  ['gaps_passed', 'gaps passed'],
  ['faults_total', 'faults'],
  ['faults_not_recovered', 'not recovered'],
  ['drain_msgs_per_s', 'drain msgs/s'],
  ['drain_during_faults_msgs_per_s', 'drain during faults'],
  ['case_duration_s', 'duration s'],
  ['why', 'why'],
];

export interface ChaosPageInput {
  profile: string;
  passed: boolean;
  results: readonly CaseResult[];
  /** The worker-kill drains of ours and of the peers (PostgreSQL runs). */
  drainKills?: readonly DrainKillResult[];
  rows: readonly CsvRow[];
  facts: [string, string][];
  files: readonly string[];
}

export function chaosPage(i: ChaosPageInput): HtmlReport {
  const drainKills = i.drainKills ?? [];
  const passedCount = i.results.filter((r) => r.passed).length + drainKills.filter((r) => r.passed).length;
  const total = i.results.length + drainKills.length;
  return {
    title: `chaos, ${i.profile} profile`,
    outcome: i.passed
      ? { ok: true, text: `PASS: ${passedCount}/${total} case(s) as expected: the exactly-once cases valid under faults, every control caught` }
      : { ok: false, text: `FAIL: ${total - passedCount} of ${total} case(s) not as expected` },
    verdicts: [
      ...i.results.map((r) => ({
        ok: r.passed,
        text: `${r.passed ? 'PASS' : 'FAIL'} ${r.case.name}: expected ${r.expected}, got ${r.verdict?.verdict ?? 'no verdict'}: ${r.why}`,
      })),
      ...drainKills.map((r) => ({ ok: r.passed, text: `${r.passed ? 'PASS' : 'FAIL'} ${r.case.name}: expected ${r.case.expected}: ${r.why}` })),
    ],
    tables: [
      ...(drainKills.length === 0
        ? []
        : [
            tableFromRows(
              'A worker SIGKILLed in the middle of a drain, the counter task: duplicates of ours and of the peers (every column: drain-kill.csv)',
              drainKills.map(drainKillCsvRow),
              DRAIN_KILL_COLUMNS,
              (row) => (row.passed !== true ? 'bad' : row.duplicated === 0 ? 'good' : 'neutral'),
            ),
          ]),
      tableFromRows('One row per case (every column: results.csv)', i.rows, COLUMNS, (row) => (row.passed === true ? 'good' : 'bad')),
      ...witnessTable(i.results),
    ],
    charts: i.results
      .map((r) => `timeline-${caseFileName(r)}.png`)
      .filter((f) => i.files.includes(f))
      .map((file) => ({
        file,
        caption: `${file.replace(/^timeline-|\.png$/g, '')}: requests answered ok, messages published and acked, and the counter total over time; phases shaded, faults in red`,
      })),
    facts: [['profile', i.profile], ...i.facts, ...machineFacts()],
    files: (
      [
        ['results.csv', 'one row per case, every column'],
        ['drain-kill.csv', 'the worker-kill drains of ours and of the peers, one row each'],
        ['verdict.json', "each case's full verdict: reasons, the faults with their recovery times, the phases"],
        ['history.jsonl', 'every request attempt and its outcome (ok / fail / unknown), one JSON object a line'],
        ['cases', "one folder per case: anomalies.jsonl (a witness per anomaly), and what eob check re-checks: case.json, history.jsonl, snapshot.json, events.jsonl, faults.json"],
        ['options.json', 'the resolved options and cases, versions, the git commit'],
      ] as const
    )
      .filter(([f]) => i.files.includes(f))
      .map(([file, label]) => ({ file, label })),
  };
}

/** Witnesses shown per case on the page (every one is in cases/<case>/anomalies.jsonl). */
export const WITNESSES_SHOWN = 3;

/**
 * The first witnesses of each case, its own kind first: a control's must name the mechanism that broke it,
 * then any illegal kind, and the tolerated ones (unknown outcomes) last.
 */
export function pageWitnesses(r: CaseResult): Witness[] {
  const rank = (k: string) => (k === r.case.expected ? 0 : r.case.tolerates.includes(k as never) ? 2 : 1);
  return [...(r.witnesses ?? [])].sort((a, b) => rank(a.kind) - rank(b.kind)).slice(0, WITNESSES_SHOWN);
}

function witnessTable(results: readonly CaseResult[]): ReportTable[] {
  const rows = results.flatMap((r) =>
    pageWitnesses(r).map((w) => ({ cells: [caseFileName(r), w.label, `${w.amount}${w.exact ? '' : ' (of the candidates)'}`, w.sentence], status: (r.case.expected === w.kind ? 'neutral' : r.case.tolerates.includes(w.kind) ? 'neutral' : 'bad') as RowStatus })),
  );
  if (rows.length === 0) return [];
  return [{ caption: `Witnesses: the first ${WITNESSES_SHOWN} anomalies of each case, the kind it must show first (all of them: cases/<case>/anomalies.jsonl)`, columns: ['case', 'kind', 'amount', 'what happened'], rows }];
}
