// The private PostgreSQL: starts with durable settings, only its password lets anyone in over TCP, committed
// rows survive SIGKILL + restart, pause freezes it, stop ends it, and it never deletes a directory it did not make.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PortInUseError, PostgresStartError, PrivatePostgres } from '../src/harness/postgres/privatePostgres.ts';
import { DataDirectoryError } from '../src/harness/dataDirectory.ts';
import { findPostgresBinaries, PostgresBinaryNotFoundError } from '../src/harness/postgres/postgresBinaries.ts';
import { classifyPgError } from '../src/system/db/postgres/errors.ts';
import { startPrivatePostgres, usePrivatePostgres } from './support/privatePostgres.ts';
import { findFreePort } from '../src/harness/ports.ts';
import { pathOnlyEnvironment } from '../src/config.ts';

const execFileAsync = promisify(execFile);

async function query(url: string, sql: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as Record<string, unknown>[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withPassword(url: string, password: string | undefined): string {
  const u = new URL(url);
  u.password = password ?? '';
  return u.toString();
}

describe('private PostgreSQL', () => {
  const db = usePrivatePostgres();

  test('runs with durable settings, as a non-root user, and the URL with its password logs in', async () => {
    const info = await db().info();
    assert.equal(info.engine, 'postgres');
    assert.match(info.version, /^\d+\.\d+/);
    assert.equal(info.fsync, true);
    assert.equal(info.synchronousCommit, 'on');
    assert.equal(info.fullPageWrites, true);
    const [row] = await query(db().url, 'SELECT current_user AS who, current_database() AS db');
    assert.deepEqual(row, { who: 'postgres', db: 'eob' });
    if (process.getuid?.() === 0) assert.equal(db().serverUser, 'postgres');
    const passwordFile = await stat(db().passwordFile);
    assert.equal(passwordFile.mode & 0o077, 0, 'the password file is 0600');
    const datadir = await stat(db().datadir);
    assert.equal(datadir.mode & 0o077, 0, 'the data directory is 0700');
  });

  test('over TCP, no password and a wrong password are refused', async () => {
    for (const password of [undefined, 'wrong-password-123']) {
      await assert.rejects(query(withPassword(db().url, password), 'SELECT 1'), (error: Error & { code?: string }) => {
        // 28P01 invalid_password; node-postgres refuses locally when SCRAM is asked for and no password is set.
        assert.ok(error.code === '28P01' || /password/i.test(error.message), `${error.code}: ${error.message}`);
        return true;
      });
    }
  });

  test('another OS user can neither log in without the password nor reach the socket', { skip: process.getuid?.() !== 0 ? 'needs root to run psql as nobody' : false }, async () => {
    const binaries = await findPostgresBinaries(undefined);
    const psql = path.join(binaries.binDir, 'psql');
    const run = (host: string) =>
      execFileAsync('runuser', ['-u', 'nobody', '--', psql, '-w', '-h', host, '-p', String(db().port), '-U', 'postgres', '-d', 'eob', '-c', 'SELECT 1'], {
        cwd: '/',
        env: pathOnlyEnvironment(),
        timeout: 10_000,
      });
    await assert.rejects(run('127.0.0.1'), /password/i);
    await assert.rejects(run(db().socketDirectory), /Permission denied|No such file/i);
  });

  test('SIGKILL + restart (crash recovery) keeps every committed row', async () => {
    await query(db().url, 'CREATE TABLE crash_rows (id INT PRIMARY KEY)');
    const committed: number[] = [];
    let stop = false;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      const client = new pg.Client({ connectionString: db().url });
      client.on('error', () => undefined);
      await client.connect();
      for (let i = 0; !stop; i += 1) {
        const id = w * 1_000_000 + i;
        try {
          await client.query('INSERT INTO crash_rows VALUES ($1)', [id]);
          committed.push(id);
        } catch {
          break; // the server is gone; this insert's outcome is unknown and is not counted
        }
      }
      await client.end().catch(() => undefined);
    });
    await new Promise((r) => setTimeout(r, 700));
    const before = committed.length;
    await db().kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    assert.ok(before > 0, 'writers committed rows before the kill');
    const recoveryMs = await db().start();
    const rows = await query(db().url, 'SELECT id FROM crash_rows');
    const present = new Set(rows.map((r) => Number(r.id)));
    const lost = committed.filter((id) => !present.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${committed.length} committed rows lost`);
    console.log(`# ${committed.length} committed rows, all present after SIGKILL; restart with crash recovery ${recoveryMs} ms`);
  });

  test('pause stops it answering, resume brings it back', async () => {
    const client = new pg.Client({ connectionString: db().url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      db().pause();
      assert.equal(db().isPaused, true);
      const answer = client.query('SELECT 1 AS one');
      const timedOut = await Promise.race([answer.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 700))]);
      assert.equal(timedOut, true, 'a paused server does not answer');
      db().resume();
      assert.deepEqual((await answer).rows, [{ one: 1 }]);
    } finally {
      db().resume();
      await client.end().catch(() => undefined);
    }
  });

  test('start() while it runs is refused, and the server goes on', async () => {
    const pid = db().pid;
    await assert.rejects(db().start(), (error: Error) => {
      assert.ok(error instanceof PostgresStartError, error.message);
      assert.equal(error.message, `the server on port ${db().port} is already running (pid ${pid})`);
      return true;
    });
    assert.equal(db().pid, pid);
    assert.deepEqual(await query(db().url, 'SELECT 1 AS one'), [{ one: 1 }]);
  });

  test('a second server on a taken port is refused with a clear error', async () => {
    const other = new PrivatePostgres({ port: db().port, datadir: await mkdtemp(path.join(os.tmpdir(), 'eob-test-pg-port-')) });
    await assert.rejects(other.start(), (error: Error) => error instanceof PortInUseError && /--port/.test(error.message));
    await rm(other.datadir, { recursive: true, force: true });
  });

  test('stop ends the server: connections are refused until it starts again', async () => {
    await db().stop();
    assert.equal(db().running, false);
    await assert.rejects(query(db().url, 'SELECT 1'), (error: unknown) => classifyPgError(error) === 'connection');
    await db().start();
    assert.deepEqual(await query(db().url, 'SELECT 1 AS one'), [{ one: 1 }]);
  });
});

