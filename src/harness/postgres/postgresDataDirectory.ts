// Creates the data directory of a private PostgreSQL: a copy of a template that `initdb` made once per server
// binary and version, kept in the same per-user 0700 cache as the MariaDB templates. initdb takes ~0.9 s
// here; the copy (~40 MB) a fraction of that.
//
// initdb refuses to run as root, so when this process is root it runs as the server's OS user (`postgres`) in
// a fresh 0700 directory of that user, and the finished directory is then copied into the cache by the user
// running eob (the cache stays theirs alone). The template's superuser password is random and thrown away:
// every start sets the data directory's own password through the server's private socket (see
// privatePostgres.ts), so no data directory ever has a password anyone else knows.
//
// Every directory made here carries the same marker file as the MariaDB ones; removal refuses a directory
// without it.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, appendFile, chown, cp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { pathOnlyEnvironment } from '../../config.ts';
import { DataDirectoryError, ensureWritableDirectory, MARKER_FILE } from '../dataDirectory.ts';
import { createRunDirectory, ensurePrivateDirectory, recordRunDirectoryUser } from '../privateDirectory.ts';
import type { OsUser } from '../serverUser.ts';
import type { PostgresBinaries } from './postgresBinaries.ts';

const execFileAsync = promisify(execFile);

const TEMPLATE_COMPLETE_FILE = '.eob-template-complete';

/** The superuser initdb makes; the URL logs in as it. */
export const SUPERUSER = 'postgres';

// Locale C: byte order for text, the same on every machine (no dependence on which locales are installed),
// and the fastest comparisons; UTF8 so JSON payloads keep any character.
const INITDB_ARGS = ['--auth=scram-sha-256', `--username=${SUPERUSER}`, '--encoding=UTF8', '--locale=C', '--no-instructions'];

/**
 * Client authentication of every data directory made here. The unix socket lives in a 0700 directory of the
 * server's OS user (root and that user alone can reach it), so it is trusted: that is how the starter sets the
 * password at each start. Over TCP, only 127.0.0.1 and ::1, and only with the password (SCRAM).
 */
const PG_HBA = `# Written by exactly-once-bench.
# The socket directory is 0700 and owned by the server's OS user: only that user and root can connect here.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
`;

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function templateKey(binaries: PostgresBinaries): Promise<string> {
  const s = await stat(binaries.postgres);
  const hash = createHash('sha256')
    .update(JSON.stringify([binaries.postgres, binaries.initdb, binaries.versionLine, s.mtimeMs, INITDB_ARGS, PG_HBA]))
    .digest('hex')
    .slice(0, 12);
  return `postgres-${binaries.version.replace(/[^A-Za-z0-9.+-]/g, '_')}-${hash}`;
}

/** Runs initdb as `account` (or as this process's user) into `<fresh run dir>/data`; returns the run dir. */
async function initialise(binaries: PostgresBinaries, account: OsUser | undefined, timeoutMs: number): Promise<string> {
  const work = await createRunDirectory('eob-pg-init-', account);
  const datadir = path.join(work, 'data');
  const pwfile = path.join(work, 'password');
  await writeFile(pwfile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  if (account !== undefined) await chown(pwfile, account.uid, account.gid);
  try {
    const initdb = execFileAsync(binaries.initdb, [`--pgdata=${datadir}`, `--pwfile=${pwfile}`, ...INITDB_ARGS], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      cwd: work,
      // LC_ALL keeps initdb's own messages and checks off the caller's locale settings.
      env: pathOnlyEnvironment({ LC_ALL: 'C' }),
      ...(account === undefined ? {} : { uid: account.uid, gid: account.gid }),
    });
    // initdb outlives a SIGKILL of this process: until it is done, no sweep may take its directory away. A
    // record that cannot be written only leaves that window open, so initdb goes on.
    const pid = initdb.child.pid;
    await Promise.all([initdb, pid === undefined ? undefined : recordRunDirectoryUser(work, pid).catch(() => undefined)]);
    await rm(pwfile, { force: true });
    await writeFile(path.join(datadir, 'pg_hba.conf'), PG_HBA);
    return work;
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    const e = error as Error & { stdout?: string; stderr?: string };
    const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new DataDirectoryError(`initialising a PostgreSQL data directory with ${binaries.initdb} failed: ${e.message}\n${tail}`);
  }
}

