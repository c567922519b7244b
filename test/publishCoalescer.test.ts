// Unit tests of the publish coalescer, with no database: the flush is a fake that records what it was given,
// and, for the last tests, the real SqlPublisher on MariaDB's SQL over a fake executor that records the SQL it is sent.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoalescerClosedError, PublishCoalescer, QueueFullError, WithdrawnError } from '../src/system/publishCoalescer.ts';
import type { CoalescerOptions } from '../src/system/publishCoalescer.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import { PublishError, publishIncrements } from '../src/system/counterPublish.ts';
import type { Pool } from '../src/system/db/mariadb/pool.ts';
import type { IncrementRequest, PublishOutcome } from '../src/system/counterPublish.ts';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A flush that records its batches, answers `item * 10`, and waits for `gate` when one is given. */
function recordingFlush(gate?: () => Promise<void>) {
  const batches: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const flush = async (items: readonly number[]): Promise<number[]> => {
    batches.push([...items]);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      if (gate !== undefined) await gate();
      return items.map((i) => i * 10);
    } finally {
      running -= 1;
    }
  };
  return { batches, flush, maxRunning: () => maxRunning };
}

const options = (o: Partial<CoalescerOptions> = {}): CoalescerOptions => ({ maxBatch: 100, lingerMs: 0, maxInFlight: 4, maxQueued: 10_000, ...o });

/** Settled state of a promise without waiting for it. */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(0);
  return settled;
}

