// waitUntilStopped: returns only once a SIGSTOPped process reads stopped, and refuses to report a running one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { isStopped, waitUntilStopped } from '../src/harness/processStopped.ts';

test('a SIGSTOPped busy process is reported stopped, and running again after SIGCONT', async (t) => {
  // A busy loop: a sleeping process would read 'S', never 'R', so only a spinning one can be caught running.
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const pid = child.pid!;
  assert.equal(isStopped(pid), false);
  assert.throws(() => waitUntilStopped([pid], 50), /still not stopped after 50 ms/);
  process.kill(pid, 'SIGSTOP');
  waitUntilStopped([pid]);
  assert.equal(isStopped(pid), true);
  process.kill(pid, 'SIGCONT');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(isStopped(pid), false);
});

test('a process that is gone counts as stopped (nothing left to answer)', () => {
  assert.equal(isStopped(2 ** 22 + 12_345), true);
});
