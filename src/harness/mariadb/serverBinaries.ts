// Finds the database server binaries installed on this machine (MariaDB first, MySQL second) and tells which
// flavour and version they are, so the managed database knows how to initialise a data directory.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { isExecutable } from '../executable.ts';

const execFileAsync = promisify(execFile);

export type ServerFlavor = 'mariadb' | 'mysql';

export interface ServerBinaries {
  flavor: ServerFlavor;
  /** mariadbd or mysqld. */
  server: string;
  /** mariadb-install-db / mysql_install_db for MariaDB; undefined for MySQL (it uses `mysqld --initialize-insecure`). */
  installDb: string | undefined;
  /** The server's own `--version` line, e.g. `mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu`. */
  versionLine: string;
  /** The version number alone, e.g. `10.11.19-MariaDB-0+deb12u1`. */
  version: string;
}

export class ServerBinaryNotFoundError extends Error {
  override readonly name = 'ServerBinaryNotFoundError';
}

export interface FindBinariesOptions {
  /** Looked in first (config's EOB_MARIADB_BIN_DIR). */
  binDir: string | undefined;
  /** Also look in searchPath and the usual sbin directories; false means binDir only (tests of the error use it). */
  searchSystemPaths: boolean;
  /** PATH's directories, from config's readEnvironment().searchPath. */
  searchPath: readonly string[];
}

// Debian/Ubuntu put the server in /usr/sbin, which is not on a non-root PATH; the tarball layouts put it in
// <prefix>/bin.
const SYSTEM_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/mysql/bin', '/opt/mysql/bin'];

function searchDirs(options: FindBinariesOptions): string[] {
  const dirs: string[] = [];
  if (options.binDir !== undefined) dirs.push(path.resolve(options.binDir));
  if (options.searchSystemPaths) {
    dirs.push(...options.searchPath);
    dirs.push(...SYSTEM_DIRS);
  }
  return [...new Set(dirs)];
}

async function findFirst(names: readonly string[], dirs: readonly string[]): Promise<string | undefined> {
  // Name order wins over directory order: a MariaDB install also ships a `mysqld` symlink, and the MariaDB
  // name should be found first wherever it lives.
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (await isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Finds the server and its initialiser; throws an error that says how to install one or use MYSQL_URL instead. */
export async function findServerBinaries(options: FindBinariesOptions): Promise<ServerBinaries> {
  const dirs = searchDirs(options);
  const server = await findFirst(['mariadbd', 'mysqld'], dirs);
  const where = options.searchSystemPaths
    ? `in ${options.binDir === undefined ? '' : `${options.binDir} (EOB_MARIADB_BIN_DIR), `}PATH or ${SYSTEM_DIRS.join(', ')}`
    : `in ${options.binDir ?? '(no directory given)'} (EOB_MARIADB_BIN_DIR; system paths not searched)`;
  if (server === undefined) {
    throw new ServerBinaryNotFoundError(
      `no database server binary (mariadbd or mysqld) found ${where}. ` +
        'Install one with `apt-get install mariadb-server` (the system service need not run), ' +
        'point EOB_MARIADB_BIN_DIR at the directory holding mariadbd, or set MYSQL_URL to use a server you already have.',
    );
  }
  const { stdout } = await execFileAsync(server, ['--no-defaults', '--version'], { timeout: 10_000 });
  const versionLine = stdout.trim();
  const version = /Ver\s+(\S+)/.exec(versionLine)?.[1] ?? versionLine;
  const flavor: ServerFlavor = /mariadb/i.test(versionLine) ? 'mariadb' : 'mysql';
  let installDb: string | undefined;
  if (flavor === 'mariadb') {
    // The initialiser sits beside the server in tarball layouts and in /usr/bin on Debian.
    installDb = await findFirst(['mariadb-install-db', 'mysql_install_db'], [path.dirname(server), ...dirs]);
    if (installDb === undefined) {
      throw new ServerBinaryNotFoundError(
        `found ${server} but no mariadb-install-db or mysql_install_db ${where}. ` +
          'Install the full server package with `apt-get install mariadb-server`, or set MYSQL_URL.',
      );
    }
  }
  return { flavor, server, installDb, versionLine, version };
}
