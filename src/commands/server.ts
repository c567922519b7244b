// `eob server`: the HTTP counter service (src/system/server.ts) as a process. Creates the database and the
// schema if missing, logs one line with its resolved options, and closes gracefully on SIGTERM/SIGINT.
import type { CommandModule } from 'yargs';
import { readEnvironment, resolve } from '../config.ts';
import { databaseUrlOption, mysqlUrlOption, resolveDatabaseUrl } from './sharedOptions.ts';
import { waitForDatabase } from '../system/db/waitForDatabase.ts';
import { describeError } from '../system/db/database.ts';
import { DEFAULT_HTTP_LIMITS, DEFAULT_SERVER_OPTIONS, validateServerOptions } from '../system/server/options.ts';
import { startCounterServer } from '../system/server/server.ts';
import type { HttpLimits, ServerOptions } from '../system/server/options.ts';
import { armFailpoints, parseFailpointSpec } from '../system/failpoints.ts';
import type { TopicMode } from '../system/pubsub/types.ts';


interface ServerArgs {
  'database-url'?: string;
  'mysql-url'?: string;
  host?: string;
  port?: number;
  topic?: string;
  mode?: string;
  'topic-schema'?: string;
  coalesce?: boolean;
  'coalesce-max-batch'?: number;
  'coalesce-linger-ms'?: number;
  dedup?: boolean;
  'pool-size'?: number;
  'max-queued-publishes'?: number;
  'max-publishes-per-connection'?: number;
  metrics?: boolean;
  'publish-timeout-ms'?: number;
  'query-timeout-ms'?: number;
  'lock-wait-timeout-s'?: number;
  'headers-timeout-ms'?: number;
  'request-timeout-ms'?: number;
  'keep-alive-timeout-ms'?: number;
  'max-requests-per-socket'?: number;
  'max-header-size'?: number;
  'max-connections'?: number;
  'socket-idle-timeout-ms'?: number;
  'start-timeout-ms': number;
  failpoint?: string[];
}

