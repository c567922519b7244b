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

/** The password kept in `datadir`, made (and stored 0600) if there is none yet. */
export async function readOrCreatePassword(datadir: string): Promise<string> {
  const file = path.join(datadir, PASSWORD_FILE);
  const fresh = randomBytes(PASSWORD_BYTES).toString('base64url');
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
  return password;
}
