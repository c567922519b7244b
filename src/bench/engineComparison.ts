// The side-by-side table of an ENGINE=all bench run: the same figures for each engine, measured in the same
// run, one column per engine. Pure: built from the CSV rows (their `engine` column), so it can be rebuilt from a
// results.csv and tested without a database. CPU per message is CPU seconds over the messages of that row,
// in microseconds: the figure that explains a difference in rates on a shared machine.
import type { CsvRow } from './csv.ts';
import { bestRow } from './report.ts';

const num = (v: CsvRow[string]): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The batch size the comparison's drain and SQL-ceiling lines are read at (the worker's default). */
export const COMPARISON_BATCH_SIZE = 1000;

interface Line {
  label: string;
  value: (rows: readonly CsvRow[]) => string;
}

const fixed = (v: number | undefined, digits = 0): string => (v === undefined ? '-' : digits === 0 ? String(Math.round(v)) : v.toFixed(digits));

/** The row's own cpu_<process>_us_per_msg where the bench wrote it (its measuring window); else CPU s / messages. */
function cpuPerMessage(r: CsvRow | undefined, proc: 'server' | 'worker' | 'db' | 'loadgen', messages: CsvRow[string]): number | undefined {
  return num(r?.[`cpu_${proc}_us_per_msg`]) ?? perMessageUs(r?.[`cpu_${proc}_s`], messages);
}

function perMessageUs(cpuS: CsvRow[string], messages: CsvRow[string]): number | undefined {
  const c = num(cpuS);
  const m = num(messages);
  return c === undefined || m === undefined || m <= 0 ? undefined : (c * 1e6) / m;
}

function sqlCeilingAt(rows: readonly CsvRow[], batch: number): CsvRow | undefined {
  return rows
    .filter((r) => r.kind === 'sql-ceiling' && num(r.batch_size) === batch && num(r.drain_msgs_per_s) !== undefined)
    .sort((a, b) => (num(b.drain_msgs_per_s) ?? 0) - (num(a.drain_msgs_per_s) ?? 0))[0];
}

/** The offset-mode exactly-once drain at `batch` (batched handler, transactional acks), best of its repetitions. */
function offsetDrainAt(rows: readonly CsvRow[], batch: number): CsvRow | undefined {
  return bestRow(
    rows.filter((r) => r.mode === 'offset' && num(r.batch_size) === batch),
    'drain',
    'drain_msgs_per_s',
  );
}

