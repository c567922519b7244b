// The private database: start, durability, SIGKILL and restart losing no acknowledged row, clean restart,
// pause, and the clear errors (started twice, port in use, no binary, unwritable or foreign data directory,
// death on start); `eob db start`, whose server dies with it, and whose run directory a later start sweeps if it
// was SIGKILLed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import {
  DatabaseStartError,
  DataDirectoryError,
  ManagedDatabase,
  PortInUseError,
  resolveManagedDatabaseOptions,
} from '../src/harness/mariadb/managedDatabase.ts';
import { ServerBinaryNotFoundError } from '../src/harness/mariadb/serverBinaries.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { exists, MARKER_FILE } from '../src/harness/dataDirectory.ts';
import { createRunDirectory, deleteNow } from '../src/harness/privateDirectory.ts';
import { parseMysqlUrl } from '../src/system/db/mariadb/mysqlUrl.ts';
import { OptionsError } from '../src/validate.ts';
import { startPrivateDatabase } from './support/privateDatabase.ts';
import { useScratchDirectories } from './support/scratchDirectories.ts';

function connect(db: ManagedDatabase): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: db.port, user: 'root', password: parseMysqlUrl(db.url).password, database: 'eob', connectTimeout: 2_000 });
}

const scratchDir = useScratchDirectories('eob-test-scratch-');