/**
 * The template for these binaries, made once. Concurrent callers each build their own and rename it into
 * place; the loser discards its copy, so a half-written template is never visible.
 */
export async function ensurePostgresTemplate(
  binaries: PostgresBinaries,
  cacheDir: string,
  account: OsUser | undefined,
  timeoutMs: number,
): Promise<string> {
  const template = path.join(cacheDir, await templateKey(binaries));
  await ensurePrivateDirectory(cacheDir);
  if (await exists(path.join(template, TEMPLATE_COMPLETE_FILE))) return template;
  const work = await initialise(binaries, account, timeoutMs);
  const building = `${template}.building-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await cp(path.join(work, 'data'), building, { recursive: true });
    await writeFile(path.join(building, TEMPLATE_COMPLETE_FILE), `${binaries.versionLine}\n`);
    await rename(building, template);
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(path.join(template, TEMPLATE_COMPLETE_FILE)))) return template;
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return template;
}

/**
 * Copies the contents of `source` into the (empty) directory `target`. A data directory is ~1,000 small files:
 * fs.cp took 2.0 s for one here (load average 9), `cp -a` a fraction of that, so cp is used where it exists.
 */
async function copyTree(source: string, target: string): Promise<void> {
  try {
    await execFileAsync('cp', ['-a', '--', `${source}/.`, target], { timeout: 120_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await cp(source, target, { recursive: true, force: false, errorOnExist: true });
  }
}

export interface CreatePostgresDataDirectoryOptions {
  binaries: PostgresBinaries;
  datadir: string;
  /** Where templates are kept; undefined runs initdb for this directory alone. */
  templateCacheDir: string | undefined;
  /** Who runs initdb (root cannot). */
  account: OsUser | undefined;
  timeoutMs: number;
}

/** A fresh, marked data directory at `datadir`, which must be missing or empty. Ownership is set by the caller. */
export async function createPostgresDataDirectory(options: CreatePostgresDataDirectoryOptions): Promise<void> {
  const { binaries, datadir, account, timeoutMs } = options;
  await ensureWritableDirectory(datadir);
  const copyInto = async (source: string): Promise<void> => {
    try {
      await copyTree(source, datadir);
      await rm(path.join(datadir, TEMPLATE_COMPLETE_FILE), { force: true });
    } catch (error) {
      throw new DataDirectoryError(`copying a PostgreSQL data directory into ${datadir} failed: ${(error as Error).message}; pick another --datadir`);
    }
  };
  if (options.templateCacheDir === undefined) {
    const work = await initialise(binaries, account, timeoutMs);
    try {
      await copyInto(path.join(work, 'data'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } else {
    await copyInto(await ensurePostgresTemplate(binaries, options.templateCacheDir, account, timeoutMs));
  }
  await writeFile(
    path.join(datadir, MARKER_FILE),
    `${JSON.stringify({ createdBy: 'exactly-once-bench', createdAt: new Date().toISOString(), server: binaries.versionLine })}\n`,
  );
}

/**
 * Lets `user` open a replication connection (a standby's WAL stream, a base backup) from 127.0.0.1 with its
 * password: one pg_hba.conf line, added once. The role itself is made by the running server
 * (privatePostgres.ts). The line is copied into a standby's base backup, so a promoted standby accepts one too.
 */
export async function allowReplicationLogin(datadir: string, user: string): Promise<void> {
  const file = path.join(datadir, 'pg_hba.conf');
  const line = `host    replication   ${user}   127.0.0.1/32   scram-sha-256`;
  const current = await readFile(file, 'utf8');
  if (current.split('\n').includes(line)) return;
  await appendFile(file, `# Streaming replication of a private primary/standby pair, over loopback only.\n${line}\n`);
}
