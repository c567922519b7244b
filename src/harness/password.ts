// The password of a private server's administrator, whatever the engine: random, made once per data directory
// and kept in it in a 0600 file of the user who runs eob (the server's own OS user does not need it).
import { randomBytes } from 'node:crypto';
import { chmod, lstat, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const PASSWORD_FILE = '.eob-root-password';

// 24 random bytes, base64url: 32 characters of [A-Za-z0-9_-], which need no quoting in SQL nor encoding in a URL.
const PASSWORD_BYTES = 24;
export const PASSWORD_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

export class PasswordFileError extends Error {
  override readonly name = 'PasswordFileError';
}

/** A new random password of the shape readOrCreatePassword accepts. */
export function newPassword(): string {
  return randomBytes(PASSWORD_BYTES).toString('base64url');
}

/**
 * The password kept in `datadir`, stored 0600 if there is none yet: `wanted` when given (servers that must share
 * one), else a new random one. A kept password other than `wanted` is refused.
 */
export async function readOrCreatePassword(datadir: string, wanted?: string): Promise<string> {
  const file = path.join(datadir, PASSWORD_FILE);
  if (wanted !== undefined && !PASSWORD_SHAPE.test(wanted)) throw new PasswordFileError('the password must be 16-128 of A-Z a-z 0-9 _ -');
  const fresh = wanted ?? newPassword();
  try {
    // 'wx': never follow or overwrite something already there.
    await writeFile(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const s = await lstat(file);
  if (!s.isFile()) throw new PasswordFileError(`${file} is not a regular file; delete it and start again (a new password is made)`);
  if ((s.mode & 0o077) !== 0) await chmod(file, 0o600);
  const password = (await readFile(file, 'utf8')).trim();
  if (!PASSWORD_SHAPE.test(password)) {
    throw new PasswordFileError(`${file} does not hold a password made by eob (16-128 of A-Z a-z 0-9 _ -); delete it and start again (a new password is made)`);
  }
  if (wanted !== undefined && password !== wanted) {
    throw new PasswordFileError(`${file} holds another password than the one this server must share; start from a fresh data directory`);
  }
  return password;
}