export const command: CommandModule<object, ServerArgs> = {
  command: 'server',
  describe: 'Run the HTTP counter service: POST /count/{uuid} publishes one message, GET /count/{uuid} reads the counter',
  builder: (y) =>
    y
      .option('database-url', databaseUrlOption)
      .option('mysql-url', { ...mysqlUrlOption, describe: 'the same as --database-url (kept for MariaDB URLs; default: $MYSQL_URL)' })
      .option('host', { type: 'string', describe: `address to listen on [default: ${DEFAULT_SERVER_OPTIONS.host}]` })
      .option('port', { type: 'number', describe: `port to listen on, 0 = any free one [default: ${DEFAULT_SERVER_OPTIONS.port}]` })
      .option('topic', { type: 'string', describe: `topic to publish to [default: ${DEFAULT_SERVER_OPTIONS.topic}]` })
      .option('mode', {
        type: 'string',
        choices: ['offset', 'queue'],
        describe: `offset: watermill_<topic>; queue: eob_queue_<topic>, as the worker's --mode [default: ${DEFAULT_SERVER_OPTIONS.topicSchema}]`,
      })
      .option('topic-schema', { type: 'string', choices: ['offset', 'queue'], deprecated: 'use --mode', describe: 'the old name of --mode' })
      .option('coalesce', {
        type: 'boolean',
        describe: `gather concurrent publishes into one multi-row INSERT (--no-coalesce: one INSERT per request) [default: ${DEFAULT_SERVER_OPTIONS.coalesce}]`,
      })
      .option('coalesce-max-batch', { type: 'number', describe: `rows per coalesced INSERT at most [default: ${DEFAULT_SERVER_OPTIONS.coalesceMaxBatch}]` })
      .option('coalesce-linger-ms', {
        type: 'number',
        describe: `how long a partial batch waits for more requests, 0 = end of the event-loop turn [default: ${DEFAULT_SERVER_OPTIONS.coalesceLingerMs}]`,
      })
      .option('dedup', {
        type: 'boolean',
        describe: 'publish de-duplication on X-Request-Id: a retry of a committed request id is answered 204 without a new message',
      })
      .option('pool-size', { type: 'number', describe: `database connections [default: ${DEFAULT_SERVER_OPTIONS.poolSize}]` })
      .option('max-queued-publishes', {
        type: 'number',
        describe: `requests waiting for the database at most; more answer 503 + Retry-After at once [default: ${DEFAULT_SERVER_OPTIONS.maxQueuedPublishes}]`,
      })
      .option('max-publishes-per-connection', {
        type: 'number',
        describe: `unanswered publishes one connection may have (pipelining); more on it answer 503 + Retry-After at once [default: ${DEFAULT_SERVER_OPTIONS.maxPublishesPerConnection}]`,
      })
      .option('metrics', {
        type: 'boolean',
        describe: `GET /metrics in Prometheus text format on the server's port (--no-metrics: off, 404) [default: ${DEFAULT_SERVER_OPTIONS.metrics}]`,
      })
      .option('publish-timeout-ms', {
        type: 'number',
        describe: `a publish not answered by then: 503 if still queued (never sent), 504 if sent (outcome unknown) [default: ${DEFAULT_SERVER_OPTIONS.publishTimeoutMs}]`,
      })
      .option('query-timeout-ms', { type: 'number', describe: `per-statement timeout on the server's pool [default: ${DEFAULT_SERVER_OPTIONS.queryTimeoutMs}]` })
      .option('lock-wait-timeout-s', {
        type: 'number',
        describe: `innodb_lock_wait_timeout of the server's sessions (a contested dedup id fails after it) [default: ${DEFAULT_SERVER_OPTIONS.lockWaitTimeoutSeconds}]`,
      })
      .option('headers-timeout-ms', { type: 'number', describe: `time to receive request headers [default: ${DEFAULT_HTTP_LIMITS.headersTimeoutMs}]` })
      .option('request-timeout-ms', { type: 'number', describe: `time to receive a whole request [default: ${DEFAULT_HTTP_LIMITS.requestTimeoutMs}]` })
      .option('keep-alive-timeout-ms', { type: 'number', describe: `idle kept-alive connections close after [default: ${DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs}]` })
      .option('max-requests-per-socket', { type: 'number', describe: `requests per connection, 0 = no limit [default: ${DEFAULT_HTTP_LIMITS.maxRequestsPerSocket}]` })
      .option('max-header-size', { type: 'number', describe: `bytes of request line + headers; more answer 431 [default: ${DEFAULT_HTTP_LIMITS.maxHeaderSize}]` })
      .option('max-connections', { type: 'number', describe: `open connections at most; more are closed at once [default: ${DEFAULT_HTTP_LIMITS.maxConnections}]` })
      .option('socket-idle-timeout-ms', { type: 'number', describe: `a connection with no traffic is closed after [default: ${DEFAULT_HTTP_LIMITS.socketIdleTimeoutMs}]` })
      .option('start-timeout-ms', { type: 'number', default: 30_000, describe: 'how long start-up retries an unreachable database (it may be starting or restarting) or a race with workers setting it up at the same moment' })
      .option('failpoint', {
        type: 'string',
        array: true,
        describe: 'name=N: die (SIGKILL) the Nth time the point is reached, e.g. publish-after-insert=100 (env EOB_FAILPOINTS)',
      }),
  handler: async (args) => {
    const env = readEnvironment();
    const databaseUrl = resolveDatabaseUrl(args['database-url'], args['mysql-url']);
    if (args.mode !== undefined && args['topic-schema'] !== undefined && args.mode !== args['topic-schema']) {
      throw new Error(`server: --mode ${args.mode} and --topic-schema ${args['topic-schema']} disagree: --topic-schema is the old name of --mode; give only --mode`);
    }
    if (args['topic-schema'] !== undefined) process.stderr.write('server: --topic-schema is deprecated; use --mode (the same name as the worker\'s)\n');
    const failpointSpec = args.failpoint !== undefined && args.failpoint.length > 0 ? args.failpoint.join(',') : env.failpoints;
    if (failpointSpec !== undefined) armFailpoints(parseFailpointSpec(failpointSpec));

    const options: ServerOptions = validateServerOptions(
      resolve<ServerOptions>({ ...DEFAULT_SERVER_OPTIONS, databaseUrl }, {
        host: args.host,
        port: args.port,
        topic: args.topic,
        topicSchema: (args.mode ?? args['topic-schema']) as TopicMode | undefined,
        coalesce: args.coalesce,
        coalesceMaxBatch: args['coalesce-max-batch'],
        coalesceLingerMs: args['coalesce-linger-ms'],
        dedup: args.dedup,
        poolSize: args['pool-size'],
        maxQueuedPublishes: args['max-queued-publishes'],
        maxPublishesPerConnection: args['max-publishes-per-connection'],
        metrics: args.metrics,
        publishTimeoutMs: args['publish-timeout-ms'],
        queryTimeoutMs: args['query-timeout-ms'],
        lockWaitTimeoutSeconds: args['lock-wait-timeout-s'],
        http: resolve<HttpLimits>(DEFAULT_HTTP_LIMITS, {
          headersTimeoutMs: args['headers-timeout-ms'],
          requestTimeoutMs: args['request-timeout-ms'],
          keepAliveTimeoutMs: args['keep-alive-timeout-ms'],
          maxRequestsPerSocket: args['max-requests-per-socket'],
          maxHeaderSize: args['max-header-size'],
          maxConnections: args['max-connections'],
          socketIdleTimeoutMs: args['socket-idle-timeout-ms'],
        }),
      }),
    );

    // Waits (bounded) for a database that is still starting or restarting, or that workers are setting up at the
    // same moment; its error says which, where and what to do.
    await waitForDatabase(databaseUrl, args['start-timeout-ms'], env.quiet ? () => undefined : (line) => process.stderr.write(`server: ${line}\n`), {
      role: 'server',
      create: (db, engine) => engine.ensureSchema(db, { topic: options.topic, mode: options.topicSchema, dedup: options.dedup }),
    });

    const server = await startCounterServer(options, env.quiet ? { log: () => undefined } : {});
    const shown = { ...options, databaseUrl: databaseUrl.redacted, failpoints: failpointSpec ?? 'none' };
    // One line, always printed (even with EOB_LOG=quiet): harnesses wait for it and read the URL from it.
    process.stdout.write(`server listening on ${server.url} ${JSON.stringify(shown)}\n`);

    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      if (!env.quiet) process.stderr.write(`server: ${signal}, closing (answering requests in hand)\n`);
      server.close().then(
        () => {
          if (!env.quiet) process.stderr.write(`server closed: ${JSON.stringify(server.stats)}\n`);
          process.exit(0);
        },
        (error: unknown) => {
          process.stderr.write(`server: close failed: ${describeError(error)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
};
