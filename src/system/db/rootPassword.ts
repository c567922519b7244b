// The root password of a private server: random, made once per data directory and kept in it in a 0600 file
// of the user who runs eob (the server's own OS user does not need it), and set by an init file at every
// start. The server runs the init file before it accepts its first connection, so there is no moment in
// which root has the empty password the installer gave it; a data directory made before passwords existed
// gets one on its next start.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ServerFlavor } from './serverBinaries.ts';

export const PASSWORD_FILE = '.eob-root-password';

// 24 random bytes, base64url: 32 characters of [A-Za-z0-9_-], which need no quoting in SQL nor encoding in a URL.
const PASSWORD_BYTES = 24;
const PASSWORD_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

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

/**
 * SQL for the server's --init-file: every root account gets `password`, and anonymous accounts (which
 * would let anyone in without one) are dropped. MariaDB's installer makes root@localhost, root@127.0.0.1,
 * root@::1 and root@<hostname>, so the accounts are found rather than listed; MySQL's makes root@localhost.
 */
export function initFileSql(flavor: ServerFlavor, password: string): string {
  if (!PASSWORD_SHAPE.test(password)) throw new PasswordFileError('initFileSql: the password must be 16-128 of A-Z a-z 0-9 _ -');
  if (flavor === 'mysql') return `ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '${password}';\n`;
  // The server reads an init file line by line and runs what it gathered at a line ending in `;`, so the loop
  // stays on one line.
  return (
    `BEGIN NOT ATOMIC FOR a IN (SELECT user, host FROM mysql.global_priv WHERE user IN ('root', '')) DO ` +
    `IF a.user = '' THEN EXECUTE IMMEDIATE CONCAT('DROP USER ', QUOTE(a.user), '@', QUOTE(a.host)); ` +
    `ELSE EXECUTE IMMEDIATE CONCAT('ALTER USER ', QUOTE(a.user), '@', QUOTE(a.host), ' IDENTIFIED BY ''${password}'''); END IF; ` +
    `END FOR; END;\n`
  );
}