const LINES: Line[] = [
  { label: 'server version', value: (rows) => String(rows.find((r) => r.server_version !== undefined)?.server_version ?? '-') },
  {
    label: 'points valid / checked',
    // Ours only: a peer's check is about the peer (PostgreSQL runs have peer points, MariaDB runs none).
    value: (rows) => {
      const ours = rows.filter((r) => r.kind !== 'peer');
      return `${ours.filter((r) => r.verdict === 'valid').length} / ${ours.filter((r) => r.verdict === 'valid' || r.verdict === 'invalid' || r.verdict === 'unknown').length}`;
    },
  },
  { label: `SQL ceiling, batch ${COMPARISON_BATCH_SIZE} (msgs/s)`, value: (rows) => fixed(num(sqlCeilingAt(rows, COMPARISON_BATCH_SIZE)?.drain_msgs_per_s)) },
  { label: `drain offset, batch ${COMPARISON_BATCH_SIZE} (msgs/s)`, value: (rows) => fixed(num(offsetDrainAt(rows, COMPARISON_BATCH_SIZE)?.drain_msgs_per_s)) },
  {
    label: `paired SQL ceiling, batch ${COMPARISON_BATCH_SIZE} (msgs/s)`,
    value: (rows) => fixed(num(offsetDrainAt(rows, COMPARISON_BATCH_SIZE)?.paired_sql_ceiling_msgs_per_s)),
  },
  {
    // The row's own ratio where the bench wrote it (against the higher of the paired and the point ceiling).
    label: `drain / SQL ceiling, batch ${COMPARISON_BATCH_SIZE}`,
    value: (rows) => {
      const row = offsetDrainAt(rows, COMPARISON_BATCH_SIZE);
      const written = num(row?.ratio_vs_sql_ceiling);
      if (written !== undefined) return written.toFixed(2);
      const drain = num(row?.drain_msgs_per_s);
      const ceiling = num(sqlCeilingAt(rows, COMPARISON_BATCH_SIZE)?.drain_msgs_per_s);
      return drain === undefined || ceiling === undefined || ceiling <= 0 ? '-' : (drain / ceiling).toFixed(2);
    },
  },
  {
    label: `drain worker CPU per msg (us), batch ${COMPARISON_BATCH_SIZE}`,
    value: (rows) => {
      const r = offsetDrainAt(rows, COMPARISON_BATCH_SIZE);
      return fixed(cpuPerMessage(r, 'worker', r?.messages_consumed));
    },
  },
  {
    label: `drain db CPU per msg (us), batch ${COMPARISON_BATCH_SIZE}`,
    value: (rows) => {
      const r = offsetDrainAt(rows, COMPARISON_BATCH_SIZE);
      return fixed(cpuPerMessage(r, 'db', r?.messages_consumed));
    },
  },
  { label: 'best drain (msgs/s)', value: (rows) => fixed(num(bestRow(rows, 'drain', 'drain_msgs_per_s')?.drain_msgs_per_s)) },
  { label: 'end to end published (req/s)', value: (rows) => fixed(num(bestRow(rows, 'end-to-end', 'publish_req_per_s')?.publish_req_per_s)) },
  { label: 'end to end drained (msgs/s)', value: (rows) => fixed(num(bestRow(rows, 'end-to-end', 'publish_req_per_s')?.drain_msgs_per_s)) },
  ...(['server', 'worker', 'db', 'loadgen'] as const).map(
    (p): Line => ({
      label: `end to end ${p} CPU per msg (us)`,
      value: (rows) => {
        const r = bestRow(rows, 'end-to-end', 'publish_req_per_s');
        return fixed(cpuPerMessage(r, p, r?.messages_published));
      },
    }),
  ),
];

/** What a row ran on: its engine, and its topology where that is not a single server (`mariadb galera`). */
export function systemOf(r: CsvRow): string {
  const engine = String(r.engine ?? 'unknown');
  return r.topology === undefined || r.topology === 'single' ? engine : `${engine} ${String(r.topology)}`;
}

/** The rows of each system (engine and topology), in the order they first appear. */
export function rowsByEngine(rows: readonly CsvRow[]): Map<string, CsvRow[]> {
  const out = new Map<string, CsvRow[]>();
  for (const r of rows) {
    const system = systemOf(r);
    out.set(system, [...(out.get(system) ?? []), r]);
  }
  return out;
}

/**
 * A plain-text table: one line per figure, one column per system (engine, or engine and topology). With two
 * or more, a column for each later system gives its figure over the first's, where both are numbers: its price
 * as a same-run ratio (a Galera cluster against one server: what certification costs per commit; each
 * replication level of a primary/replica pair against one server).
 */
export function engineComparisonTable(rows: readonly CsvRow[]): string {
  const table = engineComparison(rows);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  const lines = table.map((line) => line.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

/** The same table as cells: a header line, then one line per figure (the run page shows it as a table). */
export function engineComparison(rows: readonly CsvRow[]): string[][] {
  const engines = rowsByEngine(rows);
  const names = [...engines.keys()];
  // Every system after the first over the first (a cluster, or each replication level, against one server).
  const others = names.slice(1);
  const header = ['', ...names, ...others.map((n) => `${n} / ${names[0]}`)];
  const ratio = (a: string, b: string): string => {
    const x = Number(a);
    const y = Number(b);
    return a === '-' || b === '-' || !Number.isFinite(x) || !Number.isFinite(y) || x === 0 ? '-' : (y / x).toFixed(2);
  };
  return [
    header,
    ...LINES.map((l) => {
      const values = [...engines.values()].map((r) => l.value(r));
      return [l.label, ...values, ...values.slice(1).map((v) => ratio(values[0]!, v))];
    }),
  ];
}
