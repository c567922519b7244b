// Scratch directories (the system under test's data directory, the tests' private servers' data directories,
// the allocator stall's script) carry their maker's record like run directories, and the sweep takes one once
// its processes are gone: a data directory even though it holds the data directory marker, but never while a
// recorded server or a process named in one of its pid files runs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
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
import { currentProcessContext, processIdentity, type ProcessIdentity } from '../src/harness/processIdentity.ts';
import { useScratchDirectories } from './support/scratchDirectories.ts';

const scratchDir = useScratchDirectories('eob-test-sweep-');
const SRC = path.join(import.meta.dirname, '..', 'src');

type After = { after: (fn: () => void | Promise<void>) => void };

/** A `sleep` that runs until the test kills it, and its identity. */
async function liveProcess(t: After): Promise<{ identity: ProcessIdentity; end: () => Promise<void> }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => void child.kill('SIGKILL'));
  const identity = await processIdentity(child.pid!);
  assert.ok(identity !== undefined);
  return {
    identity,
    end: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The identity of a process that has exited and been reaped. */
async function exitedProcess(t: After): Promise<ProcessIdentity> {
  const live = await liveProcess(t);
  await live.end();
  return live.identity;
}

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
