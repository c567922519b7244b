// `eob micro`: tinybench per-operation costs on the real code paths: one publish call, one consume transaction
// at several batch sizes (the same BatchConsumer the worker loops over), one server round trip.
import { randomUUID } from 'node:crypto';
import { Bench, type Task } from 'tinybench';
import { SystemUnderTest } from '../harness/systemUnderTest.ts';
import { SqlPublisher } from '../system/pubsub/sqlPublisher.ts';
import { validateBatchSize } from '../system/pubsub/consumeLoop.ts';
import { createOffsetBatchConsumer, DEFAULT_OFFSET_SUBSCRIBER_OPTIONS } from '../system/pubsub/offsetSubscriber.ts';
import { counterHandler } from '../system/counterHandler.ts';
import { mariadbEngine } from '../system/sql/mariadb/engine.ts';
import { createPool, executorOf } from '../system/db/mariadb/pool.ts';
import { redactDatabaseUrl } from '../system/db/urlRedaction.ts';
import { ensureSchema } from '../system/sql/mariadb/schema.ts';
import type { OutgoingMessage } from '../system/pubsub/types.ts';
import { toCsv, type CsvRow } from '../bench/csv.ts';
import { collectDatabaseInfo, collectVersions, createResultsDir } from '../bench/resultsDir.ts';
import { projectRoot } from '../projectRoot.ts';
import { intInRange } from '../validate.ts';

export interface MicroOptions {
  mysqlUrl: string | undefined;
  /** Consume transactions are measured at each of these batch sizes. */
  batchSizes: number[];
  /** tinybench's time budget per task (ms); each task also runs at least `minIterations` times. */
  timeMs: number;
  minIterations: number;
  resultsRoot: string;
  log: (line: string) => void;
}

export const DEFAULT_MICRO_OPTIONS: Omit<MicroOptions, 'mysqlUrl' | 'log' | 'resultsRoot'> = {
  batchSizes: [1, 100, 1000],
  // 2 s per task keeps `make micro` near half a minute for the seven tasks, with >= 100 samples for the cheap ones.
  timeMs: 2_000,
  minIterations: 20,
};

export function validateMicroOptions(o: MicroOptions): MicroOptions {
  for (const b of o.batchSizes) validateBatchSize('micro', 'batchSizes', b);
  intInRange('micro', 'timeMs', o.timeMs, 100, 600_000);
  intInRange('micro', 'minIterations', o.minIterations, 1, 1_000_000);
  return o;
}

const COLUMNS = [
  'task',
  'messages_per_op',
  'ops_per_s',
  'msgs_per_s',
  'latency_mean_ms',
  'latency_p50_ms',
  'latency_p99_ms',
  'samples',
  'db_version',
  'db_flush_log_at_trx_commit',
] as const;

function counterMessages(n: number, counters: readonly string[]): OutgoingMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    uuid: randomUUID(),
    payload: { counter_uuid: counters[i % counters.length] },
    metadata: { request_id: randomUUID() },
  }));
}

export interface MicroResult {
  path: string;
  rows: CsvRow[];
}

export async function runMicro(options: MicroOptions): Promise<MicroResult> {
  const o = validateMicroOptions(options);
  const sut = await SystemUnderTest.start({ databaseUrl: o.mysqlUrl, log: o.log });
  const pool = createPool({ url: sut.databaseUrl, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'micro', multipleStatements: true });
  try {
    const db = executorOf(pool);
    const counters = Array.from({ length: 1_000 }, () => randomUUID());
    const publisher = new SqlPublisher(db, mariadbEngine);
    const bench = new Bench({ time: o.timeMs, iterations: o.minIterations, warmupIterations: 5 });
    const perOp = new Map<string, number>();

    const publishTopic = `micro_publish_${randomUUID().slice(0, 8)}`;
    await ensureSchema(db, { topic: publishTopic, topicSchema: 'offset', dedup: false });
    for (const n of [1, 100]) {
      const name = `publish (one INSERT of ${n})`;
      perOp.set(name, n);
      bench.add(name, async () => {
        await publisher.publish(publishTopic, counterMessages(n, counters));
      });
    }

    for (const batchSize of o.batchSizes) {
      const topic = `micro_consume_${batchSize}_${randomUUID().slice(0, 8)}`;
      await ensureSchema(db, { topic, topicSchema: 'offset', dedup: false });
      const consumer = await createOffsetBatchConsumer(pool, {
        ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
        topic,
        batchSize,
        handler: counterHandler('batched', mariadbEngine),
      });
      const name = `consume transaction (batch ${batchSize}, ${DEFAULT_OFFSET_SUBSCRIBER_OPTIONS.isolation}, aggregated upsert)`;
      perOp.set(name, batchSize);
      bench.add(
        name,
        async () => {
          const pause = await consumer.consumeOnce();
          if (pause !== 0) throw new Error(`${name}: no full batch was consumed (is something else reading ${topic}?)`);
        },
        {
          // The batch to consume is published before each iteration, outside the timed window.
          beforeEach: async () => publisher.publish(topic, counterMessages(batchSize, counters)),
          afterAll: () => consumer.release(),
        },
      );
    }

    const server = await sut.startServer({});
    const counter = counters[0]!;
    for (const route of ['count', 'noop'] as const) {
      const name = `server round trip (POST /${route}, keep-alive)`;
      perOp.set(name, 1);
      bench.add(name, async () => {
        const response = await fetch(`${server.baseUrl}/${route}/${counter}`, { method: 'POST' });
        await response.arrayBuffer();
        if (response.status !== 204) throw new Error(`${name}: HTTP ${response.status}`);
      });
    }

    o.log(`micro: ${bench.tasks.length} tasks, ${o.timeMs} ms each`);
    await bench.run();
    const info = await collectDatabaseInfo(db);
    const rows = bench.tasks.map((task: Task): CsvRow => {
      const r = task.result;
      if (r.state !== 'completed') throw new Error(`micro: task "${task.name}" did not complete (${r.state}${'error' in r ? `: ${String(r.error)}` : ''})`);
      const messages = perOp.get(task.name) ?? 1;
      const opsPerS = 1_000 / r.latency.mean;
      return {
        task: task.name,
        messages_per_op: messages,
        ops_per_s: Math.round(opsPerS),
        msgs_per_s: Math.round(opsPerS * messages),
        latency_mean_ms: round3(r.latency.mean),
        latency_p50_ms: round3(r.latency.p50),
        latency_p99_ms: round3(r.latency.p99),
        samples: r.latency.samplesCount,
        db_version: info.db_version,
        db_flush_log_at_trx_commit: info.db_flush_log_at_trx_commit,
      };
    });
    const dir = createResultsDir(o.resultsRoot, 'micro');
    dir.writeText('results.csv', toCsv(COLUMNS, rows));
    dir.writeJson('options.json', { options: { ...o, mysqlUrl: o.mysqlUrl === undefined ? undefined : redactDatabaseUrl(o.mysqlUrl), log: undefined }, versions: await collectVersions(projectRoot()), database: info });
    return { path: dir.path, rows };
  } finally {
    await pool.end().catch(() => undefined);
    await sut.close();
  }
}

function round3(x: number): number {
  return Math.round(x * 1_000) / 1_000;
}
