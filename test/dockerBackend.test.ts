// The dockerode backend against a local stand-in of the Docker Engine API: a node:http server on a unix
// socket that answers like the Engine for the few endpoints the backend uses and records every request.
// This checks the calls the backend sends (paths, methods, signals, label filters) with no engine; the same
// calls against a real engine are in test/docker/engine.test.ts (make test-docker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerBackend } from '../src/harness/faults/dockerBackend.ts';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
}

interface StandIn {
  socketPath: string;
  requests: Recorded[];
  running: Map<string, boolean>;
  close(): Promise<void>;
}

const CONTAINERS = [
  { Id: 'w1', service: 'worker' },
  { Id: 'w2', service: 'worker' },
  { Id: 'db1', service: 'mysql' },
  { Id: 's1', service: 'server' },
];

async function engineStandIn(project: string): Promise<StandIn> {
  const dir = mkdtempSync(join(tmpdir(), 'eob-docker-'));
  const socketPath = join(dir, 'docker.sock');
  const requests: Recorded[] = [];
  const running = new Map(CONTAINERS.map((c) => [c.Id, true]));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://engine');
    // dockerode may prefix a version (/v1.43/containers/...).
    const path = url.pathname.replace(/^\/v\d+\.\d+/, '');
    requests.push({ method: req.method ?? '', path, query: url.searchParams });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/containers/json') {
      const filters = JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[] };
      const labels = filters.label ?? [];
      const list = CONTAINERS.filter((c) =>
        labels.every((l) => l === `com.docker.compose.project=${project}` || l === `com.docker.compose.service=${c.service}`),
      ).map((c) => ({ Id: c.Id, Labels: { 'com.docker.compose.service': c.service, 'com.docker.compose.project': project } }));
      return json(200, list);
    }
    const m = /^\/containers\/([^/]+)\/(kill|stop|start|restart|pause|unpause|json)$/.exec(path);
    if (m === null) return json(404, { message: `no such endpoint ${path}` });
    const [, id = '', action] = m;
    if (!running.has(id)) return json(404, { message: `no such container ${id}` });
    if (action === 'json') return json(200, { Id: id, State: { Running: running.get(id), Paused: false } });
    if (action === 'kill' || action === 'stop') running.set(id, false);
    if (action === 'start' || action === 'restart') running.set(id, true);
    res.writeHead(204);
    res.end();
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    socketPath,
    requests,
    running,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const calls = (s: StandIn) => s.requests.filter((r) => r.path !== '/containers/json').map((r) => `${r.method} ${r.path}`);

test('docker backend: finds a service by its compose labels and kills every container of it', async () => {
  const engine = await engineStandIn('eobtest');
  try {
    const backend = new DockerBackend({ socketPath: engine.socketPath, project: 'eobtest', readyTimeoutMs: 2_000 });
    await backend.kill('worker');
    const list = engine.requests.find((r) => r.path === '/containers/json');
    assert.ok(list !== undefined);
    assert.equal(list.query.get('all'), 'true');
    assert.deepEqual(JSON.parse(list.query.get('filters') ?? '{}'), {
      label: ['com.docker.compose.project=eobtest', 'com.docker.compose.service=worker'],
    });
    assert.deepEqual(calls(engine).sort(), ['POST /containers/w1/kill', 'POST /containers/w2/kill']);
    for (const r of engine.requests.filter((x) => x.path.endsWith('/kill'))) assert.equal(r.query.get('signal'), 'SIGKILL');
  } finally {
    await engine.close();
  }
});

test('docker backend: stop, start, crash restart, clean restart, pause and unpause send the Engine calls', async () => {
  const engine = await engineStandIn('eobtest');
  try {
    const backend = new DockerBackend({ socketPath: engine.socketPath, project: 'eobtest', stopTimeoutS: 7, readyTimeoutMs: 2_000 });
    await backend.stop('server');
    assert.deepEqual(calls(engine), ['POST /containers/s1/stop']);
    assert.equal(engine.requests.find((r) => r.path.endsWith('/stop'))?.query.get('t'), '7');
    assert.equal(engine.running.get('s1'), false);

    engine.requests.length = 0;
    await backend.start('server');
    assert.deepEqual(calls(engine), ['POST /containers/s1/start', 'GET /containers/s1/json']);

    engine.requests.length = 0;
    await backend.restart('db', { clean: false });
    assert.deepEqual(calls(engine), ['POST /containers/db1/kill', 'POST /containers/db1/start', 'GET /containers/db1/json']);

    engine.requests.length = 0;
    await backend.restart('db', { clean: true });
    assert.deepEqual(calls(engine), ['POST /containers/db1/restart', 'GET /containers/db1/json']);

    engine.requests.length = 0;
    await backend.pause('worker');
    await backend.resume('worker');
    assert.deepEqual(calls(engine).sort(), [
      'POST /containers/w1/pause',
      'POST /containers/w1/unpause',
      'POST /containers/w2/pause',
      'POST /containers/w2/unpause',
    ]);
  } finally {
    await engine.close();
  }
});

test('docker backend: a project with no such service is a clear error', async () => {
  const engine = await engineStandIn('eobtest');
  try {
    const backend = new DockerBackend({ socketPath: engine.socketPath, project: 'other' });
    await assert.rejects(backend.kill('worker'), /no container of service "worker" in Compose project "other"/);
  } finally {
    await engine.close();
  }
});
