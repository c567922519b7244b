// Creates, recognises and deletes the data directories of managed database servers.
//
// A fresh data directory is a copy of a template that is initialised once per server binary and version and
// kept in a cache directory. Measured on this machine (2 cores, ext4, MariaDB 10.11, a 114 MB directory of
// which 96 MB is ib_logfile0): `mariadb-install-db` takes 0.45 s on an idle machine and 0.6-2.1 s while other
// test runs load it; copying the template takes 0.06 s (`cp -a`) / 0.13 s (fs.cp) idle and 0.2-0.3 s loaded.
// An A/B of 5 whole starts each under moderate load came out even (0.27-0.43 s template, 0.29-0.41 s
// install), so the cache mostly removes the slow tail of install-db under load. A sparse copy would write only
// 6.5 MB, but a sparse redo log pays block allocation on its first pass, which a bench would measure.
//
// Every directory made here carries a marker file; `remove` and `--fresh` refuse to delete a directory
// without it, so a mistyped --datadir can never wipe someone's real database.
//
// The template cache is a directory of the user running eob that no one else may write to (see
// privateDirectory.ts), and templates are initialised as that user. A data directory is mode 0700; when the
// server runs as another OS user (root runs it as `mysql`), the copy is handed to that user afterwards.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, constants, cp, lchown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ServerBinaries } from './serverBinaries.ts';
import { ensurePrivateDirectory } from './privateDirectory.ts';

const execFileAsync = promisify(execFile);

export const MARKER_FILE = '.eob-managed';
const TEMPLATE_COMPLETE_FILE = '.eob-template-complete';

export class DataDirectoryError extends Error {
  override readonly name = 'DataDirectoryError';
}

export type DataDirectoryState = 'missing' | 'empty' | 'managed' | 'foreign';

/** What is at `datadir`: nothing, an empty directory, one of ours, or something we must not touch. */
export async function inspectDataDirectory(datadir: string): Promise<DataDirectoryState> {
  let entries: string[];
  try {
    entries = await readdir(datadir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    throw unwritable(datadir, error);
  }
  if (entries.length === 0) return 'empty';
  return entries.includes(MARKER_FILE) ? 'managed' : 'foreign';
}

function unwritable(datadir: string, error: unknown): DataDirectoryError {
  const e = error as NodeJS.ErrnoException;
  const reason = e.code === 'ENOTDIR' ? 'a part of the path is a file, not a directory' : (e.code ?? e.message);
  return new DataDirectoryError(
    `data directory ${datadir} is not writable (${reason}: ${e.message}); pick another one with --datadir`,
  );
}

/** Makes sure `datadir` can be created and written before a server is pointed at it. */
export async function ensureWritableDirectory(datadir: string): Promise<void> {
  try {
    await mkdir(datadir, { recursive: true });
    await access(datadir, constants.W_OK);
    const probe = path.join(datadir, `.eob-write-probe-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (error) {
    throw unwritable(datadir, error);
  }
}

function installArgs(binaries: ServerBinaries, datadir: string): { command: string; args: string[] } {
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  if (binaries.flavor === 'mysql') {
    // MySQL 8: --initialize-insecure makes root@localhost with an empty password (every start then sets the
    // data directory's own, see rootPassword.ts); the datadir must be empty.
    return { command: binaries.server, args: ['--no-defaults', '--initialize-insecure', `--datadir=${datadir}`, ...asRoot, ...basedirArg(binaries)] };
  }
  return {
    command: binaries.installDb as string,
    args: [
      '--no-defaults',
      `--datadir=${datadir}`,
      ...asRoot,
      // root with a password over TCP (unix_socket auth would tie root to the OS user running tests); empty
      // here, every start sets the data directory's own (see rootPassword.ts).
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      // Creates root@127.0.0.1 and root@::1 besides root@localhost, so TCP logins need no reverse DNS.
      '--skip-name-resolve',
      ...basedirArg(binaries),
    ],
  };
}

/** Tarball installs need --basedir to find their share/ and plugin/ directories; distro installs do not. */
export function basedirArg(binaries: ServerBinaries): string[] {
  const dir = path.dirname(binaries.server);
  if (dir === '/usr/sbin' || dir === '/usr/bin') return [];
  return [`--basedir=${path.dirname(dir)}`];
}

async function templateKey(binaries: ServerBinaries): Promise<string> {
  const s = await stat(binaries.server);
  const hash = createHash('sha256')
    .update(JSON.stringify([binaries.server, binaries.installDb, binaries.versionLine, s.mtimeMs, installArgs(binaries, '')]))
    .digest('hex')
    .slice(0, 12);
  return `${binaries.flavor}-${binaries.version.replace(/[^A-Za-z0-9.+-]/g, '_')}-${hash}`;
}

async function initialise(binaries: ServerBinaries, datadir: string, timeoutMs: number): Promise<void> {
  const { command, args } = installArgs(binaries, datadir);
  try {
    await execFileAsync(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, cwd: path.dirname(datadir) });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new DataDirectoryError(`initialising a data directory with ${command} failed: ${e.message}\n${tail}`);
  }
}

/**
 * Returns the template directory for these binaries, initialising it once. Concurrent callers (parallel test
 * files) each build into a private temporary directory and rename it into place; the loser of the rename
 * discards its copy, so a half-written template is never visible.
 */
export async function ensureTemplate(binaries: ServerBinaries, cacheDir: string, timeoutMs: number): Promise<string> {
  const template = path.join(cacheDir, await templateKey(binaries));
  await ensurePrivateDirectory(cacheDir);
  if (await exists(path.join(template, TEMPLATE_COMPLETE_FILE))) return template;
  const building = `${template}.building-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await initialise(binaries, building, timeoutMs);
    await writeFile(path.join(building, TEMPLATE_COMPLETE_FILE), `${binaries.versionLine}\n`);
    await rename(building, template);
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    // Someone else finished first: theirs is as good as ours.
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(path.join(template, TEMPLATE_COMPLETE_FILE)))) {
      return template;
    }
    throw error;
  }
  return template;
}