describe('managed database: a running server', () => {
  let db: ManagedDatabase;
  before(async () => {
    const started = performance.now();
    db = await startPrivateDatabase();
    process.stdout.write(`# fresh private database ready in ${Math.round(performance.now() - started)} ms (port ${db.port})\n`);
  });
  after(() => db.remove());

  test('answers queries in its own database, on 127.0.0.1 only', async () => {
    assert.match(db.url, /^mysql:\/\/root:[A-Za-z0-9_-]{32}@127\.0\.0\.1:\d+\/eob$/);
    assert.ok(db.pid !== undefined && db.pid > 0);
    const conn = await connect(db);
    try {
      const [rows] = await conn.query('SELECT DATABASE() AS db, @@bind_address AS bind, @@port AS port');
      assert.deepEqual(rows, [{ db: 'eob', bind: '127.0.0.1', port: db.port }]);
    } finally {
      await conn.end();
    }
  });

  test('info() reports version and durable settings', async () => {
    const info = await db.info();
    assert.equal(info.innodbFlushLogAtTrxCommit, 1);
    assert.equal(info.logBin, false);
    assert.equal(info.syncBinlog, 1);
    assert.equal(info.doublewrite, true);
    assert.equal(info.bufferPoolBytes, 256 * 1024 * 1024);
    assert.match(info.version, /^\d+\.\d+\.\d+/);
  });

  test('SIGKILL under a stream of committed inserts, restart: every acknowledged row is there', async () => {
    const setup = await connect(db);
    await setup.query('CREATE TABLE acked (writer INT NOT NULL, seq INT NOT NULL, PRIMARY KEY (writer, seq)) ENGINE=InnoDB');
    await setup.end();

    const writers = 8;
    const acknowledged: string[] = [];
    const errors: string[] = [];
    let reachedTarget: () => void = () => undefined;
    const enough = new Promise<void>((resolve) => (reachedTarget = resolve));
    const writer = async (id: number): Promise<void> => {
      const conn = await connect(db);
      conn.on('error', () => undefined); // the kill closes the socket; the failed query below reports it
      try {
        for (let seq = 0; seq < 1_000_000; seq += 1) {
          await conn.query('INSERT INTO acked (writer, seq) VALUES (?, ?)', [id, seq]);
          acknowledged.push(`${id}:${seq}`);
          if (acknowledged.length >= 2_000) reachedTarget();
        }
      } catch (error) {
        errors.push((error as Error).message);
      } finally {
        conn.destroy();
      }
    };
    const running = Array.from({ length: writers }, (_, i) => writer(i));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([enough, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
    clearTimeout(timer);
    const killedAt = acknowledged.length;
    await db.kill('SIGKILL');
    assert.equal(db.running, false);
    await Promise.all(running);
    assert.equal(errors.length, writers, 'every writer saw the server die');

    const readyMs = await db.start();
    process.stdout.write(`# SIGKILL with ${killedAt} rows acknowledged, restart until ready: ${readyMs} ms\n`);
    const conn = await connect(db);
    try {
      const [rows] = await conn.query('SELECT writer, seq FROM acked');
      const present = new Set((rows as { writer: number; seq: number }[]).map((r) => `${r.writer}:${r.seq}`));
      const lost = acknowledged.filter((key) => !present.has(key));
      assert.deepEqual(lost, [], `acknowledged rows lost by the crash: ${lost.length}`);
      assert.ok(acknowledged.length >= 100, `too few inserts before the kill to mean anything (${acknowledged.length})`);
      // A commit can land while its acknowledgement is lost with the connection: at most one per writer.
      assert.ok(present.size <= acknowledged.length + writers, `${present.size} rows for ${acknowledged.length} acknowledged`);
    } finally {
      await conn.end();
    }
  });

  test('clean restart keeps the data and the same port', async () => {
    const before = await connect(db);
    await before.query('CREATE TABLE kept (id INT PRIMARY KEY)');
    await before.query('INSERT INTO kept VALUES (1), (2), (3)');
    await before.end();
    const oldPid = db.pid;
    const readyMs = await db.restart({ clean: true });
    assert.notEqual(db.pid, oldPid);
    assert.ok(readyMs > 0);
    const conn = await connect(db);
    try {
      const [rows] = await conn.query('SELECT COUNT(*) AS n FROM kept');
      assert.deepEqual(rows, [{ n: 3 }]);
    } finally {
      await conn.end();
    }
  });

  test('pause() makes the server hang, resume() brings it back', async () => {
    const conn = await connect(db);
    conn.on('error', () => undefined);
    try {
      db.pause();
      const hung = await Promise.race([
        conn.query('SELECT 1').then(() => 'answered'),
        new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 500)),
      ]);
      assert.equal(hung, 'hung');
      db.resume();
      const [rows] = await conn.query('SELECT 1 AS one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      db.resume();
      await conn.end().catch(() => undefined);
    }
  });

  test('start() while it runs is refused, and the server goes on', async () => {
    const pid = db.pid;
    await assert.rejects(db.start(), (error: Error) => {
      assert.ok(error instanceof DatabaseStartError, error.message);
      assert.equal(error.message, `the server on port ${db.port} is already running (pid ${pid})`);
      return true;
    });
    assert.equal(db.pid, pid);
    const conn = await connect(db);
    await conn.end();
  });

  test('a second server on the same port is refused with the port named', async () => {
    const other = new ManagedDatabase({ port: db.port, datadir: path.join(await scratchDir(), 'db') });
    await assert.rejects(other.start(), (error: Error) => {
      assert.ok(error instanceof PortInUseError, error.message);
      assert.match(error.message, new RegExp(`port ${db.port} .*in use.*--port`));
      return true;
    });
  });

  test('a second server on the same data directory is refused', async () => {
    const other = new ManagedDatabase({ port: await findFreePort(), datadir: db.datadir });
    await assert.rejects(other.start(), /in use by a running server \(pid \d+\).*eob db stop --datadir/);
  });
});

describe('managed database: errors', () => {
  const dir = scratchDir;

  test('port in use by something else', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const db = new ManagedDatabase({ port, datadir: path.join(await dir(), 'db') });
      await assert.rejects(db.start(), (error: Error) => error instanceof PortInUseError && error.message.includes(`port ${port}`));
    } finally {
      blocker.close();
    }
  });

  test('no server binary: says how to install one or to set MYSQL_URL', async () => {
    const empty = await dir();
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: path.join(empty, 'db'), binDir: empty, searchSystemPaths: false });
    await assert.rejects(db.start(), (error: Error) => {
      assert.ok(error instanceof ServerBinaryNotFoundError, error.message);
      assert.match(error.message, /apt-get install mariadb-server/);
      assert.match(error.message, /MYSQL_URL/);
      assert.match(error.message, new RegExp(empty));
      return true;
    });
  });

  test('data directory under a regular file is not writable (even for root)', async () => {
    const file = path.join(await dir(), 'somefile');
    await writeFile(file, 'not a directory');
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: path.join(file, 'db') });
    await assert.rejects(db.start(), (error: Error) => {
      assert.ok(error instanceof DataDirectoryError, error.message);
      assert.match(error.message, /not writable.*--datadir/);
      return true;
    });
  });

  test('a non-empty directory not made by eob is neither used nor deleted', async () => {
    const foreign = await dir();
    await mkdir(path.join(foreign, 'mysql'));
    await writeFile(path.join(foreign, 'ibdata1'), 'precious');
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: foreign, fresh: true });
    await assert.rejects(db.start(), /not created by eob; pick another one with --datadir/);
    await assert.rejects(db.remove(), /refusing to delete/);
  });

  test('a server that dies on start: the error shows the tail of its error log', async () => {
    const db = new ManagedDatabase({ port: await findFreePort(), datadir: path.join(await dir(), 'db'), serverArgs: ['--no-such-option-for-eob=1'] });
    try {
      await assert.rejects(db.start(), (error: Error) => {
        assert.ok(error instanceof DatabaseStartError, error.message);
        assert.match(error.message, /exited during start/);
        assert.match(error.message, /no-such-option-for-eob/);
        return true;
      });
      assert.equal(db.running, false);
    } finally {
      await db.remove();
    }
  });

  test('options are validated and the error names the field', () => {
    assert.throws(() => resolveManagedDatabaseOptions({ port: 0 }), (e: Error) => e instanceof OptionsError && /port/.test(e.message));
    assert.throws(() => resolveManagedDatabaseOptions({ database: 'no-dashes' }), /database/);
    assert.throws(() => resolveManagedDatabaseOptions({ serverArgs: ['innodb'] }), /serverArgs/);
    assert.equal(resolveManagedDatabaseOptions({ port: 4000 }, '/x').datadir, '/x/.eob/db-4000');
  });
});

