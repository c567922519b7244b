// eob db start | stop: a private MariaDB (or MySQL) or PostgreSQL server for manual runs and for the harness.
import type { Argv, CommandModule } from 'yargs';
import { readEnvironment } from '../config.ts';
import { DEFAULT_PORT, ManagedDatabase, stopServerInDataDirectory } from '../harness/mariadb/managedDatabase.ts';
import type { DatabaseInfo } from '../harness/mariadb/managedDatabase.ts';
import { DEFAULT_POSTGRES_PORT, PrivatePostgres, stopPostgresInDataDirectory, type PostgresInfo } from '../harness/postgres/privatePostgres.ts';
import { parseEngineChoice, type EngineName } from '../harness/engines.ts';
import { describeError } from '../system/db/database.ts';
import { GaleraCluster } from '../harness/mariadb/galeraCluster.ts';
import { REPLICATION_LEVELS } from '../harness/replication/replicaPair.ts';
import { checkReplicationLevel, defaultReplicationLevel, startReplicaPair } from '../harness/replication/startReplicaPair.ts';
import { TcpProxy } from '../harness/faults/tcpProxy.ts';
import { throughAddress } from '../harness/systemUnderTest.ts';

interface StartArgs {
  engine: string;
  topology: string;
  replication?: string;
  nodes: number;
  port?: number;
  datadir?: string;
  fresh: boolean;
  'server-arg'?: string[];
  'start-timeout-ms': number;
}

interface StopArgs {
  engine: string;
  port?: number;
  datadir?: string;
}

const engineOption = {
  type: 'string',
  default: 'mariadb',
  describe: 'mariadb (mariadbd / mysqld from this machine) or postgres (initdb / postgres from this machine)',
} as const;

/** The private server both engines' launchers offer to this command. */
interface PrivateServer {
  readonly url: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly serverUser: string;
  readonly passwordFile: string;
  start(): Promise<number>;
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  whenExited(): Promise<void>;
}

function defaultPort(engine: EngineName): number {
  return engine === 'postgres' ? DEFAULT_POSTGRES_PORT : DEFAULT_PORT;
}

/** The data directory `eob db start` uses by default for `engine` on `port` (relative to the current directory). */
export function defaultDataDirectory(engine: EngineName, port: number): string {
  return engine === 'postgres' ? `.eob/pg-${port}` : `.eob/db-${port}`;
}

function describePostgresSettings(info: PostgresInfo): string {
  return (
    `database: PostgreSQL ${info.version}, fsync=${info.fsync ? 'on' : 'off'}, synchronous_commit=${info.synchronousCommit}, ` +
    `full_page_writes=${info.fullPageWrites ? 'on' : 'off'}, wal_sync_method=${info.walSyncMethod}, shared_buffers=${info.sharedBuffers}, datadir=${info.datadir}`
  );
}

function describeSettings(info: DatabaseInfo): string {
  return (
    `database: ${info.flavor} ${info.version}, innodb_flush_log_at_trx_commit=${info.innodbFlushLogAtTrxCommit}, ` +
    `log_bin=${info.logBin ? 'ON' : 'OFF'}, sync_binlog=${info.syncBinlog}, innodb_doublewrite=${info.doublewrite ? 'ON' : 'OFF'}, ` +
    `innodb_buffer_pool_size=${Math.round(info.bufferPoolBytes / 1024 / 1024)}M, datadir=${info.datadir}`
  );
}

