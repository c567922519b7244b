// eob micro: tinybench per-operation costs -> results/micro/<timestamp>/results.csv.
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { DEFAULT_MICRO_OPTIONS, runMicro } from '../scenarios/micro.ts';
import { projectRoot } from '../projectRoot.ts';
import { mysqlUrlOption, optionalMysqlUrl } from './sharedOptions.ts';

interface MicroArgs {
  'mysql-url'?: string;
  'batch-sizes': string;
  'time-ms': number;
  'results-dir': string;
}

export const command: CommandModule<object, MicroArgs> = {
  command: 'micro',
  describe: 'per-operation costs (tinybench): one publish, one consume transaction at batch 1/100/1000, one server round trip',
  builder: (y) =>
    y
      .option('mysql-url', { ...mysqlUrlOption, describe: 'use this server instead of a private one (default: $MYSQL_URL)' })
      .option('batch-sizes', { type: 'string', default: DEFAULT_MICRO_OPTIONS.batchSizes.join(','), describe: 'consume batch sizes, comma-separated' })
      .option('time-ms', { type: 'number', default: DEFAULT_MICRO_OPTIONS.timeMs, describe: 'time budget per task' })
      .option('results-dir', { type: 'string', default: path.join(projectRoot(), 'results') }),
  handler: async (args) => {
    const batchSizes = args['batch-sizes'].split(',').map((s) => Number(s.trim()));
    if (batchSizes.some((b) => !Number.isInteger(b) || b < 1)) {
      throw new Error(`--batch-sizes must be whole numbers >= 1, comma-separated (got "${args['batch-sizes']}")`);
    }
    const result = await runMicro({
      ...DEFAULT_MICRO_OPTIONS,
      mysqlUrl: optionalMysqlUrl(args['mysql-url']),
      batchSizes,
      timeMs: args['time-ms'],
      resultsRoot: args['results-dir'],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const width = Math.max(...result.rows.map((r) => String(r.task).length));
    process.stdout.write(`${'task'.padEnd(width)}  ${'ops/s'.padStart(8)}  ${'msgs/s'.padStart(9)}  ${'p50 ms'.padStart(8)}  ${'p99 ms'.padStart(8)}\n`);
    for (const r of result.rows) {
      process.stdout.write(
        `${String(r.task).padEnd(width)}  ${String(r.ops_per_s).padStart(8)}  ${String(r.msgs_per_s).padStart(9)}  ${String(r.latency_p50_ms).padStart(8)}  ${String(r.latency_p99_ms).padStart(8)}\n`,
      );
    }
    process.stdout.write(`results: ${path.join(result.path, 'results.csv')}\n`);
  },
};
