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
// The template cache is a directory of the user running eob that no one else may write to (see
// privateDirectory.ts), and templates are initialised as that user. A data directory is mode 0700; when the
// server runs as another OS user (root runs it as `mysql`), the copy is handed to that user afterwards.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ServerBinaries } from './serverBinaries.ts';
import { ensurePrivateDirectory } from '../privateDirectory.ts';
import { DataDirectoryError, MARKER_FILE, ensureWritableDirectory, exists, unwritable } from '../dataDirectory.ts';

const execFileAsync = promisify(execFile);
const TEMPLATE_COMPLETE_FILE = '.eob-template-complete';
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
