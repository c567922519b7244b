// Directories only one OS user may enter, in places everyone can write to (the temp dir): the per-user cache of
// template data directories, each private server's run directory (its temp files, the folder
// `secure_file_priv` points at, its socket and the one-shot init file holding the password), and the scratch
// directories a process makes for itself (the system under test's data directory, the integration tests'
// private servers' data directories, the allocator-stall fault's gdb script). Those a process leaves behind
// are deleted when it exits; those of a process that died without running its exit hooks (SIGKILL, a crash, a
// power cut) are swept by a later start or maker.
//
// A fixed name under /tmp can be created first by someone else, who then reads or swaps what we put there
// (a swapped template would hand out a data directory with their accounts in it). So a cache directory is
// used only when it is a real directory owned by us and writable by no one else; a run directory gets a
// fresh random name (mkdtemp creates it 0700 and fails rather than reuse an existing one).
//
// Sweeping. Each run or scratch directory holds a record of the processes that use it: the one that made it,
// then each server (or helper) started in it (a server can outlive its starter where setpriv is missing). A
// sweep removes a directory only when its name is one this module makes, the record is a file of this OS user,
// and not one recorded process can still be running (pid and start time, so a reused pid is not mistaken for
// the owner). A run or stall directory holding a data directory marker stays (so a --datadir a user chose is
// never taken for one); a scratch directory that is itself a data directory may go, but not while a pid file
// in it names a running process (a server started on it that no record names, by an older eob or by hand:
// a reused pid only keeps the directory longer). Directories without a record (made by older versions, or
// where /proc is missing) are never swept.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MARKER_FILE, readPidFile, RUN_RECORD_FILE } from './dataDirectory.ts';
import { currentProcessContext, mayStillRun, pidRuns, processIdentity, type ProcessContext, type ProcessIdentity } from './processIdentity.ts';
import { definedOnly, intInRange, nonEmptyString, OptionsError } from '../validate.ts';

export class PrivateDirectoryError extends Error {
  override readonly name = 'PrivateDirectoryError';
}

function currentUid(): number {
  return process.getuid?.() ?? 0;
}

/** `<temp dir>/eob-<uid>`: one cache per OS user, so users never share (or plant) templates. */
export function defaultCacheDirectory(): string {
  return path.join(os.tmpdir(), `eob-${currentUid()}`);
}

/**
 * Creates `dir` 0700 if missing; refuses a symlink, a non-directory, one owned by another user or one that
 * group or others may write to (they could have put files in it). One of ours that others may only read or
 * enter is tightened to 0700.
 */
