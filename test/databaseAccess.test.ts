// Only the owner of a private database can enter it: root needs the random password kept 0600 in the data
// directory, another OS user can neither log in nor read that file, INTO OUTFILE / LOAD_FILE stay inside a
// private folder, as root the server runs as the mysql user, and the template cache refuses a directory that
// someone else owns or may write to.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, stat, symlink, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { ManagedDatabase } from '../src/harness/mariadb/managedDatabase.ts';
import { parseMysqlUrl } from '../src/system/db/mariadb/mysqlUrl.ts';
import { ensurePrivateDirectory, PrivateDirectoryError } from '../src/harness/privateDirectory.ts';
import { lookupUser } from '../src/harness/serverUser.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import { useScratchDirectories } from './support/scratchDirectories.ts';

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const canSwitchUser = isRoot && existsSync('/usr/sbin/runuser');

const scratchDir = useScratchDirectories('eob-test-access-');

function connect(db: ManagedDatabase, password: string): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: db.port, user: 'root', password, connectTimeout: 5_000 });
}

async function loginError(db: ManagedDatabase, password: string): Promise<number | undefined> {
  try {
    const conn = await connect(db, password);
    await conn.end();
    return undefined;
  } catch (error) {
    return (error as { errno?: number }).errno;
  }
}