/** `eob db start` as a user runs it; resolves with the process and what it printed once MYSQL_URL is out. */
async function eobDbStart(args: string[]): Promise<{ child: ChildProcess; stdout: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, '..', 'bin', 'eob.js'), 'db', 'start', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!/^pid=\d+$/m.test(stdout)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`eob db start did not come up (exit ${child.exitCode}):\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, stdout: () => stdout, exited };
}

async function serverState(pid: number): Promise<string> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}

/** Resolves once `pid` is gone or a zombie (a zombie holds nothing; PID 1 reaps it when it gets to it); throws after 5 s. */
async function untilDead(pid: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  let state = await serverState(pid);
  while (state !== 'gone' && state !== 'Z' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = await serverState(pid);
  }
  assert.ok(state === 'gone' || state === 'Z', `server pid ${pid} still running (state ${state})`);
}

/** The run directory `eob db start` printed (secure_file_priv is its files/ folder). */
function runDirectoryIn(stdout: string): string {
  const files = /secure_file_priv=(\S+)\/files,/.exec(stdout)?.[1];
  assert.ok(files !== undefined && /\/eob-db-[A-Za-z0-9]{6}$/.test(files), stdout);
  return files;
}

describe('eob db start', () => {

  test('prints MYSQL_URL and the durability, and shuts the server down cleanly on SIGTERM', async () => {
    const dir = await scratchDir();
    const port = await findFreePort();
    const { child, stdout, exited } = await eobDbStart(['--port', String(port), '--datadir', path.join(dir, 'db')]);
    const out = stdout();
    const url = /^MYSQL_URL=(mysql:\/\/root:[A-Za-z0-9_-]{32}@127\.0\.0\.1:(\d+)\/eob)$/m.exec(out);
    assert.ok(url !== null && Number(url[2]) === port, out);
    assert.match(out, /innodb_flush_log_at_trx_commit=1/);
    const serverPid = Number(/^pid=(\d+)$/m.exec(out)?.[1]);
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: parseMysqlUrl(url[1]!).password, database: 'eob' });
    await conn.end();
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(await serverState(serverPid), 'gone');
    assert.match(await readFile(path.join(dir, 'db', 'error.log'), 'utf8'), /Shutdown complete/);
  });

  test('the server does not outlive eob when eob is SIGKILLed', async (t) => {
    // The fresh 0700 temp directory itself, so that as root the server runs as the mysql user: a death signal
    // must survive that switch.
    const dir = await scratchDir();
    const { child, stdout, exited } = await eobDbStart(['--port', String(await findFreePort()), '--datadir', dir]);
    // No exit hook of the killed eob deletes its run directory: the test does.
    const runDir = runDirectoryIn(stdout());
    t.after(() => rm(runDir, { recursive: true, force: true }));
    const serverPid = Number(/^pid=(\d+)$/m.exec(stdout())?.[1]);
    assert.ok(serverPid > 0);
    assert.equal(await serverState(serverPid), 'S');
    child.kill('SIGKILL');
    await exited;
    // Killed at once by the parent-death signal; it may linger as a zombie until PID 1 reaps it.
    await untilDead(serverPid);
  });

  test('the next start sweeps the run directory a SIGKILLed eob db start left, not a live one nor the --datadir', async (t) => {
    const dir = await scratchDir();
    const { child, stdout, exited } = await eobDbStart(['--port', String(await findFreePort()), '--datadir', dir]);
    const abandoned = runDirectoryIn(stdout());
    t.after(() => rm(abandoned, { recursive: true, force: true }));
    child.kill('SIGKILL');
    await exited;
    await untilDead(Number(/^pid=(\d+)$/m.exec(stdout())?.[1]));
    assert.ok(await exists(abandoned), 'a SIGKILLed eob leaves its run directory behind');
    // Owned by this (live) process, as a concurrent eob's would be.
    const live = await createRunDirectory('eob-db-', undefined);
    t.after(() => deleteNow(live));

    const lines: string[] = [];
    const db = await startPrivateDatabase({ log: (line) => lines.push(line) });
    try {
      assert.equal(await exists(abandoned), false, `${abandoned} still there; the start logged:\n${lines.join('\n')}`);
      assert.ok(lines.some((line) => line.startsWith(`database: removed the abandoned run directory ${abandoned} (pid `)), lines.join('\n'));
      assert.ok(await exists(live), 'a run directory whose owner runs stays');
      assert.ok(await exists(path.join(dir, MARKER_FILE)), 'the killed server\'s --datadir stays');
    } finally {
      await db.remove();
    }
  });
});
