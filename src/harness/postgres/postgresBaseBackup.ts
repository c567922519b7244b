// Makes the data directory of a private PostgreSQL standby: a base backup of its running primary, taken with
// pg_basebackup over a replication connection to 127.0.0.1. `-R` writes primary_conninfo (with the replication
// role's password) into postgresql.auto.conf and creates standby.signal, so the server starts as a hot standby
// streaming from the primary; `-C -S` creates a physical replication slot on the primary, which keeps every WAL
// segment the standby has not received (a held standby can always catch up; the primary's pg_wal grows
// meanwhile, which a bounded run can afford). `-X stream` carries the WAL written during the backup itself.
//
// The backup lands in a sibling directory and is then moved into `datadir`: pg_basebackup wants an empty
// target, while a data directory made for a test or a run already holds its maker's record. eob's own files
// come along from the primary (its marker, and the superuser's password, which the standby shares because
// pg_authid is replicated), except the primary's run record: the standby keeps its own.
import { execFile } from 'node:child_process';
import { chown, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { pathOnlyEnvironment } from '../../config.ts';
import { DataDirectoryError, ensureWritableDirectory, RUN_RECORD_FILE } from '../dataDirectory.ts';
import { isExecutable } from '../executable.ts';
import type { OsUser } from '../serverUser.ts';
import type { PostgresBinaries } from './postgresBinaries.ts';

const execFileAsync = promisify(execFile);

export interface BaseBackupSource {
  /** The primary's port on 127.0.0.1. */
  primaryPort: number;
  /** A role with REPLICATION LOGIN on the primary, and its password. */
  user: string;
  password: string;
  /** The physical replication slot created on the primary for this standby. */
  slot: string;
  /**
   * The name the standby streams under (what synchronous_standby_names refers to). It is the standby's
   * cluster_name (privatePostgres.ts), not part of primary_conninfo: the base backup's own WAL stream connects
   * as pg_basebackup, so under sync it is never taken for the standby, and commits made while a standby is
   * rebuilt wait for the standby itself rather than being acknowledged on a backup still in the making.
   */
  applicationName: string;
}

export interface CreateStandbyDataDirectoryOptions {
  binaries: PostgresBinaries;
  datadir: string;
  source: BaseBackupSource;
  /** Who runs pg_basebackup (the server's OS user when this process is root). */
  account: OsUser | undefined;
  timeoutMs: number;
}

/** A standby's data directory at `datadir` (missing or empty), from a base backup of the running primary. */
export async function createStandbyDataDirectory(options: CreateStandbyDataDirectoryOptions): Promise<void> {
  const { binaries, datadir, source, account } = options;
  const pgBasebackup = path.join(binaries.binDir, 'pg_basebackup');
  if (!(await isExecutable(pgBasebackup))) {
    throw new DataDirectoryError(`a standby is made with pg_basebackup, and there is none in ${binaries.binDir}; install the PostgreSQL client tools of the same version`);
  }
  await ensureWritableDirectory(datadir);
  const work = `${datadir}.basebackup-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { mode: 0o700 });
  if (account !== undefined) await chown(work, account.uid, account.gid);
  const target = path.join(work, 'data');
  const conninfo = `host=127.0.0.1 port=${source.primaryPort} user=${source.user}`;
  try {
    await execFileAsync(pgBasebackup, ['-D', target, '-d', conninfo, '-R', '-X', 'stream', '-C', '-S', source.slot, '--checkpoint=fast', '--no-password'], {
      timeout: options.timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      cwd: work,
      // The password goes by the environment, never on a command line other users can read in /proc.
      env: pathOnlyEnvironment({ LC_ALL: 'C', PGPASSWORD: source.password }),
      ...(account === undefined ? {} : { uid: account.uid, gid: account.gid }),
    });
    for (const entry of await readdir(target)) {
      if (entry === RUN_RECORD_FILE) continue;
      await rename(path.join(target, entry), path.join(datadir, entry));
    }
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new DataDirectoryError(`a base backup of the primary on port ${source.primaryPort} into ${datadir} failed: ${e.message}\n${(e.stderr ?? '').trim()}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
