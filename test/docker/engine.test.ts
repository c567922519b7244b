// The Docker path against a real engine (make test-docker starts one and builds the images; not in npm test):
// the per-case containers chaos uses, every fault of the docker backend on them, and the Compose setup from
// the local images. DOCKER_HOST must name the engine's unix socket; without it these tests fail, they do not
// skip, because the only way here is a run meant to reach an engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { childEnvironment, readEnvironment } from '../../src/config.ts';
import { DockerDeployment } from '../../src/harness/dockerDeployment.ts';
import { DockerBackend } from '../../src/harness/faults/dockerBackend.ts';
import { createPool, executorOf } from '../../src/system/db/mariadb/pool.ts';
import { httpStatus } from '../../src/harness/childService.ts';
import { projectRoot } from '../../src/projectRoot.ts';

const run = promisify(execFile);
const socketPath = readEnvironment().dockerSocket;
// Apart from make test-docker's chaos ports (13406 / 18180) and make chaos's defaults (13306 / 18080).
const DB_PORT = 13416;
const SERVER_PORT = 18190;
const COMPOSE_DB_PORT = 13426;
const COMPOSE_SERVER_PORT = 18200;

function engineSocket(): string {
  assert.ok(socketPath !== undefined, 'DOCKER_HOST=unix://<socket> must name a running engine (make test-docker starts one)');
  return socketPath;
}

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function post(base: string, counter: string): Promise<number> {
  const r = await fetch(`${base}/count/${counter}`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
  await r.arrayBuffer();
  return r.status;
}

async function count(base: string, counter: string): Promise<number> {
  const r = await fetch(`${base}/count/${counter}`, { signal: AbortSignal.timeout(5_000) });
  const body = (await r.json()) as { value?: number | string };
  return Number(body.value ?? -1);
}

let deployment: DockerDeployment | undefined;
after(async () => {
  await deployment?.close();
});

test('the containers serve end to end, and every container fault acts on the real engine', { timeout: 300_000 }, async () => {
  const project = 'eob-engine-test';
  deployment = await DockerDeployment.start(
    { server: {}, worker: { mode: 'offset', batchSize: 100 }, workers: 2 },
    { project, socketPath: engineSocket(), dbPort: DB_PORT, serverPort: SERVER_PORT },
  );
  const d = deployment;
  const base = d.serverBaseUrl;
  const backend = new DockerBackend({ project, socketPath: engineSocket(), readyTimeoutMs: 60_000 });
  const docker = new Docker({ socketPath: engineSocket() });
  assert.equal((await backend.containers('worker')).length, 2, 'two worker containers, found by their Compose labels');
  const state = async (role: 'db' | 'server' | 'worker') =>
    Promise.all((await backend.containers(role)).map(async (c) => (await docker.getContainer(c.Id).inspect()).State));

  const counter = randomUUID();
  for (let i = 0; i < 5; i++) assert.equal(await post(base, counter), 204);
  await until('5 counted', 30_000, async () => (await count(base, counter)) === 5);

  // pause: the server container stops answering (frozen, not dead), unpause brings it back.
  await backend.pause('server');
  assert.ok((await state('server')).every((s) => s.Paused), 'server container paused');
  assert.notEqual(await httpStatus(`${base}/healthz`, 1_000), 200, 'a paused server must not answer');
  await backend.resume('server');
  await until('server answers after unpause', 10_000, async () => (await httpStatus(`${base}/healthz`, 1_000)) === 200);

  // kill: the database container dies with SIGKILL (mariadbd is PID 1); start recovers it on the same data.
  await backend.kill('db', 'SIGKILL');
  const killed = await state('db');
  assert.ok(killed.every((s) => !s.Running && s.ExitCode === 137), `db killed by SIGKILL: ${JSON.stringify(killed.map((s) => s.ExitCode))}`);
  await backend.start('db');
  const pool = createPool({ url: d.mysqlUrl, connectionLimit: 1, connectTimeoutMs: 2_000, role: 'engine-test' });
  try {
    await until('database answers after its crash restart', 60_000, async () => {
      await executorOf(pool).query('SELECT 1');
      return true;
    });
  } finally {
    await pool.end();
  }
  await until('the count survives the database crash', 30_000, async () => (await count(base, counter)) === 5);

  // stop (SIGTERM, graceful) and start the workers, restart (clean and crash) the server: all running again.
  const beforeStop = await state('worker');
  assert.ok(beforeStop.every((s) => s.Running), `workers still running after the database crash: ${JSON.stringify(beforeStop)}`);
  await backend.stop('worker');
  const stopped = await state('worker');
  if (!stopped.every((s) => !s.Running && s.ExitCode === 0)) {
    const logs = await Promise.all(
      (await backend.containers('worker')).map(async (c) => String(await docker.getContainer(c.Id).logs({ stdout: true, stderr: true, tail: 20 }))),
    );
    assert.fail(`workers must exit 0 on SIGTERM (graceful): ${JSON.stringify(stopped.map((s) => [s.ExitCode, s.Error]))}\n${logs.join('\n---\n')}`);
  }
  for (let i = 0; i < 3; i++) assert.equal(await post(base, counter), 204);
  await backend.start('worker');
  await backend.restart('server', { clean: true });
  await backend.restart('server', { clean: false });
  await until('server back after restarts', 30_000, async () => (await httpStatus(`${base}/healthz`, 1_000)) === 200);
  await until('8 counted after the workers came back', 30_000, async () => (await count(base, counter)) === 8);
  assert.ok((await state('worker')).every((s) => s.Running && !s.Paused));
});

test('docker-compose.local.yml runs the system from the local images on 127.0.0.1', { timeout: 300_000 }, async () => {
  const project = 'eob-compose-test';
  const env = childEnvironment({
    DOCKER_HOST: `unix://${engineSocket()}`,
    EOB_DB_PORT: String(COMPOSE_DB_PORT),
    EOB_SERVER_PORT: String(COMPOSE_SERVER_PORT),
  });
  const compose = (...args: string[]) =>
    run('docker-compose', ['-p', project, '-f', 'docker-compose.local.yml', ...args], {
      cwd: projectRoot(),
      env,
      timeout: 240_000,
    });
  try {
    await compose('up', '-d', '--no-build');
    const base = `http://127.0.0.1:${COMPOSE_SERVER_PORT}`;
    await until('compose server healthy', 120_000, async () => (await httpStatus(`${base}/healthz`, 1_000)) === 200);
    const counter = randomUUID();
    for (let i = 0; i < 3; i++) assert.equal(await post(base, counter), 204);
    await until('compose worker counted 3', 60_000, async () => (await count(base, counter)) === 3);
    // The services carry Compose's labels: the fault backend finds them under the project name.
    const backend = new DockerBackend({ project, socketPath: engineSocket() });
    assert.equal((await backend.containers('db')).length, 1);
    assert.equal((await backend.containers('worker')).length, 1);
  } finally {
    await compose('down', '-v', '--remove-orphans');
  }
});
