// The server's bound on GET /count callers waiting for a read connection, checked the same way on either engine:
// with the database frozen, `READ_POOL_SIZE` reads hold the connections, `poolQueueLimit` more wait for one, and
// every read beyond those must answer 503 at once rather than join a queue that a hung database never drains.
import assert from 'node:assert/strict';
import { READ_POOL_SIZE } from '../../src/system/server/server.ts';
import { request } from './httpRequest.ts';

/** What the server must be started with for checkFrozenReads. */
export const FROZEN_READS_OPTIONS = { poolQueueLimit: 3, publishTimeoutMs: 2_000, queryTimeoutMs: 3_000 } as const;

interface ReadReply {
  status: number;
  error: string;
  ms: number;
}

/**
 * Sends `READ_POOL_SIZE + poolQueueLimit + 5` concurrent GET /count while the database is frozen, and checks
 * that exactly the 5 beyond the bound answered 503 naming the queue limit, before any of the others, which answer
 * 503 when their time runs out. After the thaw a read answers 200 again.
 */
export async function checkFrozenReads(serverUrl: string, freeze: () => void, thaw: () => void): Promise<void> {
  const url = `${serverUrl}/count/5b1e6f4c-3f9a-4c2e-9d1a-2f0c8e7b6a51`;
  assert.equal((await request(url, 'GET')).status, 200);
  const beyond = 5;
  const total = READ_POOL_SIZE + FROZEN_READS_OPTIONS.poolQueueLimit + beyond;
  freeze();
  let replies: ReadReply[];
  try {
    const started = Date.now();
    replies = await Promise.all(
      Array.from({ length: total }, async () => {
        const r = await request(url, 'GET');
        return { status: r.status, error: String((JSON.parse(r.body) as { error?: unknown }).error), ms: Date.now() - started };
      }),
    );
  } finally {
    thaw();
  }
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([503]), 'every read answers 503 while the database is frozen');
  const shed = replies.filter((r) => /Queue limit reached/.test(r.error));
  const waited = replies.filter((r) => !/Queue limit reached/.test(r.error));
  assert.equal(shed.length, beyond, `reads beyond ${READ_POOL_SIZE} connections and ${FROZEN_READS_OPTIONS.poolQueueLimit} waiting are shed: ${JSON.stringify(replies)}`);
  const lastShed = Math.max(...shed.map((r) => r.ms));
  const firstWaited = Math.min(...waited.map((r) => r.ms));
  assert.ok(lastShed < 1_000, `shed at once (${lastShed} ms)`);
  assert.ok(firstWaited >= FROZEN_READS_OPTIONS.publishTimeoutMs - 100, `the others waited for their time to run out (${firstWaited} ms)`);
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i += 1) {
    status = (await request(url, 'GET')).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(status, 200, 'reads answer again after the thaw');
}
