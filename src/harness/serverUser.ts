// Which OS user a private server runs as. As root, mariadbd would run as root, and `SELECT ... INTO OUTFILE`
// or a plugin could then write any file root can; the distribution's own `mysql` system user owns nothing
// else, so the server runs as that user when it exists and can reach the data directory. A non-root user
// runs the server as themselves (switching users needs root).
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

function parsePasswdLine(line: string, name: string): OsUser | undefined {
  const fields = line.trim().split(':');
  if (fields[0] !== name || fields.length < 4) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
}

/** The user named `name` (getent, so LDAP and the like count; /etc/passwd where getent is missing), or undefined. */
export async function lookupUser(name: string): Promise<OsUser | undefined> {
  try {
    const { stdout } = await execFileAsync('getent', ['passwd', name], { timeout: 5_000 });
    return parsePasswdLine(stdout, name);
  } catch (error) {
    // getent exits 2 for an unknown name; ENOENT means there is no getent.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  }
  try {
    for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
      const user = parsePasswdLine(line, name);
      if (user !== undefined) return user;
    }
  } catch {
    // no passwd file: no such user
  }
  return undefined;
}

/**
 * The first directory on the way to `target` (its parent included) that `user` may not pass through, or
 * undefined when it can reach `target`. Only the user's primary group counts: the server is started with no
 * supplementary groups.
 */
export async function firstBlockedDirectory(user: OsUser, target: string): Promise<string | undefined> {
  let dir = path.dirname(path.resolve(target));
  const chain: string[] = [];
  for (;;) {
    chain.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of chain) {
    let s;
    try {
      s = await stat(d);
    } catch {
      return d;
    }
    const bit = s.uid === user.uid ? 0o100 : s.gid === user.gid ? 0o010 : 0o001;
    if ((s.mode & bit) === 0) return d;
  }
  return undefined;
}