const start: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: 'start a private database on 127.0.0.1, print DATABASE_URL=..., stay in the foreground until Ctrl-C / SIGTERM',
  builder: (y) =>
    y
      .option('engine', engineOption)
      .option('topology', {
        type: 'string',
        choices: ['single', 'galera', 'primary-replica'],
        default: 'single',
        describe:
          'single: one server; galera: a MariaDB Galera cluster of --nodes servers (multi-primary, every node takes writes); ' +
          'primary-replica: a primary and a replica (--replication) behind a virtual address (DATABASE_URL), fresh data directories each time',
      })
      .option('replication', {
        type: 'string',
        choices: REPLICATION_LEVELS,
        describe: "primary-replica: async, semi-sync (MariaDB, AFTER_SYNC, never falls back) or sync (PostgreSQL); default the engine's synchronous level",
      })
      .option('cluster', { type: 'string', choices: ['galera'], describe: 'the same as --topology galera' })
      .option('nodes', { type: 'number', default: 3, describe: 'galera: the number of nodes (3 keeps a majority when one fails)' })
      .option('port', { type: 'number', describe: `TCP port on 127.0.0.1 (default ${DEFAULT_PORT} for mariadb, ${DEFAULT_POSTGRES_PORT} for postgres; galera: node 1's, the others on free ports)` })
      .option('datadir', { type: 'string', describe: 'data directory (default .eob/db-<port>, PostgreSQL .eob/pg-<port>); an existing one made by eob is reused' })
      .option('fresh', { type: 'boolean', default: false, describe: 'delete the data directory first (only one made by eob)' })
      .option('server-arg', { type: 'string', array: true, describe: 'extra mariadbd option, e.g. --server-arg=--innodb-buffer-pool-size=1G (mariadb only)' })
      .option('start-timeout-ms', { type: 'number', default: 60_000, describe: 'how long to wait for the server to answer' }),
  handler: async (args) => {
    const env = readEnvironment();
    const [engine = 'mariadb'] = parseEngineChoice('db start', args.engine, false);
    const topology = (args as { cluster?: string }).cluster ?? args.topology;
    if (topology === 'galera') {
      if (engine !== 'mariadb') throw new Error('db start: --topology galera is a MariaDB cluster; leave out --engine postgres');
      await startGalera(args, env);
      return;
    }
    if (topology === 'primary-replica') {
      await startPair(engine, args, env);
      return;
    }
    if (args.replication !== undefined) throw new Error(`db start: --replication applies to --topology primary-replica (topology is ${topology})`);
    const port = args.port ?? defaultPort(engine);
    const log = env.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
    if (engine === 'postgres' && (args['server-arg'] ?? []).length > 0) {
      throw new Error('db start: --server-arg passes mariadbd options; it does not apply to --engine postgres');
    }
    const db: PrivateServer =
      engine === 'postgres'
        ? new PrivatePostgres({
            port,
            datadir: args.datadir,
            fresh: args.fresh,
            startTimeoutMs: args['start-timeout-ms'],
            binDir: env.postgresBinDir,
            log,
          })
        : new ManagedDatabase({
            port,
            datadir: args.datadir,
            fresh: args.fresh,
            serverArgs: args['server-arg'] ?? [],
            startTimeoutMs: args['start-timeout-ms'],
            binDir: env.mariadbBinDir,
            searchPath: env.searchPath,
            log,
          });
    // Signals that arrive while the server is still starting are honoured once it is up.
    let stopRequested: NodeJS.Signals | undefined;
    let stopping: Promise<void> | undefined;
    const stop = (signal: NodeJS.Signals): void => {
      stopRequested ??= signal;
      if (!db.running || stopping !== undefined) return;
      process.stderr.write(`database: ${signal}: shutting down cleanly\n`);
      stopping = db.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`eob db start: ${describeError(error)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      await db.start();
    } catch (error) {
      await db.kill('SIGKILL').catch(() => undefined);
      throw error;
    }
    // The URL carries the password (also in the 0600 file named below): the one place eob shows it. MariaDB's
    // also goes out as MYSQL_URL, the name scripts written before DATABASE_URL read.
    if (db instanceof PrivatePostgres) {
      process.stdout.write(
        `DATABASE_URL=${db.url}\n${describePostgresSettings(await db.info())}\n` +
          `database: runs as ${db.serverUser}, listens on 127.0.0.1 only, socket in ${db.socketDirectory}, password in ${db.passwordFile}\n` +
          `pid=${db.pid}\n`,
      );
    } else if (db instanceof ManagedDatabase) {
      process.stdout.write(
        `DATABASE_URL=${db.url}\nMYSQL_URL=${db.url}\n${describeSettings(await db.info())}\n` +
          `database: runs as ${db.serverUser}, listens on 127.0.0.1 only, secure_file_priv=${db.secureFileDir}, password in ${db.passwordFile}\n` +
          `pid=${db.pid}\n`,
      );
    }
    if (stopRequested !== undefined) {
      stop(stopRequested);
      return;
    }
    // Stay up while the server does; a server killed from outside ends this command with an error.
    await db.whenExited();
    if (stopping !== undefined) {
      await stopping;
      return;
    }
    const where = db instanceof ManagedDatabase ? `see ${db.errorLogPath}` : `its last log lines:\n${(db as PrivatePostgres).logTail()}`;
    process.stderr.write(`eob db start: the server exited on its own; ${where}\n`);
    process.exit(1);
  },
};

/**
 * `db start --topology primary-replica`: starts the pair and a virtual address in front of its primary (a TCP
 * proxy in this process), prints the address's URL and each server's, stays up until Ctrl-C / SIGTERM.
 */
async function startPair(engine: EngineName, args: StartArgs, env: ReturnType<typeof readEnvironment>): Promise<void> {
  const log = env.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
  if ((args['server-arg'] ?? []).length > 0) throw new Error('db start: --server-arg is not passed to a primary-replica pair');
  const level = checkReplicationLevel('db start', engine, args.replication ?? defaultReplicationLevel(engine));
  const port = args.port ?? defaultPort(engine);
  const pair = await startReplicaPair({
    engine,
    level,
    nodeDatadirs: undefined,
    datadir: args.datadir ?? `.eob/pair-${port}`,
    ports: [port],
    database: 'eob',
    mariadbBinDir: env.mariadbBinDir,
    postgresBinDir: env.postgresBinDir,
    searchPath: env.searchPath,
    semiSyncTimeoutMs: undefined,
    log,
  });
  const primary = pair.primary;
  if (primary === undefined) throw new Error('db start: the pair started without a primary');
  const vip = await TcpProxy.start({ targetPort: primary.port });
  stopOnSignal('replica pair: {signal}: shutting both servers down cleanly', async () => {
    await vip.close();
    await pair.stop();
  });
  const [first, second] = pair.nodes;
  process.stdout.write(
    `DATABASE_URL=${throughAddress(primary.url, vip.port)}\n` +
      `DATABASE_URL_PRIMARY=${first?.url ?? ''}\nDATABASE_URL_REPLICA=${second?.url ?? ''}\n` +
      `replica pair: ${engine} primary on 127.0.0.1:${first?.port}, ${level} replica on 127.0.0.1:${second?.port}, the virtual address 127.0.0.1:${vip.port} (DATABASE_URL) in front of the primary; both listen on 127.0.0.1 only\n` +
      `pids=${pair.nodes.map((n) => n.pid).join(',')}\n`,
  );
  // Stay up until a signal (stop() exits the process).
  await new Promise<never>(() => undefined);
}

/** `db start --topology galera`: forms the cluster, prints one URL per node, stays up until Ctrl-C / SIGTERM. */
async function startGalera(args: StartArgs, env: ReturnType<typeof readEnvironment>): Promise<void> {
  const log = env.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
  const port = args.port ?? DEFAULT_PORT;
  const cluster = await GaleraCluster.create({
    nodes: args.nodes,
    ports: [port],
    datadir: args.datadir ?? `.eob/galera-${port}`,
    binDir: env.mariadbBinDir,
    searchPath: env.searchPath,
    provider: env.galeraProvider,
    serverArgs: args['server-arg'] ?? [],
    startTimeoutMs: Math.max(args['start-timeout-ms'], 300_000),
    log,
  });
  const stopping = stopOnSignal('galera cluster: {signal}: shutting the nodes down cleanly', () => cluster.stop());
  const lines = [`DATABASE_URL=${cluster.urlOf(1)}`, ...cluster.nodes.map((n) => `DATABASE_URL_${n.index}=${cluster.urlOf(n.index)}`)];
  const first = cluster.node(1).server;
  process.stdout.write(
    `${lines.join('\n')}\n${describeSettings(await first.info())}\n` +
      `galera cluster: ${cluster.nodes.length} nodes Synced; they run as ${first.serverUser}, listen on 127.0.0.1 only; one root password for all, in ${first.passwordFile}\n` +
      `pids=${cluster.nodes.map((n) => n.server.pid).join(',')}\n`,
  );
  await Promise.race(cluster.nodes.map((n) => n.server.whenExited()));
  const stopUnderWay = stopping();
  if (stopUnderWay !== undefined) {
    await stopUnderWay;
    return;
  }
  process.stderr.write('eob db start: a node exited on its own; see its error log (error.log in its data directory); stopping the others\n');
  await cluster.stop().catch(() => undefined);
  process.exit(1);
}

const stopCommand: CommandModule<object, StopArgs> = {
  command: 'stop',
  describe: 'cleanly stop a server that eob db start runs in another terminal (found by its data directory)',
  builder: (y) =>
    y
      .option('engine', engineOption)
      .option('port', { type: 'number', describe: 'picks the default data directory .eob/db-<port> (PostgreSQL .eob/pg-<port>)' })
      .option('datadir', { type: 'string', describe: 'data directory of the server to stop' }),
  handler: async (args) => {
    const [engine = 'mariadb'] = parseEngineChoice('db stop', args.engine, false);
    const datadir = args.datadir ?? defaultDataDirectory(engine, args.port ?? defaultPort(engine));
    const stopped = engine === 'postgres' ? await stopPostgresInDataDirectory(datadir) : await stopServerInDataDirectory(datadir);
    process.stdout.write(stopped ? `database in ${datadir} stopped\n` : `no database running in ${datadir}\n`);
  },
};

/**
 * On the first SIGINT or SIGTERM, says `line` ({signal} replaced) and runs `stop` once, then exits: 0 once it is
 * done, 1 with the error. For servers started whole before the handlers are set (a pair, a cluster). Returns the
 * stop under way, if a signal came.
 */
function stopOnSignal(line: string, stop: () => Promise<void>): () => Promise<void> | undefined {
  let stopping: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== undefined) return;
    process.stderr.write(`${line.replace('{signal}', signal)}\n`);
    stopping = stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`eob db start: ${describeError(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => stopping;
}

export const command: CommandModule<object, object> = {
  command: 'db <command>',
  describe: 'a private MariaDB/MySQL or PostgreSQL server from the binaries on this machine',
  builder: (y: Argv) =>
    y
      .command(start as unknown as CommandModule<object, object>)
      .command(stopCommand as unknown as CommandModule<object, object>)
      .demandCommand(1, 'Name a db command: start or stop.'),
  handler: () => undefined,
};