describe('PublishCoalescer', () => {
  test('enqueue: a settler object gets its own result; a refused item is rejected at once, synchronously', async () => {
    const f = recordingFlush();
    const c = new PublishCoalescer<number, number>(options({ maxQueued: 2 }), f.flush);
    const got: string[] = [];
    const settler = (name: string) => ({ resolve: (r: number) => got.push(`${name}=${r}`), reject: (e: unknown) => got.push(`${name}!${(e as Error).name}`) });
    c.enqueue(1, settler('a'));
    c.enqueue(2, settler('b'));
    c.enqueue(3, settler('c'));
    assert.deepEqual(got, ['c!QueueFullError']);
    await sleep(5);
    assert.deepEqual(got, ['c!QueueFullError', 'a=10', 'b=20']);
    assert.deepEqual(f.batches, [[1, 2]]);
  });

  test('submits made in one event-loop turn leave as one batch, each caller gets its own result', async () => {
    const f = recordingFlush();
    const c = new PublishCoalescer<number, number>(options(), f.flush);
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => c.submit(i)));
    assert.deepEqual(results, [10, 20, 30, 40, 50]);
    assert.deepEqual(f.batches, [[1, 2, 3, 4, 5]]);
  });

  test('a full batch leaves at once; batches never exceed maxBatch', async () => {
    const f = recordingFlush();
    const c = new PublishCoalescer<number, number>(options({ maxBatch: 10, lingerMs: 10_000, maxInFlight: 10 }), f.flush);
    const all = Array.from({ length: 20 }, (_, i) => c.submit(i));
    // Two full batches go without waiting for the (very long) linger.
    assert.deepEqual(await Promise.all(all), Array.from({ length: 20 }, (_, i) => i * 10));
    assert.deepEqual(f.batches.map((b) => b.length), [10, 10]);
    await c.close();
  });

  test('a caller is answered only after its batch has finished', async () => {
    const gate = deferred();
    const f = recordingFlush(() => gate.promise);
    const c = new PublishCoalescer<number, number>(options(), f.flush);
    const p = c.submit(7);
    // Waits for the flush to start rather than a fixed 5 ms: under a load average of 3 the 5 ms sleep ended
    // before the flush had started, in 3 runs of 3.
    for (const deadline = performance.now() + 2_000; f.batches.length === 0 && performance.now() < deadline; ) await sleep(1);
    assert.equal(f.batches.length, 1, 'the batch was flushed');
    assert.equal(await isSettled(p), false, 'but the caller must wait until the flush returns');
    gate.resolve();
    assert.equal(await p, 70);
  });

  test('a failed batch rejects exactly its own callers; other batches succeed', async () => {
    const flush = async (items: readonly number[]): Promise<number[]> => {
      if (items.includes(13)) throw new Error('deadlock');
      return items.map((i) => i);
    };
    const c = new PublishCoalescer<number, number>(options({ maxBatch: 5, maxInFlight: 10 }), flush);
    const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => c.submit(i)));
    const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
    assert.deepEqual(rejected, [10, 11, 12, 13, 14], 'the batch holding 13 is 10..14');
    for (const i of rejected) assert.match(String((settled[i] as PromiseRejectedResult).reason), /deadlock/);
    assert.equal(c.stats.failedBatches, 1);
  });

  test('a flush that throws synchronously or returns the wrong number of results fails its batch', async () => {
    const sync = new PublishCoalescer<number, number>(options(), () => {
      throw new Error('boom');
    });
    await assert.rejects(sync.submit(1), /boom/);
    const short = new PublishCoalescer<number, number>(options(), async (items) => items.slice(1));
    const r = await Promise.allSettled([short.submit(1), short.submit(2)]);
    assert.deepEqual(r.map((s) => s.status), ['rejected', 'rejected']);
    assert.match(String((r[0] as PromiseRejectedResult).reason), /2 items/);
  });

  test('linger: a partial batch waits lingerMs for company, then leaves', async () => {
    const f = recordingFlush();
    const c = new PublishCoalescer<number, number>(options({ lingerMs: 60 }), f.flush);
    const started = Date.now();
    const a = c.submit(1);
    await sleep(20);
    const b = c.submit(2);
    assert.equal(f.batches.length, 0, 'nothing flushed before the linger ends');
    await Promise.all([a, b]);
    const waited = Date.now() - started;
    assert.deepEqual(f.batches, [[1, 2]]);
    assert.ok(waited >= 55, `the first item waited its linger (${waited} ms)`);
  });

  test('flushes in flight never exceed maxInFlight; items queued meanwhile leave together', async () => {
    const gates: Deferred[] = [];
    const f = recordingFlush(() => {
      const g = deferred();
      gates.push(g);
      return g.promise;
    });
    const c = new PublishCoalescer<number, number>(options({ maxInFlight: 2 }), f.flush);
    const first = [c.submit(1)];
    await sleep(1);
    first.push(c.submit(2));
    await sleep(1);
    const queued = [3, 4, 5, 6].map((i) => c.submit(i));
    await sleep(5);
    assert.deepEqual(f.batches, [[1], [2]], 'two flushes busy, the rest waits');
    assert.equal(c.queued, 4);
    gates[0]?.resolve();
    await first[0];
    await sleep(1);
    assert.deepEqual(f.batches[2], [3, 4, 5, 6], 'the queue left as one batch when a slot freed');
    for (const g of gates) g.resolve();
    assert.deepEqual(await Promise.all([...first, ...queued]), [10, 20, 30, 40, 50, 60]);
    assert.equal(f.maxRunning(), 2);
  });

  test('close() flushes what is queued, waits for flushes in flight, then refuses new items', async () => {
    const gate = deferred();
    const f = recordingFlush(() => gate.promise);
    const c = new PublishCoalescer<number, number>(options({ lingerMs: 10_000 }), f.flush);
    const p = [c.submit(1), c.submit(2)];
    const closed = c.close();
    assert.equal(await isSettled(closed), false, 'close waits for the flush in flight');
    await assert.rejects(c.submit(3), CoalescerClosedError);
    gate.resolve();
    await closed;
    assert.deepEqual(await Promise.all(p), [10, 20]);
    assert.deepEqual(f.batches, [[1, 2]], 'the lingering batch was sent at close, not dropped');
  });

  test('a full queue refuses at once; the queue bound does not count items in flight', async () => {
    const gate = deferred();
    const f = recordingFlush(() => gate.promise);
    const c = new PublishCoalescer<number, number>(options({ maxBatch: 2, maxInFlight: 1, maxQueued: 3 }), f.flush);
    const sent = [c.submit(1), c.submit(2)]; // a full batch: in flight at once
    const queued = [c.submit(3), c.submit(4), c.submit(5)];
    assert.equal(c.queued, 3);
    assert.equal(c.inFlightItems, 2);
    await assert.rejects(c.submit(6), QueueFullError);
    assert.equal(c.stats.shed, 1);
    gate.resolve();
    assert.deepEqual(await Promise.all([...sent, ...queued]), [10, 20, 30, 40, 50]);
    assert.equal(await c.submit(7), 70, 'room again once the queue drained');
  });

  test('withdraw() takes a queued item out for good; an item already in flight stays', async () => {
    const gate = deferred();
    const f = recordingFlush(() => gate.promise);
    const c = new PublishCoalescer<{ n: number }, number>(options({ maxBatch: 1, maxInFlight: 1 }), (items) => f.flush(items.map((i) => i.n)));
    const a = { n: 1 };
    const b = { n: 2 };
    const pa = c.submit(a);
    const pb = c.submit(b);
    await sleep(1);
    assert.equal(c.withdraw(a), false, 'a is in flight: its outcome is up to the database');
    assert.equal(c.withdraw(b), true);
    assert.equal(c.withdraw(b), false, 'only once');
    await assert.rejects(pb, WithdrawnError);
    gate.resolve();
    assert.equal(await pa, 10);
    await c.close();
    assert.deepEqual(f.batches, [[1]], 'the withdrawn item was never flushed');
    assert.equal(c.stats.withdrawn, 1);
  });
});

