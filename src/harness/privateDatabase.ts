// The private database a harness run starts, whichever engine it is: a MariaDB (mariadb/managedDatabase.ts)
// or a PostgreSQL (postgres/privatePostgres.ts) on a free port of 127.0.0.1, in a data directory of its own,
// behind one interface, so the system under test and the database faults (kill, restart, pause) do not ask
// which engine they act on.
import { ManagedDatabase } from './mariadb/managedDatabase.ts';
import { PrivatePostgres } from './postgres/privatePostgres.ts';
import type { EngineName } from './engines.ts';

/** What both launchers offer: the lifecycle the harness and its faults use. */
export interface PrivateDatabase {
  readonly url: string;
  /** The server's pid (MariaDB: mariadbd; PostgreSQL: the postmaster) while it runs. */
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly isPaused: boolean;
  readonly port: number;
  /** Starts it again on the same data directory (after kill: crash recovery); resolves with ms until ready. */
  start(): Promise<number>;
  /** SIGKILL reaches every process of the server (PostgreSQL: the postmaster and its backends). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
  restart(options?: { clean: boolean }): Promise<number>;
  pause(): void;
  resume(): void;
  /** Stops it and deletes its data directory. */
  remove(): Promise<void>;
}

export interface PrivateDatabaseOptions {
  engine: EngineName;
  port: number;
  /** A fresh directory of the caller's (removed with the server). */
  datadir: string;
  database: string;
  mariadbBinDir: string | undefined;
  postgresBinDir: string | undefined;
  searchPath: readonly string[];
  log: (line: string) => void;
}

/**
 * A line of the server's own log: timestamped, or the tab-indented continuation of a statement it logs over
 * several lines (graphile-worker's first migration check fails on a schema not there yet, and the server logs
 * that statement whole).
 */
const SERVER_LOG_LINE = /^postgres: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\t)/;

/** Starts a private server of `engine`; resolves once it answers with its URL's credentials. */
export async function startPrivateDatabase(o: PrivateDatabaseOptions): Promise<PrivateDatabase> {
  if (o.engine === 'postgres') {
    // Not `fresh`: the caller's new empty directory is not one of ours yet, and an empty one is initialized as is.
    // The server's own log lines (timestamped; every connection refused during recovery is one) stay in its
    // log tail; the harness's log gets the lifecycle lines (started, ready, exited).
    const lifecycle = (line: string) => {
      if (!SERVER_LOG_LINE.test(line)) o.log(line);
    };
    return PrivatePostgres.create({ port: o.port, datadir: o.datadir, database: o.database, binDir: o.postgresBinDir, log: lifecycle });
  }
  return ManagedDatabase.create({
    port: o.port,
    datadir: o.datadir,
    database: o.database,
    binDir: o.mariadbBinDir,
    searchPath: [...o.searchPath],
    fresh: true,
    log: o.log,
  });
}
