// Directories only one OS user may enter, in places everyone can write to (the temp dir): the per-user cache of
// template data directories, and each private server's run directory (its temp files, the folder
// `secure_file_priv` points at, its socket and the one-shot init file holding the password). Those a server
// leaves behind are deleted when this process exits.
//
// A fixed name under /tmp can be created first by someone else, who then reads or swaps what we put there
// (a swapped template would hand out a data directory with their accounts in it). So a cache directory is
// used only when it is a real directory owned by us and writable by no one else; a run directory gets a
// fresh random name (mkdtemp creates it 0700 and fails rather than reuse an existing one).
import { rmSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

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

/** A fresh 0700 directory with a random name under the temp dir, handed to `owner` (the server's OS user). */
export async function createRunDirectory(prefix: string, owner: { uid: number; gid: number } | undefined): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  return dir;
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