export interface CreateDataDirectoryOptions {
  binaries: ServerBinaries;
  datadir: string;
  /** Where templates are kept; undefined initialises every data directory from scratch. */
  templateCacheDir: string | undefined;
  timeoutMs: number;
}

/** Creates a fresh, marked data directory at `datadir`, which must be missing or empty. */
export async function createDataDirectory(options: CreateDataDirectoryOptions): Promise<void> {
  const { binaries, datadir } = options;
  await ensureWritableDirectory(datadir);
  if (options.templateCacheDir === undefined) {
    // mysqld --initialize-insecure wants the directory itself absent or empty: it is empty here.
    await initialise(binaries, datadir, options.timeoutMs);
  } else {
    const template = await ensureTemplate(binaries, options.templateCacheDir, options.timeoutMs);
    try {
      await cp(template, datadir, {
        recursive: true,
        force: false,
        errorOnExist: true,
        filter: (source) => path.basename(source) !== TEMPLATE_COMPLETE_FILE,
      });
    } catch (error) {
      throw unwritable(datadir, error);
    }
  }
  await writeFile(
    path.join(datadir, MARKER_FILE),
    `${JSON.stringify({ createdBy: 'exactly-once-bench', createdAt: new Date().toISOString(), server: binaries.versionLine })}\n`,
  );
}

/**
 * Makes `datadir` 0700 and, when `owner` is given, hands it and everything in it to that user, except the
 * files of eob itself at its top (the marker and the root password stay with the user running eob).
 */
export async function restrictDataDirectory(datadir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  await chmod(datadir, 0o700);
  if (owner === undefined) return;
  const walk = async (dir: string, top: boolean): Promise<void> => {
    await lchown(dir, owner.uid, owner.gid);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (top && entry.name.startsWith('.eob-')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full, false);
      else await lchown(full, owner.uid, owner.gid);
    }
  };
  await walk(datadir, true);
}

/** Deletes a data directory this module created; refuses anything else. */
export async function removeDataDirectory(datadir: string): Promise<void> {
  const state = await inspectDataDirectory(datadir);
  if (state === 'missing') return;
  if (state === 'foreign') {
    throw new DataDirectoryError(
      `refusing to delete ${datadir}: it has no ${MARKER_FILE} marker, so it was not created by eob; delete it yourself if you are sure`,
    );
  }
  await rm(datadir, { recursive: true, force: true });
}

/** The pid in the server's pid file, if there is one. */
export async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
