// The publish-after-insert failpoint as a client sees it, the same on either engine: an `eob server` process
// armed to die after its second publish's INSERT answers the first publish 204, and the second never gets a
// 2xx because the process is SIGKILLed before it can answer. What the INSERT left in the table is the caller's
// to check, in its engine's SQL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/harness/ports.ts';
import { request } from './httpRequest.ts';
import { childEnvironment } from '../../src/config.ts';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `eob server` on `topic` with the failpoint armed, `args` added to its command line and `env` to its
 * environment, sends it two publishes and checks the answers; resolves with the request id of the second.
 */
export async function publishIntoFailpoint(topic: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const port = await findFreePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'server', ...args, '--port', String(port), '--topic', topic, '--failpoint', 'publish-after-insert=2'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment({ EOB_LOG: 'quiet', ...env }) },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (String(d).includes('server listening')) resolve();
      });
      child.on('exit', () => reject(new Error('server exited before listening')));
    });
    const url = `http://127.0.0.1:${port}/count/${randomUUID()}`;
    assert.equal((await request(url, 'POST', { 'X-Request-Id': `${topic}-first` })).status, 204, 'first publish passes the failpoint');
    await assert.rejects(request(url, 'POST', { 'X-Request-Id': `${topic}-second` }), /socket hang up|ECONNRESET/);
    assert.equal(await exited, 'SIGKILL');
    return `${topic}-second`;
  } finally {
    child.kill('SIGKILL');
  }
}
