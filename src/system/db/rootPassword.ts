// The root password of a private server: random, made once per data directory and kept in it in a 0600 file
// of the user who runs eob (the server's own OS user does not need it), and set by an init file at every
// start. The server runs the init file before it serves its first connection, so there is no moment in
// which root has the empty password the installer gave it (checked on MariaDB 10.11 with an init file that
// sleeps 3 s first: a password-less login tried meanwhile waited, then was refused); a data directory made
// before passwords existed gets one on its next start. A failing init file does not stop MariaDB from
// starting, so the starter treats a refused password as a failed start and kills the server.
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
 * would let anyone in without one) are removed. MariaDB's installer makes root@localhost, root@127.0.0.1,
 * root@::1 and root@<hostname>; under --skip-name-resolve the last one is ignored and ALTER USER fails on
 * it ("Operation ALTER USER failed for 'root'@'vm'"), so MariaDB's accounts are changed in the grant table
 * itself and reloaded. MySQL's installer makes root@localhost only.
 */
export function initFileSql(flavor: ServerFlavor, password: string): string {
  if (!PASSWORD_SHAPE.test(password)) throw new PasswordFileError('initFileSql: the password must be 16-128 of A-Z a-z 0-9 _ -');
  if (flavor === 'mysql') return `ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '${password}';\n`;
  // The server runs each line that ends in `;` as one statement.
  return [
    "UPDATE mysql.global_priv SET priv = JSON_SET(JSON_REMOVE(priv, '$.auth_or'), '$.plugin', 'mysql_native_password', " +
      `'$.authentication_string', PASSWORD('${password}')) WHERE user = 'root';`,
    "DELETE FROM mysql.global_priv WHERE user = '';",
    'FLUSH PRIVILEGES;',
    '',
  ].join('\n');
}
