// The ENGINE=all side-by-side table: each engine's figures from its own rows, none borrowed from the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineComparisonTable, rowsByEngine } from '../src/bench/engineComparison.ts';
import { CSV_COLUMNS } from '../src/scenarios/throughput/results.ts';
import type { CsvRow } from '../src/bench/csv.ts';
import { CHAOS_CSV_COLUMNS, caseFileName, csvRow, summaryTable } from '../src/scenarios/chaos/chaosReport.ts';
import { chaosMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';
import type { CaseResult } from '../src/scenarios/chaos/caseResult.ts';

const drain = (engine: string, rate: number, over: CsvRow = {}): CsvRow => ({
  engine, server_version: engine === 'postgres' ? '15.20' : '10.11.6-MariaDB', kind: 'drain', mode: 'offset', batch_size: 1000,
  handler_profile: 'batched', ack_mode: 'transactional', verdict: 'valid', drain_msgs_per_s: rate,
  cpu_worker_s: 2, cpu_db_s: 4, messages_consumed: 20_000, ...over,
});
const ceiling = (engine: string, rate: number): CsvRow => ({ engine, kind: 'sql-ceiling', batch_size: 1000, drain_msgs_per_s: rate, verdict: 'valid' });
const e2e = (engine: string, published: number): CsvRow => ({
  engine, kind: 'end-to-end', mode: 'offset', handler_profile: 'batched', ack_mode: 'transactional', verdict: 'valid',
  publish_req_per_s: published, drain_msgs_per_s: published, messages_published: 10_000, cpu_server_s: 1, cpu_worker_s: 0.5, cpu_db_s: 2, cpu_loadgen_s: 1.5,
});

test('every bench row carries its engine and server version', () => {
  assert.ok(CSV_COLUMNS.includes('engine'));
  assert.ok(CSV_COLUMNS.includes('server_version'));
});

test('one column per engine, in the order they ran, each from its own rows, and the second over the first', () => {
  const rows = [ceiling('mariadb', 40_000), drain('mariadb', 36_000), e2e('mariadb', 3_000), ceiling('postgres', 50_000), drain('postgres', 30_000), e2e('postgres', 2_500)];
  assert.deepEqual([...rowsByEngine(rows).keys()], ['mariadb', 'postgres']);
  const table = engineComparisonTable(rows);
  const line = (label: string) => table.split('\n').find((l) => l.startsWith(label))?.split(/\s{2,}/).slice(1);
  assert.match(table.split('\n')[0]!, /mariadb\s+postgres\s+postgres \/ mariadb$/);
  assert.deepEqual(line('server version'), ['10.11.6-MariaDB', '15.20', '-']);
  assert.deepEqual(line('SQL ceiling, batch 1000'), ['40000', '50000', '1.25']);
  assert.deepEqual(line('drain offset, batch 1000'), ['36000', '30000', '0.83']);
  assert.deepEqual(line('drain / SQL ceiling, batch 1000'), ['0.90', '0.60', '0.67'], "each drain against its own engine's ceiling");
  const withRatio = engineComparisonTable([...rows.slice(0, 1), { ...rows[1]!, ratio_vs_sql_ceiling: 0.5, paired_sql_ceiling_msgs_per_s: 72_000 }, ...rows.slice(2)]);
  assert.match(withRatio, /drain \/ SQL ceiling, batch 1000\s+0\.50\s+0\.60/, "the row's own ratio (against the paired ceiling too) where the bench wrote it");
  assert.match(withRatio, /paired SQL ceiling, batch 1000 \(msgs\/s\)\s+72000\s+-\s+-/);
  assert.deepEqual(line('drain worker CPU per msg (us)'), ['100', '100', '1.00']);
  assert.deepEqual(line('end to end published'), ['3000', '2500', '0.83']);
  assert.deepEqual(line('end to end db CPU per msg (us)'), ['200', '200', '1.00']);
});

test('a cluster or a replicated pair is a system of its own: the same engine on several topologies, each over the single server', () => {
  const galera = (r: CsvRow): CsvRow => ({ ...r, topology: 'galera' });
  const rows = [
    { ...drain('mariadb', 40_000), topology: 'single' },
    { ...e2e('mariadb', 4_000), topology: 'single' },
    galera(drain('mariadb', 10_000)),
    galera(e2e('mariadb', 1_000)),
  ];
  assert.deepEqual([...rowsByEngine(rows).keys()], ['mariadb', 'mariadb galera']);
  const table = engineComparisonTable(rows);
  assert.match(table.split('\n')[0]!, /mariadb\s+mariadb galera\s+mariadb galera \/ mariadb$/);
  assert.match(table, /drain offset, batch 1000 \(msgs\/s\)\s+40000\s+10000\s+0\.25/);
  assert.match(table, /end to end published \(req\/s\)\s+4000\s+1000\s+0\.25/);
  // Three systems (single, then each replication level of a pair): each later one over the first.
  const pair = (level: string, r: CsvRow): CsvRow => ({ ...r, topology: `primary-replica ${level}` });
  const three = engineComparisonTable([rows[0]!, pair('async', drain('mariadb', 30_000)), pair('semi-sync', drain('mariadb', 20_000))]);
  assert.match(three.split('\n')[0]!, /mariadb primary-replica async \/ mariadb\s+mariadb primary-replica semi-sync \/ mariadb$/);
  assert.match(three, /drain offset, batch 1000 \(msgs\/s\)\s+40000\s+30000\s+20000\s+0\.75\s+0\.50/);
});

test('an invalid drain is never the figure shown, and a missing engine figure is a dash', () => {
  const rows = [drain('mariadb', 90_000, { verdict: 'invalid' }), drain('mariadb', 20_000), drain('postgres', 10_000)];
  const table = engineComparisonTable(rows);
  assert.match(table, /drain offset, batch 1000 \(msgs\/s\)\s+20000\s+10000/);
  assert.match(table, /SQL ceiling, batch 1000 \(msgs\/s\)\s+-\s+-/);
  assert.match(table, /points valid \/ checked\s+1 \/ 2\s+1 \/ 1/);
});

test('every chaos row carries its engine and server version; file names keep the engines apart', () => {
  assert.ok(CHAOS_CSV_COLUMNS.includes('engine') && CHAOS_CSV_COLUMNS.includes('server_version'));
  const [c] = chaosMatrix('quick', undefined, 'postgres');
  const result = {
    case: c!, engine: 'postgres', verdict: undefined, expected: 'valid', passed: false, why: 'x', faults: [], skippedFaults: [], history: [],
    timeline: [], phases: [], quiesced: false, drainMsgsPerS: undefined, drainDuringFaultsMsgsPerS: undefined, durationMs: 1,
    databaseVersion: '15.20 (Debian 15.20-0+deb12u1)', poisoned: undefined, gapsPassed: undefined, gapsPassedByTimeout: undefined, error: undefined,
  } satisfies CaseResult;
  const row = csvRow(result, 'quick');
  assert.equal(row.engine, 'postgres');
  assert.equal(row.server_version, '15.20 (Debian 15.20-0+deb12u1)');
  assert.equal(caseFileName(result), 'postgres-eo-offset-b1000');
  assert.equal(caseFileName({ ...result, engine: 'mariadb' }), 'eo-offset-b1000', "MariaDB's file names stay as they were");
  assert.match(summaryTable([result]).split('\n')[0]!, /^\| engine +\| case/);
});
