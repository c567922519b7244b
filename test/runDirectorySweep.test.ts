// The sweep of abandoned run directories: it removes one only when every process recorded in it is gone (its
// maker, a server it started), tells a reused pid from the owner by its start time, never touches a directory
// without this user's record, one holding a data directory or one whose name is not a run directory's, and
// looks at a bounded number per sweep. The launchers' use of it is in managedDatabase.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { exists, MARKER_FILE } from '../src/harness/dataDirectory.ts';
import {
  createRunDirectory,
  readRunRecord,
  recordRunDirectoryUser,
  resolveRunDirectorySweepOptions,
  RUN_RECORD_FILE,
  sweepAbandonedRunDirectories,
  writeRunRecord,
  type RunRecord,
} from '../src/harness/privateDirectory.ts';
import { currentProcessContext, processIdentity, type ProcessContext, type ProcessIdentity } from '../src/harness/processIdentity.ts';
import { OptionsError } from '../src/validate.ts';
import { useScratchDirectories } from './support/scratchDirectories.ts';
import { exitedProcess, liveProcess } from './support/sleepingProcess.ts';

const execFileAsync = promisify(execFile);
const scratchDir = useScratchDirectories('eob-test-sweep-');

async function context(): Promise<ProcessContext> {
  const c = await currentProcessContext();
  assert.ok(c !== undefined, 'these tests need /proc');
  return c;
}

/** A run directory in `tempDir` made by this process, then given `processes` as its record. */
async function runDirectoryOf(tempDir: string, processes: ProcessIdentity[], record: Partial<RunRecord> = {}): Promise<string> {
  const dir = await createRunDirectory('eob-db-', undefined, tempDir);
  await writeRunRecord(dir, { ...(await context()), processes, ...record });
  return dir;
}

async function sweep(tempDir: string, maxExamined = 64): Promise<{ removed: string[]; lines: string[] }> {
  const lines: string[] = [];
  const removed = await sweepAbandonedRunDirectories({ tempDir, maxExamined, log: (line) => lines.push(line) });
  return { removed, lines };
}

