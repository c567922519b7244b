// A bench stopped by SIGTERM (what `timeout` and service managers send) cleans up like one stopped by Ctrl-C:
// its children are gone, the points measured so far are written with the rest marked `interrupted`, `latest`
// does not move to it, and the private database's temp data directory is removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { childPids } from '../src/harness/childPids.ts';
import { projectRoot } from '../src/projectRoot.ts';
import { childEnvironment } from '../src/config.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every descendant of `pid` now (the bench's database, server and workers run in their own process groups). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = childPids(pid);
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...childPids(p));
  }
  return out;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} mid-run: children stopped, partial CSV written, temp data removed`, { timeout: 180_000 }, async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'eob-bench-stop-'));
    let child: ReturnType<typeof spawn> | undefined;
    try {
      // http-ceiling (1 s) then an end-to-end point of 60 s: the signal lands in the second.
      const proc = spawn(
        process.execPath,
        [path.join(projectRoot(), 'bin', 'eob.js'), 'bench', '--profile', 'quick', '--only', 'http-ceiling,end-to-end', '--duration-s', '60', '--connections', '4', '--counters', '20', '--results-dir', root],
        { env: childEnvironment({ CI: '1', MYSQL_URL: '' }), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child = proc;
      let output = '';
      let dataDir: string | undefined;
      const sawFirstPoint = new Promise<void>((resolve) => {
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          dataDir ??= /created data directory (\S+)/.exec(output)?.[1];
          if (/\[1\/2\] http-ceiling/.test(output)) resolve();
        };
        proc.stdout!.on('data', onData);
        proc.stderr!.on('data', onData);
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      await sawFirstPoint;
      // Let the end-to-end point start its server and worker (seconds on a loaded machine), then stop the run.
      let before = descendants(proc.pid!);
      for (let i = 0; i < 300 && before.length < 3; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        before = descendants(proc.pid!);
      }
      await new Promise((r) => setTimeout(r, 1_000));
      before = descendants(proc.pid!);
      assert.ok(before.length >= 3, `database, server and worker running before the signal (got ${before.length}): ${output}`);
      assert.ok(dataDir !== undefined && existsSync(dataDir), `the temp data directory exists while it runs: ${output}`);
      proc.kill(signal);
      // `timeout make bench` delivers SIGTERM twice (process group, then make passing it on): still one stop.
      if (signal === 'SIGTERM') setTimeout(() => proc.kill(signal), 50);
      const code = await exited;
      assert.equal(code, 130, output);
      for (const pid of before) assert.equal(alive(pid), false, `child ${pid} gone after ${signal}`);
      assert.equal(existsSync(dataDir), false, `${dataDir} removed`);
      const runs = (await readdir(path.join(root, 'bench'))).filter((d) => d !== 'latest');
      assert.equal(runs.length, 1);
      const [header, ...lines] = (await readFile(path.join(root, 'bench', runs[0]!, 'results.csv'), 'utf8')).trim().split('\n');
      // No cell of these rows holds a comma (the notes here have none), so a split is enough.
      const names = header!.split(',');
      const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [names[i], v])));
      assert.deepEqual(rows.map((r) => [r.kind, r.verdict]), [['http-ceiling', 'n/a'], ['end-to-end', 'interrupted']]);
      assert.ok(Number(rows[0]!.publish_req_per_s) > 0, 'the point measured before the signal is kept');
      assert.equal(existsSync(path.join(root, 'bench', 'latest')), false, 'latest does not move to an interrupted run');
      assert.match(output, /INTERRUPTED after 1 of 2 points/);
    } finally {
      // A failed assertion before the signal must not leave the bench running.
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await rm(root, { recursive: true, force: true });
    }
  });
}
