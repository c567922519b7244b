// Finds the PostgreSQL server binaries (initdb, postgres) on this machine and their version. Debian and Ubuntu
// keep them off PATH in /usr/lib/postgresql/<major>/bin, one directory per installed major version; the
// newest is used unless a directory is given.
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isExecutable } from '../executable.ts';

const execFileAsync = promisify(execFile);

export interface PostgresBinaries {
  /** The directory holding both. */
  binDir: string;
  initdb: string;
  postgres: string;
  /** `postgres --version`, e.g. `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`. */
  versionLine: string;
  /** The version number alone, e.g. `15.20`. */
  version: string;
  /** The major version, e.g. 15. */
  major: number;
}

export class PostgresBinaryNotFoundError extends Error {
  override readonly name = 'PostgresBinaryNotFoundError';
}

/** pg_current_xact_id() and pg_snapshot_xmin(), which the offset read rests on, arrived in PostgreSQL 13. */
export const MIN_MAJOR_VERSION = 13;

const DEBIAN_ROOT = '/usr/lib/postgresql';
// Other layouts: the PGDG RPMs, Homebrew-style and source installs.
const OTHER_DIRS = ['/usr/local/pgsql/bin', '/usr/pgsql/bin', '/usr/local/bin', '/usr/bin'];

/** /usr/lib/postgresql/<major>/bin, newest major first. */
async function debianDirs(): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(DEBIAN_ROOT);
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+(\.\d+)?$/.test(e))
    .sort((a, b) => Number(b) - Number(a))
    .map((e) => path.join(DEBIAN_ROOT, e, 'bin'));
}

const INSTALL_HINT =
  'Install the server with `apt-get install postgresql` (its system service need not run: the binaries in ' +
  '/usr/lib/postgresql/<version>/bin are enough), or point EOB_POSTGRES_BIN_DIR at the directory holding initdb and postgres.';

/**
 * `binDir` given: only that directory. Otherwise the newest /usr/lib/postgresql/<major>/bin, then the usual
 * other places. Throws an error that says what to install.
 */
export async function findPostgresBinaries(binDir: string | undefined): Promise<PostgresBinaries> {
  const dirs = binDir === undefined ? [...(await debianDirs()), ...OTHER_DIRS] : [path.resolve(binDir)];
  for (const dir of dirs) {
    const initdb = path.join(dir, 'initdb');
    const server = path.join(dir, 'postgres');
    if (!(await isExecutable(initdb)) || !(await isExecutable(server))) continue;
    const { stdout } = await execFileAsync(server, ['--version'], { timeout: 10_000 });
    const versionLine = stdout.trim();
    const version = /\(PostgreSQL\)\s+(\S+)/.exec(versionLine)?.[1] ?? versionLine;
    const major = Number.parseInt(version, 10);
    if (!(major >= MIN_MAJOR_VERSION)) {
      throw new PostgresBinaryNotFoundError(
        `${server} is PostgreSQL ${version}; ${MIN_MAJOR_VERSION} or newer is needed (pg_current_xact_id, pg_snapshot_xmin). ${INSTALL_HINT}`,
      );
    }
    return { binDir: dir, initdb, postgres: server, versionLine, version, major };
  }
  const where = binDir === undefined ? `in ${DEBIAN_ROOT}/<version>/bin or ${OTHER_DIRS.join(', ')}` : `in ${binDir} (EOB_POSTGRES_BIN_DIR)`;
  throw new PostgresBinaryNotFoundError(`no PostgreSQL server binaries (initdb and postgres) found ${where}. ${INSTALL_HINT}`);
}