/** A pool whose connections run statements on `db`; the test flush uses it like the real mysql2 pool. */
function fakePool(db: SqlExecutor, connectionReady: Promise<void> = Promise.resolve()): Pool {
  const conn = {
    async query(sqlOrOptions: string | { sql: string }, values?: unknown[]) {
      const sql = typeof sqlOrOptions === 'string' ? sqlOrOptions : sqlOrOptions.sql;
      return [await db.query(sql, values)];
    },
    // The publishers' INSERT is a prepared statement on a real connection; the fake runs it as a query.
    async execute(sqlOrOptions: string | { sql: string }, values?: unknown[]) {
      const sql = typeof sqlOrOptions === 'string' ? sqlOrOptions : sqlOrOptions.sql;
      return [await db.query(sql, values)];
    },
    release: () => undefined,
    destroy: () => undefined,
  };
  return {
    getConnection: async () => {
      await connectionReady;
      return conn;
    },
  } as unknown as Pool;
}
const LIMITS = { queryTimeoutMs: 5_000, acquireTimeoutMs: 5_000 };

/** Records every statement; fails the ones whose SQL contains `failOn`'s marker value. */
class FakeExecutor implements SqlExecutor {
  readonly statements: { sql: string; values: unknown[] }[] = [];
  failOn: string | undefined;
  async query<T>(sql: string, given: unknown[] = []): Promise<T> {
    await sleep(2); // a commit takes time, so later requests pile up behind the busy flushes
    const values = given;
    this.statements.push({ sql, values });
    if (this.failOn !== undefined && values.some((v) => typeof v === 'string' && v.includes(this.failOn as string))) {
      throw Object.assign(new Error('Lost connection to server'), { code: 'PROTOCOL_CONNECTION_LOST' });
    }
    return { affectedRows: values.length / 3 } as T;
  }
}

