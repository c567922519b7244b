// The runner of the system under test: child lifecycle against stand-in scripts (no database), and one run of
// SystemUnderTest with a private database and stand-in children, closed by close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildService, ChildServiceError, httpStatus } from '../src/harness/childService.ts';
import { SystemUnderTest, serverArgs, workerArgs } from '../src/harness/systemUnderTest.ts';
import { readEnvironment } from '../src/config.ts';

const standIn = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'standInEob.mjs');

function worker(group: string, stopTimeoutMs = 5_000): ChildService {
  return new ChildService({
    name: `stand-in worker ${group}`,
    command: process.execPath,
    args: [standIn, 'worker', '--consumer-group', group],
    env: {},
    readiness: { kind: 'line', pattern: /^worker started/ },
    startTimeoutMs: 10_000,
    stopTimeoutMs,
  });
}

test('start resolves when the worker printed `worker started`; stop sends SIGTERM and sees exit 0', async () => {
  const w = worker('ok');
  await w.start();
  assert.equal(w.running, true);
  assert.ok(w.pid !== undefined && w.pid > 0);
  assert.match(w.outputTail(), /worker started/);
  await new Promise((r) => setTimeout(r, 300));
  const cpu = w.cpuSeconds();
  assert.ok(cpu !== undefined && cpu > 0, `cpu seconds of a busy child should be > 0, got ${cpu}`);
  const status = await w.stop();
  assert.deepEqual(status, { code: 0, signal: null });
  assert.equal(w.running, false);
  assert.equal(w.pid, undefined);
});

test('a child that dies on start fails start() with its output tail', async () => {
  const w = worker('die');
  await assert.rejects(w.start(), (error: Error) => {
    assert.ok(error instanceof ChildServiceError);
    assert.match(error.message, /exited \(code 3\) before it was ready/);
    assert.match(error.message, /table missing \(on purpose\)/);
    return true;
  });
});

test('stop() falls back to SIGKILL after the deadline when SIGTERM is ignored', async () => {
  const w = worker('stubborn', 500);
  await w.start();
  const started = Date.now();
  const status = await w.stop();
  assert.equal(status.signal, 'SIGKILL');
  assert.ok(Date.now() - started >= 450, 'waited for the deadline first');
  assert.match(w.outputTail(), /ignoring SIGTERM/);
});

test('kill(), pause()/resume() and restart()', async () => {
  const w = worker('ok');
  await w.start();
  const firstPid = w.pid;
  w.pause();
  const { readFileSync } = await import('node:fs');
  const state = () => readFileSync(`/proc/${firstPid}/stat`, 'utf8').split(') ')[1]?.[0];
  // The signal is delivered asynchronously: give the kernel a moment.
  for (let i = 0; i < 50 && state() !== 'T'; i += 1) await new Promise((r) => setTimeout(r, 20));
  assert.equal(state(), 'T', 'paused process is stopped');
  w.resume();
  await w.restart();
  assert.notEqual(w.pid, firstPid);
  const status = await w.kill();
  assert.equal(status.signal, 'SIGKILL');
});

test('flag builders follow the CLI contract', () => {
  assert.deepEqual(serverArgs(8081, { coalesce: false, coalesceMaxBatch: 500, dedup: true }), [
    'server', '--host', '127.0.0.1', '--port', '8081',
    '--no-coalesce', '--coalesce-max-batch', '500', '--dedup',
  ]);
  assert.deepEqual(
    workerArgs({ mode: 'queue', batchSize: 100, isolation: 'READ COMMITTED', graceful: false, failpoints: ['consume-after-ack=2', 'consume-after-read=5'] }),
    ['worker', '--mode', 'queue', '--batch-size', '100', '--isolation', 'READ-COMMITTED',
      '--no-graceful', '--failpoint', 'consume-after-ack=2,consume-after-read=5'],
  );
});

test('SystemUnderTest: private database, server and workers as children, close() stops them all', { timeout: 120_000 }, async () => {
  const env = readEnvironment();
  const sut = await SystemUnderTest.start({
    eobBin: standIn,
    handleSignals: false,
    mariadbBinDir: env.mariadbBinDir,
    searchPath: env.searchPath,
  });
  try {
    assert.match(sut.databaseUrl, /^mysql:\/\/root:[^@]+@127\.0\.0\.1:\d+\/eob$/);
    const rows = await sut.db.query<{ one: number }[]>('SELECT 1 AS one');
    assert.equal(rows[0]?.one, 1);
    assert.ok(sut.dbPid !== undefined);
    assert.ok((sut.dbCpuSeconds() ?? -1) >= 0);
    const server = await sut.startServer({ coalesce: true });
    assert.equal(await httpStatus(`${server.baseUrl}/healthz`, 1_000), 200);
    const w1 = await sut.startWorker({ batchSize: 10 });
    const w2 = await sut.startWorker({ batchSize: 20 });
    assert.match(w2.outputTail(), /batch 20/);
    await assert.rejects(sut.startServer({ topic: 'die' }), /cannot connect to the database \(on purpose\)/);
    assert.equal(sut.services.length, 3);
    const pids = [server.service.pid, w1.pid, w2.pid];
    const dbPid = sut.dbPid!;
    await sut.close();
    for (const pid of [...pids, dbPid]) {
      assert.throws(() => process.kill(pid!, 0), /ESRCH/, `pid ${pid} still alive after close()`);
    }
  } finally {
    await sut.close();
  }
});

test('SystemUnderTest with MYSQL_URL: database faults are refused with a clear message', async () => {
  // Only the URL check and the refusal are exercised: an unreachable URL fails with what to do.
  await assert.rejects(
    SystemUnderTest.start({ databaseUrl: 'mysql://root@127.0.0.1:1/eob', handleSignals: false }),
    /cannot reach the database at mysql:\/\/root@127\.0\.0\.1:1\/eob: .*unset MYSQL_URL and DATABASE_URL/,
  );
});