describe('private PostgreSQL: refusals', () => {
  const made: string[] = [];
  after(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });

  test('a directory it did not create is neither used nor removed', async () => {
    const foreign = await mkdtemp(path.join(os.tmpdir(), 'eob-test-pg-foreign-'));
    made.push(foreign);
    await writeFile(path.join(foreign, 'precious.txt'), 'keep me');
    const db = new PrivatePostgres({ datadir: foreign, port: await findFreePort() });
    await assert.rejects(db.start(), (error: Error) => error instanceof DataDirectoryError && /not created by eob/.test(error.message));
    await assert.rejects(db.remove(), (error: Error) => error instanceof DataDirectoryError && /refusing to delete/.test(error.message));
    assert.deepEqual(await readdir(foreign), ['precious.txt']);
  });

  test('missing binaries: the error says what to install', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'eob-test-pg-nobin-'));
    made.push(empty);
    await assert.rejects(findPostgresBinaries(empty), (error: Error) => error instanceof PostgresBinaryNotFoundError && /apt-get install postgresql/.test(error.message));
  });

  test('as root, a data directory the postgres user cannot reach is refused, naming the blocking directory', { skip: process.getuid?.() !== 0 ? 'root only' : false }, async () => {
    const closed = await mkdtemp(path.join(os.tmpdir(), 'eob-test-pg-closed-'));
    made.push(closed);
    const datadir = path.join(closed, 'data');
    await mkdir(datadir);
    await assert.rejects(startPrivatePostgres({ datadir }), (error: Error) => error instanceof PostgresStartError && error.message.includes(closed));
  });
});