describe('PublishCoalescer with the MySQL publisher (fake executor)', () => {
  const counter = '123e4567-e89b-42d3-a456-426614174000';

  test('200 concurrent requests become a few multi-row INSERTs, one row per request', async () => {
    const db = new FakeExecutor();
    const publisher = new SqlPublisher(db, mariadbEngine);
    const c = new PublishCoalescer<IncrementRequest, PublishOutcome>({ maxBatch: 50, lingerMs: 0, maxInFlight: 2, maxQueued: 1_000 }, (items) =>
      publishIncrements(fakePool(db), publisher, 'counter', items, LIMITS),
    );
    const requests = Array.from({ length: 200 }, (_, i) => ({ counterUuid: counter, requestId: `req-${i}` }));
    const outcomes = await Promise.all(requests.map((r) => c.submit(r)));
    assert.ok(outcomes.every((o) => o.kind === 'published'));
    assert.ok(db.statements.length <= 8, `${db.statements.length} INSERTs for 200 requests`);
    const rows = db.statements.reduce((n, s) => n + s.values.length / 3, 0);
    assert.equal(rows, 200);
    for (const s of db.statements) {
      assert.match(s.sql, /^INSERT INTO `watermill_counter` \(`uuid`, `payload`, `metadata`\) VALUES \(\?, \?, \?\)/);
      assert.match(s.values[0] as string, /^[0-9a-f-]{36}$/);
    }
    const ids = db.statements.flatMap((s) => s.values.filter((_, i) => i % 3 === 2).map((m) => (JSON.parse(m as string) as { request_id: string }).request_id));
    assert.deepEqual(new Set(ids), new Set(requests.map((r) => r.requestId)), 'every request id published once');
    const payload = JSON.parse(db.statements[0]?.values[1] as string) as unknown;
    assert.deepEqual(payload, { counter_uuid: counter });
  });

  test('a request cancelled while its batch waits for a connection is left out of the INSERT; the others are marked sent', async () => {
    const db = new FakeExecutor();
    const ready = deferred();
    const publisher = new SqlPublisher(db, mariadbEngine);
    const requests = ['keep-1', 'drop-1', 'keep-2'].map((requestId) => ({ counterUuid: counter, requestId, gate: { sent: false, cancelled: false } }));
    const flushed = publishIncrements(fakePool(db, ready.promise), publisher, 'counter', requests, LIMITS);
    await sleep(5);
    assert.equal(db.statements.length, 0, 'nothing sent while the connection is awaited');
    (requests[1] as (typeof requests)[number]).gate.cancelled = true;
    ready.resolve();
    const outcomes = await flushed;
    assert.deepEqual(outcomes.map((o) => o.kind), ['published', 'failed', 'published']);
    const sentIds = db.statements.flatMap((st) => st.values.filter((_, i) => i % 3 === 2).map((m) => (JSON.parse(m as string) as { request_id: string }).request_id));
    assert.deepEqual(sentIds, ['keep-1', 'keep-2']);
    assert.deepEqual(requests.map((r) => r.gate.sent), [true, false, true]);
  });

  test('an INSERT that fails rejects the requests it carried and no others', async () => {
    const db = new FakeExecutor();
    db.failOn = 'req-poison';
    const publisher = new SqlPublisher(db, mariadbEngine);
    const c = new PublishCoalescer<IncrementRequest, PublishOutcome>({ maxBatch: 10, lingerMs: 0, maxInFlight: 1, maxQueued: 1_000 }, (items) =>
      publishIncrements(fakePool(db), publisher, 'counter', items, LIMITS),
    );
    const ids = Array.from({ length: 30 }, (_, i) => (i === 15 ? 'req-poison' : `req-${i}`));
    const settled = await Promise.allSettled(ids.map((requestId) => c.submit({ counterUuid: counter, requestId })));
    const failedIds = ids.filter((_, i) => settled[i]?.status === 'rejected');
    const poisoned = db.statements.find((s) => s.values.some((v) => String(v).includes('req-poison')));
    assert.ok(poisoned !== undefined);
    const inPoisoned = poisoned.values
      .filter((_, i) => i % 3 === 2)
      .map((m) => (JSON.parse(m as string) as { request_id: string }).request_id);
    assert.deepEqual(failedIds.sort(), inPoisoned.sort());
    const reason = (settled[15] as PromiseRejectedResult).reason as unknown;
    assert.ok(reason instanceof PublishError);
    assert.equal(reason.outcome, 'unknown', 'a connection lost after the INSERT was sent: it may have committed');
    assert.ok(failedIds.length < ids.length);
  });
});
