// eob check on a real run: a tiny quick chaos run (every case of the quick profile, few requests) is written to
// a temporary results folder, and `eob check` on that folder must come to the run's own verdict and result for
// every case, from the files alone. Whether each case passed does not matter here (few requests may leave a
// control clean): the re-check must agree with whatever the run decided.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../src/projectRoot.ts';
import { parseCsv } from '../src/bench/csv.ts';

const run = promisify(execFile);
const eob = path.join(projectRoot(), 'bin', 'eob.js');

test('eob check gives the run\'s verdict for every case of a tiny quick run', { timeout: 900_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eob-recheck-'));
  try {
    // Always the project's own private database: the cases kill it. The exit code says whether the cases
    // passed, which this test does not judge.
    const env = { ...process.env, MYSQL_URL: '', DATABASE_URL: '' };
    await run(process.execPath, [eob, 'chaos', '--profile', 'quick', '--requests', '200', '--results-dir', dir], { env, maxBuffer: 64 * 1024 * 1024 }).catch((e: { code?: number }) => {
      if (e.code !== 1) throw e;
    });
    const [runDir] = readdirSync(path.join(dir, 'chaos')).filter((d) => d !== 'latest').map((d) => path.join(dir, 'chaos', d));
    assert.ok(runDir !== undefined, 'the run wrote its folder');
    const rows = parseCsv(readFileSync(path.join(runDir, 'results.csv'), 'utf8'));
    assert.ok(rows.length >= 7, `every quick case ran (${rows.length})`);
    const { stdout } = await run(process.execPath, [eob, 'check', runDir, '--witnesses', '1'], { maxBuffer: 64 * 1024 * 1024 });
    for (const row of rows) {
      const name = String(row.case);
      const verdict = String(row.verdict);
      const passed = row.passed === true || row.passed === 'true';
      const line = stdout.split('\n').find((l) => l.includes(` ${name} (`));
      assert.ok(line !== undefined, `eob check printed ${name}`);
      assert.ok(line.startsWith(passed ? 'PASS' : 'FAIL'), `${name}: the run ${passed ? 'passed' : 'failed'}; check says ${line}`);
      assert.match(line, new RegExp(`verdict ${verdict};`), `${name}: the run's verdict ${verdict}`);
    }
    assert.doesNotMatch(stdout, /DIFFERS/);
    assert.match(stdout, /every one agrees with the run/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
