// Scratch directories (the system under test's data directory, the tests' private servers' data directories,
// the allocator stall's script) carry their maker's record like run directories, and the sweep takes one once
// its processes are gone: a data directory even though it holds the data directory marker, but never while a
// recorded server or a process named in one of its pid files runs. End to end: the system under test and the
// tests' private server support each sweep what a SIGKILLed maker of theirs left.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exists, inspectDataDirectory, MARKER_FILE } from '../src/harness/dataDirectory.ts';
import {
  createRunDirectory,
  createScratchDirectory,
  readRunRecord,
  recordRunDirectoryUser,
  RUN_RECORD_FILE,
  sweepAbandonedScratchDirectories,
  sweepAbandonedRunDirectories,
  writeRunRecord,
  type ScratchDirectoryPrefix,
} from '../src/harness/privateDirectory.ts';
import { currentProcessContext, type ProcessIdentity } from '../src/harness/processIdentity.ts';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { readEnvironment } from '../src/config.ts';
import { startPrivateServer } from './support/privateServer.ts';
import { useScratchDirectories } from './support/scratchDirectories.ts';
import { exitedProcess, liveProcess, type After } from './support/sleepingProcess.ts';

const scratchDir = useScratchDirectories('eob-test-sweep-');
const SRC = path.join(import.meta.dirname, '..', 'src');
const SUPPORT = path.join(import.meta.dirname, 'support');

/** A scratch directory in `tempDir` whose only recorded process is `owner`. */
async function scratchOf(tempDir: string, prefix: ScratchDirectoryPrefix, owner: ProcessIdentity): Promise<string> {
  const dir = await createScratchDirectory(prefix, tempDir);
  const context = await currentProcessContext();
  assert.ok(context !== undefined, 'these tests need /proc');
  await writeRunRecord(dir, { ...context, processes: [owner] });
  return dir;
}

/** A data directory as a launcher leaves it: the marker, a file of the server's, a pid file. */
async function fillAsDataDirectory(dir: string, pidFile?: { name: string; pid: number }): Promise<void> {
  await writeFile(path.join(dir, MARKER_FILE), '{}\n');
  await mkdir(path.join(dir, 'mysql'));
  if (pidFile !== undefined) await writeFile(path.join(dir, pidFile.name), `${pidFile.pid}\n${dir}\n`);
}

async function sweep(tempDir: string): Promise<{ removed: string[]; lines: string[] }> {
  const lines: string[] = [];
  const removed = await sweepAbandonedScratchDirectories({ tempDir, log: (line) => lines.push(line) });
  return { removed, lines };
}

/**
 * Runs `script` (an ES module body, with tsx) in a child that prints one line of JSON and then waits to be
 * killed; resolves with the child and that line.
 */
