// A hole whose publisher runs an explicit transaction (BEGIN; INSERT; ... seconds ...; COMMIT) while higher
// offsets commit, with a second connection reading information_schema.INNODB_TRX every 40 ms (a monitoring
// tool, another subscriber). That poller keeps InnoDB's INNODB_TRX cache from ever being refreshed (it is only
// refilled after 100 ms without a reader), and the frozen snapshot holds a row of the consume connection from
// an earlier transaction: a proof that trusts "the snapshot shows my connection, so it is fresh" finds no open
// writer and passes the hole, and the message that commits seconds later is lost. The gap proof must count it
// exactly once, at READ COMMITTED (the default) and at REPEATABLE READ. No gdb needed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { executorOf, type PoolConnection } from '../src/system/db/mariadb/pool.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, prepareOffsetTopic, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { selectAllMessages, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import { readTransactionSnapshot } from '../src/system/sql/mariadb/innodbTrx.ts';
import type { IsolationLevel } from '../src/system/pubsub/types.ts';
import { eventually, newTopic } from './contract/pubsubContract.ts';
import { readSqlEffects, recordSqlEffects } from './support/contractTargets.ts';
import { useSubscriberDatabase } from './support/subscriberDatabase.ts';

const POLL_MS = 40;
/** How long the explicit transaction stays open after its INSERT: well past the proof's ~100 ms, well below the 10 s bound. */
const HOLD_MS = 3_000;
const HIGHER = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a hole held by an explicit transaction, with INNODB_TRX polled every 40 ms', () => {
  const { pool, subscriptions } = useSubscriberDatabase(20);

  /** Reads INNODB_TRX every POLL_MS on its own connection until stopped. */
  async function startPoller(): Promise<{ reads: () => number; stop: () => Promise<void> }> {
    const c = await pool().getConnection();
    let stopped = false;
    let reads = 0;
    const loop = (async () => {
      for (let i = 0; i < 2_000 && !stopped; i += 1) {
        await c.query('SELECT `trx_id`, `trx_mysql_thread_id`, `trx_query` FROM information_schema.INNODB_TRX');
        reads += 1;
        await sleep(POLL_MS);
      }
    })();
    return {
      reads: () => reads,
      stop: async () => {
        stopped = true;
        await loop;
        c.release();
      },
    };
  }

  for (const isolation of ['READ COMMITTED', 'REPEATABLE READ'] as const satisfies readonly IsolationLevel[]) {
    it(`${isolation}: the held message is counted exactly once`, async () => {
      const topic = newTopic();
      const group = `g_${isolation.replace(' ', '_').toLowerCase()}`;
      const insert = `INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, ?, '{}')`;
      await prepareOffsetTopic(pool(), topic, group);
      const logs: string[] = [];
      let enteredSlow: () => void = () => undefined;
      const slowEntered = new Promise<void>((resolve) => (enteredSlow = resolve));
      const sub = await subscribeOffset(pool(), {
        ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
        isolation,
        topic,
        consumerGroup: group,
        handler: async (messages, tx) => {
          // The first message is handled slowly, so that the consume connection is certainly inside a
          // transaction when the poller first fills the INNODB_TRX cache (in production that happens by chance,
          // and often: the consume connection spends much of its time in transactions).
          if (messages.some((m) => (m.payload as { slow?: boolean } | null)?.slow === true)) {
            enteredSlow();
            await sleep(400);
          }
          await recordSqlEffects(tx, group, messages);
        },
        log: (line) => logs.push(line),
      });
      subscriptions.push(sub);

      await pool().query(insert, [randomUUID(), JSON.stringify({ slow: true })]);
      await slowEntered;
      const poller = await startPoller();
      let held: PoolConnection | undefined;
      try {
        await eventually('the slow first message to be acked', async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === 1);

        // The explicit transaction: its offset (2) is allocated and its row written now, committed HOLD_MS later.
        held = await pool().getConnection();
        const heldUuid = randomUUID();
        await held.query('START TRANSACTION');
        await held.query(insert, [heldUuid, '{}']);
        const insertedAt = Date.now();
        for (let i = 0; i < HIGHER; i += 1) {
          await pool().query(insert, [randomUUID(), '{}']);
          await sleep(100);
        }
        await sleep(Math.max(0, HOLD_MS - (Date.now() - insertedAt)));
        await held.query('COMMIT');
        held.release();
        held = undefined;

        const max = await selectMaxOffset(executorOf(pool()), topic);
        await eventually(`group ${group} to ack the last offset ${max}`, async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max, 20_000);
        const messages = await selectAllMessages(executorOf(pool()), topic);
        const effects = await readSqlEffects(pool(), group);
        const heldOffset = messages.find((m) => m.uuid === heldUuid)?.offset;
        const report = `poller reads ${poller.reads()}; held message at offset ${heldOffset}; log: ${logs.join(' | ') || '(none)'}`;
        process.stdout.write(`# ${isolation}: ${report}\n`);
        assert.equal(effects.get(heldUuid) ?? 0, 1, `the held message is counted exactly once: ${report}`);
        assert.deepEqual(messages.filter((m) => effects.get(m.uuid) !== 1).map((m) => m.offset), [], `every message once: ${report}`);
        assert.equal(sub.stats.gapsPassed, 0, `no hole passed: offset ${heldOffset} was never a permanent hole: ${report}`);
      } finally {
        if (held !== undefined) {
          await held.query('ROLLBACK').catch(() => undefined);
          held.release();
        }
        await poller.stop();
        await sub.close();
        subscriptions.splice(subscriptions.indexOf(sub), 1);
        // Let the INNODB_TRX cache go idle before the next case.
        await sleep(200);
      }
    });
  }

  it('INNODB_TRX freshness: a frozen snapshot that holds a row of our connection from an earlier transaction is not fresh', async () => {
    const c = await pool().getConnection();
    try {
      await sleep(200); // nobody has read INNODB_TRX for 100 ms: the next read refills the cache
      await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const poller = await startPoller(); // its first read fills the cache while `c` has a transaction open
      try {
        await sleep(2 * POLL_MS);
        await c.query('COMMIT');
        const frozen = await readTransactionSnapshot(executorOf(c));
        assert.equal(frozen.fresh, false, 'the own row comes from the earlier transaction, not from this probe');
      } finally {
        await poller.stop();
      }
      await sleep(200);
      const refilled = await readTransactionSnapshot(executorOf(c));
      assert.equal(refilled.fresh, true, 'after 100 ms without readers the cache is refilled during the probe, which sees its own statement');
    } finally {
      c.release();
    }
  });
});