/** Runs `command` as the OS user `nobody`; resolves with its exit code and output. */
async function asNobody(command: string, args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('runuser', ['-u', 'nobody', '--', command, ...args], { timeout: 20_000 });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('a private database only its owner can enter', () => {
  let db: ManagedDatabase;
  let password: string;
  before(async () => {
    db = await startPrivateDatabase();
    password = parseMysqlUrl(db.url).password;
  });
  after(() => db.remove());

  test('root needs the random password kept 0600 in the data directory; no account logs in without one', async () => {
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    assert.equal((await readFile(db.passwordFile, 'utf8')).trim(), password);
    const file = await stat(db.passwordFile);
    assert.equal(file.mode & 0o777, 0o600);
    assert.equal(file.uid, process.getuid?.());
    assert.equal((await stat(db.datadir)).mode & 0o777, 0o700);
    assert.equal(await loginError(db, ''), 1045, 'root without a password is refused');
    assert.equal(await loginError(db, 'wrong-password'), 1045);
    const conn = await connect(db, password);
    try {
      // An account with no password and not locked would let anyone on the machine in.
      const [open] = await conn.query(
        "SELECT user, host FROM mysql.global_priv WHERE IFNULL(JSON_VALUE(priv, '$.account_locked'), 0) = 0 " +
          "AND IFNULL(JSON_VALUE(priv, '$.authentication_string'), '') = ''",
      );
      assert.deepEqual(open, []);
      const [bind] = await conn.query('SELECT @@bind_address AS bind');
      assert.deepEqual(bind, [{ bind: '127.0.0.1' }]);
    } finally {
      await conn.end();
    }
  });

  test('another OS user cannot log in as root, nor read the password or the data', { skip: !canSwitchUser && 'needs root and runuser' }, async () => {
    const login = await asNobody('mariadb', ['-h127.0.0.1', `-P${db.port}`, '-uroot', '-e', 'SELECT 1']);
    assert.notEqual(login.code, 0, login.output);
    assert.match(login.output, /Access denied for user 'root'/);
    const read = await asNobody('cat', [db.passwordFile]);
    assert.notEqual(read.code, 0, 'nobody read the password file');
    assert.doesNotMatch(read.output, new RegExp(password));
    const list = await asNobody('ls', [db.datadir]);
    assert.notEqual(list.code, 0, `nobody listed the data directory: ${list.output}`);
  });

  test('INTO OUTFILE and LOAD_FILE reach only the private secure_file_priv folder', async () => {
    const conn = await connect(db, password);
    try {
      const [priv] = await conn.query('SELECT @@secure_file_priv AS dir');
      assert.deepEqual(priv, [{ dir: `${db.secureFileDir}/` }]);
      const outside = path.join(os.tmpdir(), `eob-outfile-${process.pid}-${Date.now()}`);
      await assert.rejects(conn.query(`SELECT 'x' INTO OUTFILE '${outside}'`), (e: Error & { errno?: number }) => e.errno === 1290);
      assert.equal(existsSync(outside), false);
      const [loaded] = await conn.query("SELECT LOAD_FILE('/etc/passwd') AS f");
      assert.deepEqual(loaded, [{ f: null }]);
      const inside = path.join(db.secureFileDir, 'allowed.txt');
      await conn.query(`SELECT 'x' INTO OUTFILE '${inside}'`);
      assert.equal(await readFile(inside, 'utf8'), 'x\n');
      assert.equal((await stat(db.secureFileDir)).mode & 0o777, 0o700);
    } finally {
      await conn.end();
    }
  });

  test('as root, the server runs as the mysql user, which owns the data directory (the password file stays root\'s)', async (t) => {
    const mysqlUser = await lookupUser('mysql');
    if (!isRoot || mysqlUser === undefined) {
      t.skip('needs root and a mysql user');
      return;
    }
    const status = await readFile(`/proc/${db.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status)!.slice(1).map(Number);
    assert.deepEqual(uids, [mysqlUser.uid, mysqlUser.uid, mysqlUser.uid, mysqlUser.uid]);
    assert.equal(db.serverUser, 'mysql');
    assert.equal((await stat(db.datadir)).uid, mysqlUser.uid);
    assert.equal((await stat(path.join(db.datadir, 'ibdata1'))).uid, mysqlUser.uid);
    assert.equal((await stat(db.passwordFile)).uid, 0);
    const run = await stat(path.dirname(db.socketPath));
    assert.equal(run.uid, mysqlUser.uid);
    assert.equal(run.mode & 0o777, 0o700);
  });
});

describe('private database: upgrades and fallbacks', () => {
  test('a data directory from before passwords (root without one, no password file) gets a password on its next start', async () => {
    const db = await startPrivateDatabase();
    try {
      const conn = await connect(db, parseMysqlUrl(db.url).password);
      // What the installer left before passwords existed: root with no authentication at all.
      await conn.query("UPDATE mysql.global_priv SET priv = JSON_REMOVE(priv, '$.plugin', '$.authentication_string') WHERE user = 'root'");
      await conn.query('FLUSH PRIVILEGES');
      await conn.end();
      await db.stop();
      await unlink(db.passwordFile);
      const again = new ManagedDatabase({ ...db.options, fresh: false });
      await again.start();
      try {
        const fresh = parseMysqlUrl(again.url).password;
        assert.match(fresh, /^[A-Za-z0-9_-]{32}$/);
        assert.equal(await loginError(again, ''), 1045);
        const ok = await connect(again, fresh);
        await ok.end();
      } finally {
        await again.stop();
      }
    } finally {
      await db.remove();
    }
  });

  test('as root with a data directory the mysql user cannot reach, the server runs as root and says why', async (t) => {
    if (!isRoot || (await lookupUser('mysql')) === undefined) {
      t.skip('needs root and a mysql user');
      return;
    }
    const hidden = await scratchDir(); // mkdtemp: 0700, root's
    const lines: string[] = [];
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: path.join(hidden, 'db'), log: (l) => lines.push(l) });
    try {
      await db.start();
      assert.equal(db.serverUser, 'root');
      assert.ok(lines.some((l) => /mysql user cannot enter .* so the server runs as root/.test(l)), lines.join('\n'));
      assert.equal(await loginError(db, ''), 1045, 'still needs the password');
    } finally {
      await db.remove();
    }
  });
});

describe('template cache directory', () => {
  test('one writable by others, a symlink, or (as root) one owned by someone else is refused with what to do', async () => {
    const base = await scratchDir();
    const open = path.join(base, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    await assert.rejects(ensurePrivateDirectory(open), (e: Error) => e instanceof PrivateDirectoryError && /writable by everyone/.test(e.message) && /chmod 700/.test(e.message));
    const groupWritable = path.join(base, 'group');
    await mkdir(groupWritable);
    await chmod(groupWritable, 0o770);
    await assert.rejects(ensurePrivateDirectory(groupWritable), /writable by its group/);
    const link = path.join(base, 'link');
    await symlink(open, link);
    await assert.rejects(ensurePrivateDirectory(link), /symbolic link/);
    if (isRoot) {
      const theirs = path.join(base, 'theirs');
      await mkdir(theirs, { mode: 0o700 });
      await chown(theirs, 65534, 65534);
      await assert.rejects(ensurePrivateDirectory(theirs), /owned by uid 65534, not by you/);
    }
    const readable = path.join(base, 'readable');
    await mkdir(readable, { mode: 0o755 });
    await chmod(readable, 0o755);
    await ensurePrivateDirectory(readable);
    assert.equal((await stat(readable)).mode & 0o777, 0o700, 'one of ours is tightened to 0700');
    const created = path.join(base, 'new');
    await ensurePrivateDirectory(created);
    assert.equal((await stat(created)).mode & 0o777, 0o700);
  });

  test('a database whose template cache someone else may write to does not start', async () => {
    const open = path.join(await scratchDir(), 'cache');
    await mkdir(open);
    await chmod(open, 0o777);
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: path.join(await scratchDir(), 'db'), templateCacheDir: open });
    try {
      await assert.rejects(db.start(), (e: Error) => e instanceof PrivateDirectoryError && e.message.includes(open));
      assert.equal(db.running, false);
    } finally {
      await db.remove().catch(() => undefined);
    }
  });
});