async function childThatWaits(t: After, script: string, timeoutMs = 60_000): Promise<{ child: ChildProcess; line: unknown; exited: Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `${script}\nsetInterval(() => undefined, 60_000);`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const deadline = Date.now() + timeoutMs;
  while (!stdout.includes('\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the child did not print its line (exit ${child.exitCode}):\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, line: JSON.parse(stdout.split('\n')[0]!), exited };
}

async function sigkill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  child.kill('SIGKILL');
  await exited;
}

/** Resolves once `pid` is gone or a zombie (PID 1 reaps it when it gets to it); throws after 5 s. */
async function untilDead(pid: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    const state = stat === undefined ? 'gone' : stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'gone' || state === 'Z') return;
    assert.ok(Date.now() < deadline, `pid ${pid} still running (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('sweep of abandoned scratch directories', () => {
  test('a SIGKILLed child leaves its scratch directory; the next sweep removes it, and logs it', async (t) => {
    const tempDir = await scratchDir();
    const { child, line, exited } = await childThatWaits(
      t,
      `const { createScratchDirectory } = await import(${JSON.stringify(path.join(SRC, 'harness', 'privateDirectory.ts'))});` +
        `process.stdout.write(JSON.stringify(await createScratchDirectory('eob-stall-', ${JSON.stringify(tempDir)})) + '\\n');`,
    );
    const dir = line as string;
    assert.equal((await readRunRecord(dir))?.processes[0]?.pid, child.pid, 'the maker recorded itself');
    assert.deepEqual((await sweep(tempDir)).removed, [], 'kept while its maker runs');
    await sigkill(child, exited);
    assert.ok(await exists(dir), 'a SIGKILL runs no exit hook');
    const { removed, lines } = await sweep(tempDir);
    assert.deepEqual(removed, [dir]);
    assert.match(lines.join('\n'), new RegExp(`removed the abandoned scratch directory ${dir} \\(pid ${child.pid} no longer running\\)`));
  });

  test('a scratch data directory goes with its marker once its processes are gone; a stall directory with one stays', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    const data: string[] = [];
    for (const prefix of ['eob-sut-', 'eob-test-db-', 'eob-test-pg-'] as const) {
      const dir = await scratchOf(tempDir, prefix, dead);
      await fillAsDataDirectory(dir, { name: prefix === 'eob-test-pg-' ? 'postmaster.pid' : 'mysqld.pid', pid: dead.pid });
      data.push(dir);
    }
    const stall = await scratchOf(tempDir, 'eob-stall-', dead);
    await fillAsDataDirectory(stall);
    const { removed, lines } = await sweep(tempDir);
    assert.deepEqual(removed.sort(), data.sort());
    assert.match(lines.join('\n'), /removed the abandoned data directory /);
    assert.ok(await exists(stall));
  });

  test('a data directory whose recorded server still runs stays, with its maker gone', async (t) => {
    const tempDir = await scratchDir();
    const dir = await scratchOf(tempDir, 'eob-sut-', await exitedProcess(t));
    await fillAsDataDirectory(dir);
    const server = await liveProcess(t);
    await recordRunDirectoryUser(dir, server.identity.pid);
    assert.deepEqual((await sweep(tempDir)).removed, []);
    await server.end();
    assert.deepEqual((await sweep(tempDir)).removed, [dir]);
  });

  test('a data directory whose pid file names a running process stays, though no record names it', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    const server = await liveProcess(t);
    const mariadb = await scratchOf(tempDir, 'eob-test-db-', dead);
    await fillAsDataDirectory(mariadb, { name: 'mysqld.pid', pid: server.identity.pid });
    // postmaster.pid: the pid on the first line, then the data directory, the start time, the port...
    const postgres = await scratchOf(tempDir, 'eob-test-pg-', dead);
    await fillAsDataDirectory(postgres, { name: 'postmaster.pid', pid: server.identity.pid });
    assert.deepEqual((await sweep(tempDir)).removed, []);
    await server.end();
    assert.deepEqual((await sweep(tempDir)).removed.sort(), [mariadb, postgres].sort());
  });

  test('never removed: a scratch directory of a live maker, one without a record, a name mkdtemp does not make', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    const mine = await createScratchDirectory('eob-sut-', tempDir);
    const noRecord = path.join(tempDir, 'eob-sut-NoRec1');
    await mkdir(noRecord);
    const chosen = path.join(tempDir, 'eob-sut-3307');
    await mkdir(chosen);
    await writeRunRecord(chosen, { ...(await currentProcessContext())!, processes: [dead] });
    assert.deepEqual((await sweep(tempDir)).removed, []);
    for (const dir of [mine, noRecord, chosen]) assert.ok(await exists(dir), dir);
  });

  test('the launchers sweep run directories and the makers of scratch directories sweep those', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    const scratch = await scratchOf(tempDir, 'eob-sut-', dead);
    const run = await createRunDirectory('eob-db-', undefined, tempDir);
    await writeRunRecord(run, { ...(await currentProcessContext())!, processes: [dead] });
    assert.deepEqual(await sweepAbandonedScratchDirectories({ tempDir }), [scratch]);
    assert.deepEqual(await sweepAbandonedRunDirectories({ tempDir }), [run]);
  });

  test('a launcher takes a scratch directory holding only its record as an empty data directory', async () => {
    const dir = await createScratchDirectory('eob-test-db-', await scratchDir());
    assert.ok(await exists(path.join(dir, RUN_RECORD_FILE)));
    assert.equal(await inspectDataDirectory(dir), 'empty');
    await writeFile(path.join(dir, 'ibdata1'), '');
    assert.equal(await inspectDataDirectory(dir), 'foreign');
  });
});

describe('makers of scratch directories sweep what a SIGKILLed maker left', () => {
  test('the tests\' private server support: a killed test process\'s data directory goes at the next start', async (t) => {
    // A stand-in server (it only needs start and remove), so no database runs.
    const { child, line, exited } = await childThatWaits(
      t,
      `const { startPrivateServer } = await import(${JSON.stringify(path.join(SUPPORT, 'privateServer.ts'))});` +
        `let made;` +
        `await startPrivateServer('eob-test-db-',` +
        `  (port, datadir) => { made = datadir; return { start: async () => undefined, remove: async () => undefined }; }, {});` +
        `process.stdout.write(JSON.stringify(made) + '\\n');`,
    );
    const abandoned = line as string;
    t.after(() => rm(abandoned, { recursive: true, force: true }));
    await sigkill(child, exited);
    assert.ok(await exists(abandoned), 'a SIGKILLed test process leaves its data directory behind');
    let made: string | undefined;
    await startPrivateServer(
      'eob-test-db-',
      (_port, datadir) => {
        made = datadir;
        return { start: async () => undefined, remove: async () => undefined };
      },
      {},
    );
    t.after(() => rm(made!, { recursive: true, force: true }));
    assert.equal(await exists(abandoned), false, `${abandoned} is still there`);
    assert.equal((await readRunRecord(made!))?.processes[0]?.pid, process.pid, 'the new one records its maker');
  });

  test('the system under test: a SIGKILLed harness\'s data directory goes at the next start, its server recorded in it until then', { timeout: 180_000 }, async (t) => {
    const env = readEnvironment();
    const system = { handleSignals: false, mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath };
    const { child, line, exited } = await childThatWaits(
      t,
      `const { SystemUnderTest } = await import(${JSON.stringify(path.join(SRC, 'harness', 'systemUnderTest.ts'))});` +
        `const sut = await SystemUnderTest.start(${JSON.stringify(system)});` +
        `process.stdout.write(JSON.stringify({ datadir: sut.privateDatabase.datadir, serverPid: sut.dbPid }) + '\\n');`,
      120_000,
    );
    const { datadir, serverPid } = line as { datadir: string; serverPid: number };
    // Removed only once the server is gone: it would go on writing into it.
    t.after(async () => {
      await sigkill(child, exited);
      await untilDead(serverPid);
      await rm(datadir, { recursive: true, force: true });
    });
    assert.match(path.basename(datadir), /^eob-sut-[A-Za-z0-9]{6}$/);
    assert.deepEqual(
      (await readRunRecord(datadir))?.processes.map((p) => p.pid),
      [child.pid, serverPid],
      'the harness and its database server are recorded in the data directory',
    );
    await sigkill(child, exited);
    // The server dies with the harness (its parent-death signal); it may linger as a zombie a moment.
    await untilDead(serverPid);
    assert.ok(await exists(path.join(datadir, MARKER_FILE)), 'a SIGKILLed harness leaves its data directory behind');

    const lines: string[] = [];
    const sut = await SystemUnderTest.start({ ...system, log: (l) => lines.push(l) });
    try {
      assert.equal(await exists(datadir), false, `${datadir} still there; the start logged:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => l.startsWith(`database: removed the abandoned data directory ${datadir} (pid `)), lines.join('\n'));
    } finally {
      await sut.close();
    }
  });
});
