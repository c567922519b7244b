// The MariaDB/MySQL root password of a private server (made and kept by ../password.ts), set by an init file
// at every start. The server runs the init file before it serves its first connection, so there is no moment in
// which root has the empty password the installer gave it (checked on MariaDB 10.11 with an init file that
// sleeps 3 s first: a password-less login tried meanwhile waited, then was refused); a data directory made
// before passwords existed gets one on its next start. A failing init file does not stop MariaDB from
// starting, so the starter treats a refused password as a failed start and kills the server.
import type { ServerFlavor } from './serverBinaries.ts';
import { PASSWORD_SHAPE, PasswordFileError } from '../password.ts';

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
