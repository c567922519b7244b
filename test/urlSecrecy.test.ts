// The MYSQL_URL password stays secret: the harness's children get the URL in their environment (readable by
// their own user only), never on their command line (world-readable in ps and /proc/<pid>/cmdline), and
// what a run writes to disk (options.json, CSV, logs) carries the URL redacted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readEnvironment } from '../src/config.ts';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { httpStatus } from '../src/harness/childService.ts';
import { runBench } from '../src/scenarios/throughput/runBench.ts';
import { profileOptions } from '../src/scenarios/throughput/sweepOptions.ts';
import { createResultsDir } from '../src/bench/resultsDir.ts';
import { parseMysqlUrl } from '../src/system/db/mariadb/mysqlUrl.ts';
import { startPrivateDatabase } from './support/privateDatabase.ts';

async function procText(pid: number, file: 'cmdline' | 'environ'): Promise<string> {
  return (await readFile(`/proc/${pid}/${file}`)).toString('utf8').replace(/\0/g, ' ');
}

test('server and worker children get the password in their environment, not on their command line', { timeout: 120_000 }, async () => {
  const env = readEnvironment();
  const sut = await SystemUnderTest.start({ handleSignals: false, mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath });
  try {
    const password = parseMysqlUrl(sut.databaseUrl).password;
    assert.ok(password.length >= 16, 'the private database has a password');
    const server = await sut.startServer({});
    const worker = await sut.startWorker({ batchSize: 10 });
    assert.equal(await httpStatus(`${server.baseUrl}/healthz`, 2_000), 200, 'the server reached the database with the URL from its environment');
    for (const child of [server.service, worker]) {
      const pid = child.pid!;
      const cmdline = await procText(pid, 'cmdline');
      assert.ok(!cmdline.includes(password), `${child.name}'s command line holds the password: ${cmdline}`);
      assert.doesNotMatch(cmdline, /mysql:\/\//);
      assert.ok((await procText(pid, 'environ')).includes(`MYSQL_URL=${sut.databaseUrl}`), `${child.name} got MYSQL_URL in its environment`);
      assert.ok(!child.outputTail().includes(password), `${child.name} printed the password:\n${child.outputTail()}`);
    }
    assert.match(worker.outputTail(), /"databaseUrl":"mysql:\/\/root:\*\*\*@127\.0\.0\.1/);
  } finally {
    await sut.close();
  }
});

test('a bench run given MYSQL_URL with a password writes none of it to options.json or anywhere in its results', { timeout: 120_000 }, async () => {
  const db = await startPrivateDatabase();
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-secrecy-test-'));
  try {
    const password = parseMysqlUrl(db.url).password;
    const base = profileOptions('quick');
    const lines: string[] = [];
    const run = await runBench({
      sweep: { ...base, include: { httpCeiling: false, sqlCeiling: false, baseline: false, drain: false, peers: false, endToEnd: false } },
      system: { databaseUrl: db.url, handleSignals: false },
      resultsRoot: root,
      ci: true,
      out: (line) => lines.push(line),
    });
    const options = await readFile(path.join(run.dir, 'options.json'), 'utf8');
    assert.ok(!options.includes(password), options);
    assert.match(options, /"databaseUrl": "mysql:\/\/root:\*\*\*@127\.0\.0\.1:\d+\/eob"/);
    for (const file of await readdir(run.dir)) {
      assert.ok(!(await readFile(path.join(run.dir, file))).includes(password), `${file} holds the password`);
    }
    assert.ok(!lines.join('\n').includes(password));
  } finally {
    await db.remove();
    await rm(root, { recursive: true, force: true });
  }
});

test('results files redact any mysql:// URL in JSON values and text, whatever its shape', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'eob-secrecy-test-'));
  try {
    const dir = createResultsDir(root, 'chaos');
    dir.writeJson('options.json', { run: { databaseUrl: 'mysql://:p@ss:w0rd@127.0.0.1:3307/eob' }, urls: ['mysql://root:hunter2@h/db'] });
    dir.writeText('results.csv', 'url,n\nmysql://root:hunter2@h/db,1\n');
    const json = await readFile(path.join(dir.path, 'options.json'), 'utf8');
    const csv = await readFile(path.join(dir.path, 'results.csv'), 'utf8');
    for (const text of [json, csv]) assert.ok(!text.includes('hunter2') && !text.includes('p@ss'), text);
    assert.match(json, /"databaseUrl": "mysql:\/\/:\*\*\*@127\.0\.0\.1:3307\/eob"/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