export async function ensurePrivateDirectory(dir: string): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true });
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const s = await lstat(dir);
  const uid = currentUid();
  const refuse = (why: string): PrivateDirectoryError =>
    new PrivateDirectoryError(
      `refusing to use ${dir}: ${why}. It holds private database files, so it must be a directory of yours that no one ` +
        `else can write to; if you trust it, fix it (chown ${uid} / chmod 700), otherwise delete it or point the cache elsewhere`,
    );
  if (s.isSymbolicLink()) throw refuse('it is a symbolic link');
  if (!s.isDirectory()) throw refuse('it is not a directory');
  if (s.uid !== uid) throw refuse(`it is owned by uid ${s.uid}, not by you (uid ${uid})`);
  if ((s.mode & 0o022) !== 0) throw refuse(`it is writable by ${(s.mode & 0o002) !== 0 ? 'everyone' : 'its group'} (mode ${(s.mode & 0o777).toString(8)})`);
  if ((s.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/** The names run directories start with; mkdtemp adds six letters and digits. */
export const RUN_DIRECTORY_PREFIXES = ['eob-db-', 'eob-pg-', 'eob-pg-init-'] as const;
export type RunDirectoryPrefix = (typeof RUN_DIRECTORY_PREFIXES)[number];

/**
 * The names scratch directories start with: the system under test's data directory, the integration tests'
 * private MariaDB and PostgreSQL data directories, the allocator stall's gdb script.
 */
export const SCRATCH_DIRECTORY_PREFIXES = ['eob-sut-', 'eob-test-db-', 'eob-test-pg-', 'eob-stall-'] as const;
export type ScratchDirectoryPrefix = (typeof SCRATCH_DIRECTORY_PREFIXES)[number];

type OwnedDirectoryPrefix = RunDirectoryPrefix | ScratchDirectoryPrefix;

/** What a sweep calls each kind of directory, and whether the directory is itself a server's data directory. */
const KINDS: Record<OwnedDirectoryPrefix, { noun: string; isDataDirectory: boolean }> = {
  'eob-db-': { noun: 'run directory', isDataDirectory: false },
  'eob-pg-': { noun: 'run directory', isDataDirectory: false },
  'eob-pg-init-': { noun: 'run directory', isDataDirectory: false },
  'eob-sut-': { noun: 'data directory', isDataDirectory: true },
  'eob-test-db-': { noun: 'data directory', isDataDirectory: true },
  'eob-test-pg-': { noun: 'data directory', isDataDirectory: true },
  'eob-stall-': { noun: 'scratch directory', isDataDirectory: false },
};

export { RUN_RECORD_FILE };

/** The processes that use a run or scratch directory, the first being the one that made it. */
export interface RunRecord extends ProcessContext {
  processes: ProcessIdentity[];
}

/** A fresh 0700 directory with a random name under `tempDir`, recording this process as its owner. */
async function createOwnedDirectory(prefix: OwnedDirectoryPrefix, tempDir: string): Promise<string> {
  const dir = await mkdtemp(path.join(tempDir, prefix));
  const context = await currentProcessContext();
  const self = await processIdentity(process.pid);
  if (context !== undefined && self !== undefined) await writeRunRecord(dir, { ...context, processes: [self] });
  return dir;
}

/**
 * A fresh 0700 directory with a random name under `tempDir`, recording this process as its owner, handed to
 * `owner` (the server's OS user). The record stays this user's, so no server can forge one.
 */
export async function createRunDirectory(
  prefix: RunDirectoryPrefix,
  owner: { uid: number; gid: number } | undefined,
  tempDir: string = os.tmpdir(),
): Promise<string> {
  const dir = await createOwnedDirectory(prefix, tempDir);
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  return dir;
}

/**
 * A fresh 0700 scratch directory under `tempDir`, recording this process as its owner. A launcher given it as
 * a data directory takes it as empty, restricts it to the server's OS user but for the record, and records its
 * server in it, so no sweep takes it while that server runs.
 */
export async function createScratchDirectory(prefix: ScratchDirectoryPrefix, tempDir: string = os.tmpdir()): Promise<string> {
  return createOwnedDirectory(prefix, tempDir);
}

/**
 * Adds `pid` (a server, or a helper such as initdb or gdb) to the directory's record, so that no sweep removes
 * the directory while it runs, even after this process is gone. Drops the earlier users that have exited
 * (a restarted server's previous process), never the owner. Does nothing to a directory without a record.
 */
export async function recordRunDirectoryUser(dir: string, pid: number): Promise<void> {
  const record = await readRunRecord(dir);
  const added = await processIdentity(pid);
  if (record === undefined || added === undefined) return;
  const current = await currentProcessContext();
  const [owner, ...others] = record.processes;
  const running: ProcessIdentity[] = [];
  for (const p of others) if (await mayStillRun(p, record, current)) running.push(p);
  await writeRunRecord(dir, { ...record, processes: [...(owner === undefined ? [] : [owner]), ...running, added] });
}

/** Writes the record whole: a sweep reading it at the same moment sees the old one or the new one. */
export async function writeRunRecord(dir: string, record: RunRecord): Promise<void> {
  const temporary = path.join(dir, `${RUN_RECORD_FILE}.${randomBytes(4).toString('hex')}`);
  await writeFile(temporary, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  await rename(temporary, path.join(dir, RUN_RECORD_FILE));
}

function isProcessIdentity(value: unknown): value is ProcessIdentity {
  if (typeof value !== 'object' || value === null) return false;
  const { pid, startTicks } = value as Record<string, unknown>;
  return Number.isSafeInteger(pid) && (pid as number) > 0 && Number.isSafeInteger(startTicks) && (startTicks as number) >= 0;
}

/** The directory's record when it is one this user wrote and reads as one; otherwise undefined. */
export async function readRunRecord(dir: string): Promise<RunRecord | undefined> {
  const file = path.join(dir, RUN_RECORD_FILE);
  try {
    const s = await lstat(file);
    if (!s.isFile() || s.uid !== currentUid()) return undefined;
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { bootId, pidNamespace, processes } = parsed as Record<string, unknown>;
    if (typeof bootId !== 'string' || typeof pidNamespace !== 'string') return undefined;
    if (!Array.isArray(processes) || processes.length === 0 || !processes.every(isProcessIdentity)) return undefined;
    return { bootId, pidNamespace, processes };
  } catch {
    return undefined;
  }
}

export interface RunDirectorySweepOptions {
  /** Where the directories are (os.tmpdir(), where createRunDirectory and createScratchDirectory make them). */
  tempDir: string;
  /**
   * At most this many directories are looked at per sweep, picked at random when there are more, so a start
   * stays cheap however many the temp dir holds, and repeated starts still reach every one.
   */
  maxExamined: number;
  /** A line for each directory removed (or that could not be). */
  log: (line: string) => void;
}

const SWEEP = 'directory sweep';

export function resolveRunDirectorySweepOptions(given: Partial<RunDirectorySweepOptions>): RunDirectorySweepOptions {
  const defined = definedOnly<RunDirectorySweepOptions>(given);
  const options: RunDirectorySweepOptions = { tempDir: os.tmpdir(), maxExamined: 64, log: () => undefined, ...defined };
  nonEmptyString(SWEEP, 'tempDir', options.tempDir);
  intInRange(SWEEP, 'maxExamined', options.maxExamined, 1, 10_000);
  if (typeof options.log !== 'function') throw new OptionsError(`${SWEEP}: log must be a function`);
  return options;
}

/** True when a pid file at the top of `dir` names a process that runs (whoever it is). */
async function pidFileNamesLiveProcess(dir: string, entries: readonly string[]): Promise<boolean> {
  for (const entry of entries) {
    if (!entry.endsWith('.pid')) continue;
    const pid = await readPidFile(path.join(dir, entry));
    if (pid !== undefined && (await pidRuns(pid))) return true;
  }
  return false;
}

/** Why `dir` may be removed (every process that uses it is gone), or undefined when it must stay. */
async function abandonment(dir: string, prefix: OwnedDirectoryPrefix, current: ProcessContext): Promise<string | undefined> {
  const { isDataDirectory } = KINDS[prefix];
  const s = await lstat(dir);
  if (!s.isDirectory() || (currentUid() !== 0 && s.uid !== currentUid())) return undefined;
  const record = await readRunRecord(dir);
  if (record === undefined) return undefined;
  const entries = await readdir(dir);
  if (!isDataDirectory && entries.includes(MARKER_FILE)) return undefined;
  for (const p of record.processes) if (await mayStillRun(p, record, current)) return undefined;
  if (isDataDirectory && (await pidFileNamesLiveProcess(dir, entries))) return undefined;
  const pids = record.processes.map((p) => p.pid).join(', ');
  return record.bootId === current.bootId ? `pid ${pids} no longer running` : `pid ${pids} from an earlier boot`;
}

/** `^(prefix|...)` followed by mkdtemp's six letters and digits; the prefix is the first group. */
function namePattern(prefixes: readonly OwnedDirectoryPrefix[]): RegExp {
  return new RegExp(`^(${prefixes.join('|')})[A-Za-z0-9]{6}$`);
}

/**
 * Removes the run directories under tempDir whose recorded processes have all exited (see the top of this
 * file for what is never removed); resolves with the directories removed.
 */
export async function sweepAbandonedRunDirectories(given: Partial<RunDirectorySweepOptions> = {}): Promise<string[]> {
  return sweep(RUN_DIRECTORY_PREFIXES, given);
}

/**
 * Removes the scratch directories under tempDir whose processes have all exited and, for a data directory,
 * whose server no longer runs; resolves with the directories removed. Each maker of scratch directories calls
 * it first, as each launcher sweeps run directories, so what a killed process left goes at the next start.
 */
export async function sweepAbandonedScratchDirectories(given: Partial<RunDirectorySweepOptions> = {}): Promise<string[]> {
  return sweep(SCRATCH_DIRECTORY_PREFIXES, given);
}

async function sweep(prefixes: readonly OwnedDirectoryPrefix[], given: Partial<RunDirectorySweepOptions>): Promise<string[]> {
  const options = resolveRunDirectorySweepOptions(given);
  const current = await currentProcessContext();
  if (current === undefined) return [];
  const pattern = namePattern(prefixes);
  let names: string[];
  try {
    names = (await readdir(options.tempDir)).filter((name) => pattern.test(name));
  } catch {
    return [];
  }
  if (names.length > options.maxExamined) {
    for (let i = names.length - 1; i > 0; i -= 1) {
      const j = Math.floor(Math.random() * (i + 1));
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    names = names.slice(0, options.maxExamined);
  }
  const removed: string[] = [];
  for (const name of names) {
    const dir = path.join(options.tempDir, name);
    const prefix = pattern.exec(name)![1] as OwnedDirectoryPrefix;
    const { noun } = KINDS[prefix];
    let why: string | undefined;
    try {
      why = await abandonment(dir, prefix, current);
    } catch {
      // Removed by another sweep meanwhile, or unreadable: not ours to judge.
      continue;
    }
    if (why === undefined) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
      options.log(`removed the abandoned ${noun} ${dir} (${why})`);
    } catch (error) {
      options.log(`could not remove the abandoned ${noun} ${dir}: ${(error as Error).message}`);
    }
  }
  return removed;
}

/** A 0700 sub-directory of a run directory, owned like it. */
export async function createPrivateSubdirectory(dir: string, owner: { uid: number; gid: number } | undefined): Promise<string> {
  await mkdir(dir, { mode: 0o700 });
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  return dir;
}

const deletedOnExit = new Set<string>();
let exitHookInstalled = false;

/** Deletes `dir` when this process exits, if it is still there. */
export function deleteOnExit(dir: string): void {
  deletedOnExit.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const d of deletedOnExit) rmSync(d, { recursive: true, force: true });
  });
}

/** Deletes `dir` now (and so not again on exit). */
export async function deleteNow(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  deletedOnExit.delete(dir);
}
