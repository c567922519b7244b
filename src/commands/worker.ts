// eob worker: consumes the counter topic and increments counters exactly once.
import type { CommandModule } from 'yargs';
import { readEnvironment } from '../config.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../system/worker.ts';
import { HANDLER_NAMES, type HandlerName } from '../system/counterHandler.ts';
import { GAP_HANDLINGS, type GapHandling } from '../system/pubsub/offsetSubscriber.ts';
import { GAP_PROOFS, type GapProof } from '../system/pubsub/gapTracker.ts';
import { ACK_MODES, parseIsolationLevel, type AckMode, type SubscriberStats } from '../system/pubsub/types.ts';
import { gapCounts, WORKER_GAPS_LINE } from '../system/workerGapLine.ts';
import { armFailpointsFrom, databaseUrlOption, failpointOption, mysqlUrlOption, resolveDatabaseUrl } from './sharedOptions.ts';
import { describeError } from '../system/db/database.ts';
import { TOPIC_MODES } from '../system/pubsub/types.ts';
import type { TopicMode } from '../system/pubsub/types.ts';

interface WorkerArgs {
  'database-url'?: string;
  'mysql-url'?: string;
  mode: string;
  topic: string;
  'consumer-group': string;
  'batch-size': number;
  'poll-interval-ms': number;
  'caught-up-pause-ms': number;
  isolation?: string;
  'ack-mode': string;
  concurrency: number;
  'event-log'?: string;
  handler?: string;
  /** Deprecated alias of --handler, kept for one release ("profile" now means only the run size). */
  profile?: string;
  'gap-handling'?: string;
  'poison-after-failures': number;
  'gap-proof': string;
  'gap-timeout-ms': number;
  graceful: boolean;
  'start-timeout-ms': number;
  'prune-every': number;
  'prune-batch-size': number;
  'dedup-window-s': number;
  'metrics-port'?: number;
  failpoint?: string | string[];
}

const d = DEFAULT_WORKER_OPTIONS;

