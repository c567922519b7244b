// Recognises, restricts and deletes the data directories of private database servers, whatever the engine.
// Every directory a launcher makes carries a marker file; `remove` and `--fresh` refuse to delete a directory
// without it, so a mistyped --datadir can never wipe someone's real database. A fresh directory that a process
// made for a server's data (the system under test's, the tests') carries its maker's record from the start, so
// that a sweep can take it once its processes are gone; holding only that record, it is still empty.
import { access, chmod, constants, lchown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const MARKER_FILE = '.eob-managed';
/** Who uses a directory eob made (privateDirectory.ts writes and reads it). */
export const RUN_RECORD_FILE = '.eob-run-owner.json';
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
  if (entries.every((entry) => entry === RUN_RECORD_FILE)) return 'empty';
  return entries.includes(MARKER_FILE) ? 'managed' : 'foreign';
}

export function unwritable(datadir: string, error: unknown): DataDirectoryError {
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

/** The pid in the server's pid file, if there is one: its first line (postmaster.pid's others hold the port, socket...). */
export async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
