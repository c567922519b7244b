// The PostgreSQL proof under raw publishers: 16 clients doing single-row autocommit INSERTs that name no
// transaction id (the column's default assigns it), plus one transaction that inserts FIRST and commits LAST,
// seconds later, while the worker consumes. With the xmin rule every message is counted exactly once; the same
// setup with the control reader (the read without the xmin condition, --gap-handling none) loses the long
// transaction's message, which shows that the rule is what keeps it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../src/system/worker.ts';
import type { GapHandling } from '../src/system/pubsub/offsetSubscriber.ts';
import type { HandlerName } from '../src/system/counterHandler.ts';
import { eventually } from './contract/pubsubContract.ts';

const PUBLISHERS = 16;
const ROWS_EACH = 150;
const LONG_TX_HOLD_MS = 4_000;

describe('PostgreSQL: raw publishers and a long transaction (the xmin rule)', () => {
  const { server, db } = usePrivatePostgresDatabase();

  /** One raw client per publisher: plain SQL, no transaction id given, autocommit. */
  async function rawInsert(client: pg.Client, topic: string, counter: string): Promise<void> {
    await client.query(`INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") VALUES ($1, json_build_object('counter_uuid', $2::text), '{}')`, [randomUUID(), counter]);
  }

  /**
   * Runs the scenario on a fresh topic with a worker of `gapHandling`; returns each counter's value and how
   * many messages were published for it, after the topic has drained (or, for the control, after the long
   * transaction committed and everything else was consumed).
   */
  async function scenario(gapHandling: GapHandling | undefined, handler: HandlerName = 'batched'): Promise<{ expected: Map<string, number>; counted: Map<string, number>; longCounter: string }> {
    const topic = `raw_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode: 'offset', dedup: false });
    await db().executor().query('TRUNCATE "counter"');
    const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, topic, gapHandling, handler, pollIntervalMs: 5, log: () => undefined });
    if (handler === 'watermill') {
      // watermill-sql's PostgreSQL subscriber: REPEATABLE READ and the xmin rule, unless told otherwise.
      assert.deepEqual(worker.settings, { isolation: 'REPEATABLE READ', gapHandling: 'contiguous' });
    }
    const clients = await Promise.all(
      Array.from({ length: PUBLISHERS + 1 }, async () => {
        const c = new pg.Client({ connectionString: server().url });
        await c.connect();
        return c;
      }),
    );
    const expected = new Map<string, number>();
    try {
      const long = clients[PUBLISHERS]!;
      const longCounter = randomUUID();
      // The long transaction takes its id first (at its INSERT), so every raw publisher's id is higher.
      await long.query('BEGIN');
      await rawInsert(long, topic, longCounter);
      const counters = Array.from({ length: PUBLISHERS }, () => randomUUID());
      const publishing = Promise.all(
        counters.map(async (counter, i) => {
          for (let n = 0; n < ROWS_EACH; n += 1) await rawInsert(clients[i]!, topic, counter);
        }),
      );
      const held = new Promise((r) => setTimeout(r, LONG_TX_HOLD_MS));
      await Promise.all([publishing, held]);
      for (const c of counters) expected.set(c, ROWS_EACH);
      // Everything else has committed; give the worker time to read what it may before the long one ends.
      await new Promise((r) => setTimeout(r, 500));
      await long.query('COMMIT');
      expected.set(longCounter, 1);
      const total = PUBLISHERS * ROWS_EACH + 1;
      const sum = async (): Promise<number> => [...(await db().engine.selectAllCounters(db().executor())).values()].reduce((a, b) => a + b, 0);
      if (gapHandling !== 'none') {
        await eventually('the worker to count every message', async () => (await sum()) >= total, 60_000);
      } else {
        // The control may lose more than the long one (a publisher's row committed after a later id's row was
        // read); wait until its count stops moving: 2 s without change, the row long committed by then.
        for (let last = -1, now = await sum(); now !== last; ) {
          await new Promise((r) => setTimeout(r, 2_000));
          last = now;
          now = await sum();
        }
      }
      return { expected, counted: await db().engine.selectAllCounters(db().executor()), longCounter };
    } finally {
      await worker.close();
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  }

  it(`${PUBLISHERS} raw publishers x ${ROWS_EACH} single-row INSERTs and a transaction open ${LONG_TX_HOLD_MS} ms that inserted first: every message counted exactly once`, async () => {
    const { expected, counted, longCounter } = await scenario('contiguous');
    const wrong = [...expected].filter(([id, n]) => (counted.get(id) ?? 0) !== n).map(([id, n]) => `${id}: ${counted.get(id) ?? 0} of ${n}`);
    assert.deepEqual(wrong, [], 'every counter equals its messages');
    assert.equal(counted.get(longCounter), 1, 'the long transaction\'s message was counted once');
    assert.equal(counted.size, expected.size, 'no counter without messages');
  });

  it('the watermill handler (read then write per message) with its PostgreSQL defaults: every message counted exactly once', async () => {
    const { expected, counted } = await scenario(undefined, 'watermill');
    const wrong = [...expected].filter(([id, n]) => (counted.get(id) ?? 0) !== n).map(([id, n]) => `${id}: ${counted.get(id) ?? 0} of ${n}`);
    assert.deepEqual(wrong, [], 'every counter equals its messages');
  });

  it('control: the same with the reader WITHOUT the xmin rule loses the long transaction\'s message', async () => {
    const { expected, counted, longCounter } = await scenario('none');
    assert.equal(counted.get(longCounter) ?? 0, 0, 'the control read past the long transaction and never came back for it');
    const duplicated = [...expected].filter(([id, n]) => (counted.get(id) ?? 0) > n);
    assert.deepEqual(duplicated, [], 'the control loses, it never counts twice');
  });
});
