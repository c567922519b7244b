// processTreeCpuSeconds keeps the CPU of a descendant that exited and was reaped (PostgreSQL's backends).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { processTreeCpuSeconds, parseReapedChildrenCpu } from '../src/harness/processCpu.ts';

test('cutime and cstime are fields 16 and 17, counted after the command name', () => {
  const line = '42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 250 50 20 0 1 0 100 0 0';
  assert.equal(parseReapedChildrenCpu(line, 100), 3);
});

test('a child that burned CPU and exited still counts in its parent tree', async (t) => {
  // sh runs a busy node child for ~400 ms, waits for it (reaps it), then sleeps: the burn is now only in sh's cutime.
  const burn = "const end = Date.now() + 400; while (Date.now() < end) {}";
  const sh = spawn('sh', ['-c', `"${process.execPath}" -e '${burn}'; sleep 5`], { stdio: 'ignore' });
  t.after(() => sh.kill('SIGKILL'));
  const before = processTreeCpuSeconds(sh.pid!) ?? 0;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const after = processTreeCpuSeconds(sh.pid!);
  assert.ok(after !== undefined);
  assert.ok(after - before >= 0.25, `the reaped child's CPU is kept: ${before} -> ${after} s`);
});
