// What MariaDB's json_valid CHECK costs the database per inserted row. In MariaDB `JSON` is LONGTEXT with
// CHECK (json_valid(col)), so watermill's schema (payload and metadata JSON) validates both columns of every row.
// Inserts the server's own messages (payload {counter_uuid}, metadata {request_id}) in multi-row INSERTs of
// --rows rows, autocommit, into a table with the watermill schema and one with LONGTEXT columns (no CHECK),
// interleaved, and reads mariadbd's CPU from /proc around each round.
//
//   MYSQL_URL=... node --import tsx scripts/jsonCheckCost.ts [--rows 25] [--statements 4000] [--reps 3] [--conns 4]
//
// A benchmark, not a test; needs a private server (eob db start): it creates and drops two tables of its own.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { readEnvironment } from '../src/config.ts';
import { processCpuSeconds } from '../src/harness/processCpu.ts';

const arg = (name: string, fallback: string): number => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i === -1 ? fallback : process.argv[i + 1]);
};
const ROWS = arg('rows', '25');
const STATEMENTS = arg('statements', '4000');
const REPS = arg('reps', '3');
const CONNS = arg('conns', '4');
const url = readEnvironment().mysqlUrl;
if (url === undefined) throw new Error('set MYSQL_URL to a private server (eob db start prints it)');
const port = new URL(url).port;
const pid = readdirSync('/proc').find((e) => /^\d+$/.test(e) && (() => {
  try {
    const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    return (cmd[0] ?? '').endsWith('mariadbd') && cmd.includes(`--port=${port}`);
  } catch {
    return false;
  }
})());
if (pid === undefined) throw new Error(`no mariadbd with --port=${port}`);

const pool = mysql.createPool({ uri: url, connectionLimit: CONNS });
const tables = {
  json: 'eob_jsoncheck_json',
  longtext: 'eob_jsoncheck_text',
};
for (const [kind, t] of Object.entries(tables)) {
  const type = kind === 'json' ? 'JSON' : 'LONGTEXT';
  await pool.query(`DROP TABLE IF EXISTS ${t}`);
  await pool.query(`CREATE TABLE ${t} (\`offset\` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \`uuid\` VARCHAR(36) NOT NULL,
    \`created_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \`payload\` ${type} DEFAULT NULL, \`metadata\` ${type} DEFAULT NULL) ENGINE=InnoDB`);
}
const [[check]] = (await pool.query(`SHOW CREATE TABLE ${tables.json}`)) as unknown as [[Record<string, string>]];
process.stdout.write(`${(check['Create Table'] ?? '').split('\n').filter((l) => /payload|metadata|CHECK/i.test(l)).join(' | ')}\n`);

function statement(table: string): string {
  const values: string[] = [];
  for (let i = 0; i < ROWS; i += 1) values.push(`('${randomUUID()}', '{"counter_uuid":"${randomUUID()}"}', '{"request_id":"${randomUUID()}"}')`);
  return `INSERT INTO ${table} (\`uuid\`, \`payload\`, \`metadata\`) VALUES ${values.join(', ')}`;
}
async function round(table: string): Promise<number> {
  const sqls = Array.from({ length: STATEMENTS }, () => statement(table));
  let next = 0;
  const before = processCpuSeconds(Number(pid)) as number;
  await Promise.all(Array.from({ length: CONNS }, async () => {
    while (next < sqls.length) await pool.query(sqls[next++] as string);
  }));
  return (((processCpuSeconds(Number(pid)) as number) - before) * 1e6) / (STATEMENTS * ROWS);
}
const results: Record<string, number[]> = { json: [], longtext: [] };
for (let rep = 0; rep < REPS; rep += 1) {
  const order = rep % 2 === 0 ? (['json', 'longtext'] as const) : (['longtext', 'json'] as const);
  for (const kind of order) results[kind]?.push(await round(tables[kind]));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [kind, xs] of Object.entries(results)) process.stdout.write(`${kind.padEnd(9)} database us/row: ${xs.map((x) => x.toFixed(2)).join(', ')}  median ${median(xs).toFixed(2)}\n`);
for (const t of Object.values(tables)) await pool.query(`DROP TABLE IF EXISTS ${t}`);
await pool.end();
