// The worker's and the server's process specs: argv is derived from the typed spec by one flag table, every flag in it is one
// the worker's CLI defines, the CLI parses that argv back to the spec's values, and the settings the harness
// records (resolveWorkerSpec) are the ones the worker resolves itself.
import test from 'node:test';
import assert from 'node:assert/strict';
import yargs, { type Argv } from 'yargs';
import { command as workerCommand } from '../src/commands/worker.ts';
import { WORKER_FLAGS, resolveWorkerSpec, workerArgv, type WorkerSpec } from '../src/system/workerSpec.ts';
import { DEFAULT_WORKER_OPTIONS, validateWorkerOptions } from '../src/system/worker.ts';
import { command as serverCommand } from '../src/commands/server.ts';
import { SERVER_FLAGS, serverArgv, type ServerSpec } from '../src/system/server/spec.ts';

function parseWorkerArgv(argv: readonly string[]): Record<string, unknown> {
  const builder = workerCommand.builder as (y: Argv) => Argv;
  return builder(yargs().exitProcess(false).strict()).parseSync(argv.slice(1)) as Record<string, unknown>;
}

const FULL: Required<WorkerSpec> = {
  mode: 'queue',
  topic: 'orders',
  batchSize: 250,
  pollIntervalMs: 7,
  caughtUpPauseMs: 3,
  isolation: 'REPEATABLE READ',
  consumerGroup: 'g1',
  ackMode: 'after-commit',
  concurrency: 3,
  eventLog: '/tmp/eob-events.jsonl',
  handler: 'watermill',
  gapHandling: 'none',
  poisonAfterFailures: 9,
  gapProof: 'innodb-trx',
  gapTimeoutMs: 1234,
  graceful: false,
  pruneEveryS: 60,
  pruneBatchSize: 500,
  pruneDedupWindowS: 3600,
  metricsPort: 9464,
  failpoints: ['consume-after-ack=2', 'consume-after-read=5'],
};

test('every field of the spec has a flag the worker CLI defines, and the CLI parses argv back to the spec', () => {
  const parsed = parseWorkerArgv(workerArgv(FULL));
  assert.equal(parsed.mode, 'queue');
  assert.equal(parsed.topic, 'orders');
  assert.equal(parsed['batch-size'], 250);
  assert.equal(parsed['poll-interval-ms'], 7);
  assert.equal(parsed.isolation, 'REPEATABLE-READ');
  assert.equal(parsed['consumer-group'], 'g1');
  assert.equal(parsed['ack-mode'], 'after-commit');
  assert.equal(parsed.concurrency, 3);
  assert.equal(parsed['event-log'], '/tmp/eob-events.jsonl');
  assert.equal(parsed.handler, 'watermill');
  assert.equal(parsed['gap-handling'], 'none');
  assert.equal(parsed['poison-after-failures'], 9);
  assert.equal(parsed['gap-proof'], 'innodb-trx');
  assert.equal(parsed['gap-timeout-ms'], 1234);
  assert.equal(parsed.graceful, false);
  assert.equal(parsed['prune-every'], 60);
  assert.equal(parsed['prune-batch-size'], 500);
  assert.equal(parsed['dedup-window-s'], 3600);
  assert.equal(parsed['metrics-port'], 9464);
  assert.equal(parsed.failpoint, 'consume-after-ack=2,consume-after-read=5');
  assert.deepEqual(Object.keys(WORKER_FLAGS).sort(), Object.keys(FULL).sort(), 'the table covers every field of the spec');
});

test('an empty spec gives bare argv, and the CLI then parses to the worker defaults', () => {
  assert.deepEqual(workerArgv({}), ['worker']);
  const parsed = parseWorkerArgv(['worker']);
  assert.equal(parsed['batch-size'], DEFAULT_WORKER_OPTIONS.batchSize);
  assert.equal(parsed['poll-interval-ms'], DEFAULT_WORKER_OPTIONS.pollIntervalMs);
  assert.equal(parsed.mode, DEFAULT_WORKER_OPTIONS.mode);
});

test('resolveWorkerSpec gives the settings the worker itself resolves', () => {
  for (const spec of [{}, { mode: 'queue' as const }, { handler: 'watermill' as const }, { isolation: 'SERIALIZABLE' as const, gapHandling: 'none' as const }]) {
    const own = validateWorkerOptions({ ...DEFAULT_WORKER_OPTIONS, ...spec, databaseUrl: 'mysql://u:p@127.0.0.1:1/eob' });
    const resolved = resolveWorkerSpec(spec);
    assert.equal(resolved.isolation, own.isolation, JSON.stringify(spec));
    assert.equal(resolved.gapHandling, own.gapHandling, JSON.stringify(spec));
    assert.equal(resolved.batchSize, own.batchSize);
  }
  assert.equal(resolveWorkerSpec({}).isolation, 'READ COMMITTED');
  assert.equal(resolveWorkerSpec({ handler: 'watermill' }).isolation, 'SERIALIZABLE');
  assert.equal(resolveWorkerSpec({ handler: 'watermill' }).gapHandling, 'none');
  assert.equal(resolveWorkerSpec({ mode: 'queue' }).gapHandling, undefined);
});

test('every field of the server spec has a flag the server CLI defines, and the CLI parses argv back to the spec', () => {
  const full: Required<ServerSpec> = {
    topic: 'orders', topicSchema: 'queue', coalesce: false, coalesceMaxBatch: 500, coalesceLingerMs: 3, dedup: true, poolSize: 9, metrics: false,
    failpoints: ['publish-after-insert=3', 'publish-before-commit=4'],
  };
  const argv = serverArgv(8081, full);
  const builder = serverCommand.builder as (y: Argv) => Argv;
  const parsed = builder(yargs().exitProcess(false).strict()).parseSync(argv.slice(1)) as Record<string, unknown>;
  assert.equal(parsed.port, 8081);
  assert.equal(parsed.topic, 'orders');
  assert.equal(parsed.mode, 'queue');
  // The old spelling still parses (a deprecated alias of --mode).
  const old = builder(yargs().exitProcess(false).strict()).parseSync(['--topic-schema', 'queue']) as Record<string, unknown>;
  assert.equal(old['topic-schema'], 'queue');
  assert.equal(parsed.coalesce, false);
  assert.equal(parsed['coalesce-max-batch'], 500);
  assert.equal(parsed['coalesce-linger-ms'], 3);
  assert.equal(parsed.dedup, true);
  assert.equal(parsed['pool-size'], 9);
  assert.equal(parsed.metrics, false);
  assert.deepEqual(parsed.failpoint, ['publish-after-insert=3', 'publish-before-commit=4']);
  assert.deepEqual(Object.keys(SERVER_FLAGS).sort(), Object.keys(full).sort(), 'the table covers every field of the spec');
});