export const command: CommandModule<object, WorkerArgs> = {
  command: 'worker',
  describe: 'consume the counter topic and increment counters in the transaction that acks the messages',
  builder: (y) =>
    y
      .option('database-url', databaseUrlOption)
      .option('mysql-url', { ...mysqlUrlOption, describe: 'the same as --database-url (kept for MariaDB URLs; default: $MYSQL_URL)' })
      .option('mode', { choices: TOPIC_MODES, default: d.mode, describe: 'offset: one group, in order; queue: row acks, parallel consumers' })
      .option('topic', { type: 'string', default: d.topic })
      .option('consumer-group', { type: 'string', default: d.consumerGroup, describe: 'offset mode: the group whose acked offset moves' })
      .option('batch-size', { type: 'number', default: d.batchSize, describe: 'messages per consume transaction' })
      .option('poll-interval-ms', { type: 'number', default: d.pollIntervalMs, describe: 'sleep after an empty poll' })
      .option('caught-up-pause-ms', { type: 'number', default: d.caughtUpPauseMs, describe: 'sleep after a batch that did not fill --batch-size (caught up): larger batches, less CPU per message, that much more lag' })
      .option('isolation', { type: 'string', describe: 'READ-UNCOMMITTED | READ-COMMITTED | REPEATABLE-READ | SERIALIZABLE (default: READ-COMMITTED; with --handler watermill SERIALIZABLE on MariaDB, REPEATABLE-READ on PostgreSQL)' })
      .option('ack-mode', { choices: ACK_MODES, default: d.ackMode, describe: 'transactional (exactly-once); after-commit / before-commit are the controls' })
      .option('concurrency', { type: 'number', default: d.concurrency, describe: 'queue mode: consumers in this process' })
      .option('event-log', { type: 'string', describe: 'append a JSON line per batch read / committed / rolled back and per hole passed to this file (the chaos checker\'s evidence; one write a batch)' })
      .option('handler', { choices: HANDLER_NAMES, describe: `batched: one aggregated upsert per batch; watermill: the reference consumer [default: ${d.handler}]` })
      .option('profile', { choices: HANDLER_NAMES, deprecated: 'use --handler', describe: 'the old name of --handler' })
      .option('gap-handling', { choices: GAP_HANDLINGS, describe: 'offset mode: contiguous (safe; default; on PostgreSQL the xmin rule) or none (watermill-sql on MySQL; on PostgreSQL the read without the xmin rule; loses messages)' })
      .option('poison-after-failures', {
        type: 'number',
        default: d.poisonAfterFailures,
        describe: 'failed deliveries after which a message the handler rejects is moved to eob_poison_<topic> (list: eob poison list); 0 retries it forever',
      })
      .option('gap-proof', {
        choices: GAP_PROOFS,
        default: d.gapProof,
        describe: 'offset mode: what proves a hole permanent: statements (covers the InnoDB allocator window; on a Galera node, on every member of the cluster), statements-node-local (on this node only; loses messages published through other Galera nodes, and on a replica those its applier brings in late; a control). On a replica the default waits instead of proving (only --gap-timeout-ms passes a hole there) or innodb-trx (INNODB_TRX alone; misses the window; a control)',
      })
      .option('gap-timeout-ms', {
        type: 'number',
        default: d.gapTimeoutMs,
        describe: 'offset mode: a BOUND, not a proof: a hole waited this long is passed without proof and counted as gapsPassedByTimeout (lost if it commits later)',
      })
      .option('graceful', { type: 'boolean', default: d.graceful, describe: 'on SIGTERM finish the batch in hand; --no-graceful exits at once' })
      .option('start-timeout-ms', { type: 'number', default: d.startTimeoutMs, describe: 'how long start-up retries an unreachable database or a race with other processes setting it up at the same moment' })
      .option('prune-every', { type: 'number', default: d.pruneEveryS, describe: 'run `eob prune` every so many seconds (0: never): removes acked messages and old dedup rows' })
      .option('prune-batch-size', { type: 'number', default: d.pruneBatchSize, describe: 'rows per DELETE of those prunes' })
      .option('dedup-window-s', { type: 'number', default: d.pruneDedupWindowS, describe: 'prunes remove publish-dedup ids older than this; a retry older than the window publishes again' })
      .option('metrics-port', { type: 'number', describe: 'serve GET /metrics (Prometheus text, docs/metrics.md) on 127.0.0.1 at this port; 0 picks a free one (printed in the started line) [default: off]' })
      .option('failpoint', failpointOption),
  handler: async (args) => {
    const env = readEnvironment();
    const failpoints = armFailpointsFrom(args.failpoint);
    let isolation;
    if (args.isolation !== undefined) {
      isolation = parseIsolationLevel(args.isolation);
      if (isolation === undefined) throw new Error(`--isolation: unknown level "${args.isolation}"; use READ-UNCOMMITTED, READ-COMMITTED, REPEATABLE-READ or SERIALIZABLE`);
    }
    const log = env.quiet ? () => undefined : d.log;
    const handler = resolveHandler(args.handler, args.profile);
    const databaseUrl = resolveDatabaseUrl(args['database-url'], args['mysql-url']);
    const options = {
      databaseUrl,
      mode: args.mode as TopicMode,
      topic: args.topic,
      consumerGroup: args['consumer-group'],
      batchSize: args['batch-size'],
      pollIntervalMs: args['poll-interval-ms'],
      caughtUpPauseMs: args['caught-up-pause-ms'],
      isolation,
      ackMode: args['ack-mode'] as AckMode,
      concurrency: args.concurrency,
      eventLog: args['event-log'],
      handler,
      gapHandling: args['gap-handling'] as GapHandling | undefined,
      poisonAfterFailures: args['poison-after-failures'],
      gapProof: args['gap-proof'] as GapProof,
      gapTimeoutMs: args['gap-timeout-ms'],
      // Printed even when quiet: the harness sums each process's last line into gaps_passed(_by_timeout).
      onGapPassed: (stats: SubscriberStats) => process.stdout.write(`${WORKER_GAPS_LINE} ${JSON.stringify(gapCounts(stats))}\n`),
      onConflictRetry: (stats: SubscriberStats) => process.stdout.write(`${WORKER_GAPS_LINE} ${JSON.stringify(gapCounts(stats))}\n`),
      graceful: args.graceful,
      startTimeoutMs: args['start-timeout-ms'],
      pruneEveryS: args['prune-every'],
      pruneBatchSize: args['prune-batch-size'],
      pruneDedupWindowS: args['dedup-window-s'],
      metricsPort: args['metrics-port'],
      log,
    };
    const worker = await startWorker(options);
    const { log: _log, onGapPassed: _onGapPassed, onConflictRetry: _onConflictRetry, ...shown } = options;
    // The harness waits for this line: it is printed even when quiet.
    process.stdout.write(
      `worker started ${JSON.stringify({ ...shown, databaseUrl: databaseUrl.redacted, ...worker.settings, gapProof: worker.gapProof ?? null, metricsUrl: worker.metricsUrl ?? null, failpoints: failpoints ?? null, pid: process.pid })}\n`,
    );
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      if (!options.graceful) process.exit(0);
      log(`worker: ${signal}, finishing the batch in hand`);
      worker
        .close()
        .then(() => {
          // Printed even when quiet: the harness reads the gap counts from it (gaps passed, and by what).
          process.stdout.write(`worker stopped ${JSON.stringify({ ...worker.subscription.stats, ...(worker.pruned === undefined ? {} : { pruned: worker.pruned }) })}\n`);
          process.exit(0);
        })
        .catch((error: unknown) => {
          process.stderr.write(`worker: stopping failed: ${describeError(error)}\n`);
          process.exit(1);
        });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    try {
      await worker.subscription.done;
    } catch (error) {
      process.stderr.write(`worker: ${describeError(error)}\n`);
      process.exit(1);
    }
  },
};

/** --handler, or its deprecated alias --profile (a warning on stderr); both given must agree. */
export function resolveHandler(handler: string | undefined, profile: string | undefined): HandlerName {
  if (profile !== undefined) {
    if (handler !== undefined && handler !== profile) {
      throw new Error(`--handler ${handler} and --profile ${profile} disagree: --profile is the old name of --handler; give only --handler`);
    }
    process.stderr.write('worker: --profile is deprecated, use --handler (batched|watermill)\n');
  }
  return (handler ?? profile ?? d.handler) as HandlerName;
}
