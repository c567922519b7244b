// eob db start | stop: a private MariaDB (or MySQL) server for manual runs and for the harness.
import type { Argv, CommandModule } from 'yargs';
import { readEnvironment } from '../config.ts';
import { DEFAULT_PORT, ManagedDatabase, stopServerInDataDirectory } from '../harness/mariadb/managedDatabase.ts';
import type { DatabaseInfo } from '../harness/mariadb/managedDatabase.ts';
import { describeError } from '../system/db/errors.ts';

interface StartArgs {
  port: number;
  datadir?: string;
  fresh: boolean;
  'server-arg'?: string[];
  'start-timeout-ms': number;
}

interface StopArgs {
  port: number;
  datadir?: string;
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
  describe: 'start a private database on 127.0.0.1, print MYSQL_URL=..., stay in the foreground until Ctrl-C / SIGTERM',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'TCP port on 127.0.0.1' })
      .option('datadir', { type: 'string', describe: 'data directory (default .eob/db-<port>); an existing one made by eob is reused' })
      .option('fresh', { type: 'boolean', default: false, describe: 'delete the data directory first (only one made by eob)' })
      .option('server-arg', { type: 'string', array: true, describe: 'extra mariadbd option, e.g. --server-arg=--innodb-buffer-pool-size=1G' })
      .option('start-timeout-ms', { type: 'number', default: 60_000, describe: 'how long to wait for the server to answer' }),
  handler: async (args) => {
    const env = readEnvironment();
    const db = new ManagedDatabase({
      port: args.port,
      datadir: args.datadir,
      fresh: args.fresh,
      serverArgs: args['server-arg'] ?? [],
      startTimeoutMs: args['start-timeout-ms'],
      binDir: env.mariadbBinDir,
      searchPath: env.searchPath,
      log: env.quiet ? () => undefined : (line) => process.stderr.write(`${line}\n`),
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
    const info = await db.info();
    // The URL carries root's password (also in the 0600 file named below): the one place eob shows it.
    process.stdout.write(
      `MYSQL_URL=${db.url}\n${describeSettings(info)}\n` +
        `database: runs as ${db.serverUser}, listens on 127.0.0.1 only, secure_file_priv=${db.secureFileDir}, password in ${db.passwordFile}\n` +
        `pid=${db.pid}\n`,
    );
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
    process.stderr.write(`eob db start: the server exited on its own; see ${db.errorLogPath}\n`);
    process.exit(1);
  },
};

const stopCommand: CommandModule<object, StopArgs> = {
  command: 'stop',
  describe: 'cleanly stop a server that eob db start runs in another terminal (found by its data directory)',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'picks the default data directory .eob/db-<port>' })
      .option('datadir', { type: 'string', describe: 'data directory of the server to stop' }),
  handler: async (args) => {
    const datadir = args.datadir ?? `.eob/db-${args.port}`;
    const stopped = await stopServerInDataDirectory(datadir);
    process.stdout.write(stopped ? `database in ${datadir} stopped\n` : `no database running in ${datadir}\n`);
  },
};

export const command: CommandModule<object, object> = {
  command: 'db <command>',
  describe: 'a private MariaDB/MySQL server from the binaries on this machine',
  builder: (y: Argv) =>
    y
      .command(start as unknown as CommandModule<object, object>)
      .command(stopCommand as unknown as CommandModule<object, object>)
      .demandCommand(1, 'Name a db command: start or stop.'),
  handler: () => undefined,
};