describe('sweep of abandoned run directories', () => {
  test('the run directory of a process that exited without its exit hooks is removed, and the removal logged', async () => {
    const tempDir = await scratchDir();
    // A real owner: a process that makes a run directory and exits without deleting it (as a SIGKILL would).
    const script =
      `const { createRunDirectory } = await import(${JSON.stringify(path.join(import.meta.dirname, '..', 'src', 'harness', 'privateDirectory.ts'))});` +
      `process.stdout.write(await createRunDirectory('eob-db-', undefined, ${JSON.stringify(tempDir)}));`;
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    const dir = stdout.trim();
    assert.ok(await exists(path.join(dir, RUN_RECORD_FILE)), `the maker recorded itself in ${dir}`);
    const { removed, lines } = await sweep(tempDir);
    assert.deepEqual(removed, [dir]);
    assert.equal(await exists(dir), false);
    assert.match(lines.join('\n'), new RegExp(`removed the abandoned run directory ${dir} \\(pid \\d+ no longer running\\)`));
  });

  test('a run directory whose owner runs (this process) stays', async () => {
    const tempDir = await scratchDir();
    const dir = await createRunDirectory('eob-pg-', undefined, tempDir);
    assert.deepEqual((await sweep(tempDir)).removed, []);
    assert.ok(await exists(dir));
  });

  test('owner gone but a server it started still runs: stays until the server is gone too', async (t) => {
    const tempDir = await scratchDir();
    const server = await liveProcess(t);
    const dir = await runDirectoryOf(tempDir, [await exitedProcess(t), server.identity]);
    assert.deepEqual((await sweep(tempDir)).removed, []);
    await server.end();
    assert.deepEqual((await sweep(tempDir)).removed, [dir]);
  });

  test('a live pid that started at another time is a reused pid, not the owner: removed', async () => {
    const tempDir = await scratchDir();
    const self = await processIdentity(process.pid);
    assert.ok(self !== undefined);
    const reused = await runDirectoryOf(tempDir, [{ pid: process.pid, startTicks: self.startTicks + 1 }]);
    const owned = await runDirectoryOf(tempDir, [self]);
    assert.deepEqual((await sweep(tempDir)).removed, [reused]);
    assert.ok(await exists(owned));
  });

  test('a record from an earlier boot is abandoned; one from another pid namespace cannot be judged and stays', async (t) => {
    const tempDir = await scratchDir();
    const self = await processIdentity(process.pid);
    assert.ok(self !== undefined);
    const earlierBoot = await runDirectoryOf(tempDir, [self], { bootId: 'an-earlier-boot' });
    const otherNamespace = await runDirectoryOf(tempDir, [await exitedProcess(t)], { pidNamespace: 'pid:[1]' });
    const { removed, lines } = await sweep(tempDir);
    assert.deepEqual(removed, [earlierBoot]);
    assert.match(lines.join('\n'), /from an earlier boot/);
    assert.ok(await exists(otherNamespace));
  });

  test('never removed, even with every recorded process gone: no record, a bad record, a data directory, a foreign name, a symlink', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    const noRecord = path.join(tempDir, 'eob-db-NoRec1');
    await mkdir(noRecord);
    const badRecord = await runDirectoryOf(tempDir, [dead]);
    await writeFile(path.join(badRecord, RUN_RECORD_FILE), '{"bootId": "x", "processes": "not a list"}');
    const withDataDirectory = await runDirectoryOf(tempDir, [dead]);
    await writeFile(path.join(withDataDirectory, MARKER_FILE), '{}');
    // A name a user might give a --datadir, and the tests' own data directories: not made by createRunDirectory.
    const chosen = path.join(tempDir, 'eob-db-3307');
    const testData = path.join(tempDir, 'eob-test-db-AbCdEf');
    for (const dir of [chosen, testData]) {
      await mkdir(dir);
      await writeRunRecord(dir, { ...(await context()), processes: [dead] });
    }
    const target = await runDirectoryOf(await scratchDir(), [dead]);
    const link = path.join(tempDir, 'eob-pg-Link01');
    await symlink(target, link);
    const before = (await readdir(tempDir)).sort();
    assert.deepEqual((await sweep(tempDir)).removed, []);
    assert.deepEqual((await readdir(tempDir)).sort(), before);
    assert.ok(await exists(path.join(target, RUN_RECORD_FILE)), 'the symlink was not followed');
  });

  test('a record another OS user wrote is not ours to judge', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
    const tempDir = await scratchDir();
    const dir = await runDirectoryOf(tempDir, [await exitedProcess(t)]);
    await chown(path.join(dir, RUN_RECORD_FILE), 65534, 65534);
    assert.equal(await readRunRecord(dir), undefined);
    assert.deepEqual((await sweep(tempDir)).removed, []);
    assert.ok(await exists(dir));
  });

  test('a sweep looks at no more than maxExamined directories; later sweeps reach the rest', async (t) => {
    const tempDir = await scratchDir();
    const dead = await exitedProcess(t);
    for (let i = 0; i < 5; i += 1) await runDirectoryOf(tempDir, [dead]);
    assert.equal((await sweep(tempDir, 3)).removed.length, 3);
    assert.equal((await sweep(tempDir, 3)).removed.length, 2);
    assert.deepEqual(await readdir(tempDir), []);
  });

  test('recording a server keeps the owner and drops the users that exited', async (t) => {
    const tempDir = await scratchDir();
    const dir = await createRunDirectory('eob-db-', undefined, tempDir);
    const first = await liveProcess(t);
    await recordRunDirectoryUser(dir, first.identity.pid);
    await first.end();
    const second = await liveProcess(t);
    await recordRunDirectoryUser(dir, second.identity.pid);
    const record = await readRunRecord(dir);
    assert.deepEqual(record?.processes, [await processIdentity(process.pid), second.identity]);
  });

  test('options are validated and the error names the field', () => {
    assert.throws(() => resolveRunDirectorySweepOptions({ maxExamined: 0 }), (e: Error) => e instanceof OptionsError && /maxExamined/.test(e.message));
    assert.throws(() => resolveRunDirectorySweepOptions({ tempDir: '' }), /tempDir/);
  });
});
