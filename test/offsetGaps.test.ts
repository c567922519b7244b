// The offset-mode hazard: offsets are allocated at INSERT and become visible at COMMIT, in any
// order. The default subscriber must lose nothing; the watermill-shaped one and the non-locking read without
// contiguity must be seen to lose messages, or these tests could not tell the difference.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { executorOf, type Pool } from '../src/system/db/mariadb/pool.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import {
  DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
  contiguousPrefix,
  prepareOffsetTopic,
  subscribeOffset,
  type OffsetSubscriberOptions,
} from '../src/system/pubsub/offsetSubscriber.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { selectAllMessages, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import type { Message, Subscription } from '../src/system/pubsub/types.ts';
import { eventually, newTopic, outgoing } from './contract/pubsubContract.ts';
import { readSqlEffects, recordSqlEffects } from './support/contractTargets.ts';
import { useSubscriberDatabase } from './support/subscriberDatabase.ts';

function msg(offset: number): Message {
  return { offset, uuid: `u${offset}`, createdAt: new Date(0), payload: null, metadata: {} };
}

describe('contiguousPrefix (pure)', () => {
  it('stops at the first hole', () => {
    assert.deepEqual(
      contiguousPrefix([msg(4), msg(5), msg(7)], 3, 0).map((m) => m.offset),
      [4, 5],
    );
  });
  it('takes nothing when the head itself is missing', () => {
    assert.deepEqual(contiguousPrefix([msg(5), msg(6)], 3, 0), []);
  });
  it('passes a hole proven permanent, and only that one', () => {
    assert.deepEqual(
      contiguousPrefix([msg(6), msg(7), msg(9)], 3, 5).map((m) => m.offset),
      [6, 7],
    );
  });
});

interface Outcome {
  lost: string[];
  duplicated: string[];
  lostOffsets: number[];
}

async function compare(pool: Pool, topic: string, group: string): Promise<Outcome> {
  const messages = await selectAllMessages(executorOf(pool), topic);
  const effects = await readSqlEffects(pool, group);
  const lost = messages.filter((m) => !effects.has(m.uuid));
  return {
    lost: lost.map((m) => m.uuid),
    lostOffsets: lost.map((m) => m.offset),
    duplicated: [...effects].filter(([, n]) => n > 1).map(([uuid]) => uuid),
  };
}

describe('offset subscriber against out-of-order commits', () => {
  const { pool, subscriptions } = useSubscriberDatabase(40);

  async function subscribe(topic: string, group: string, overrides: Partial<OffsetSubscriberOptions>): Promise<Subscription> {
    const sub = await subscribeOffset(pool(), {
      ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
      pollIntervalMs: 2,
      topic,
      consumerGroup: group,
      handler: (messages, tx) => recordSqlEffects(tx, group, messages),
      ...overrides,
    });
    subscriptions.push(sub);
    return sub;
  }

  /** Five transactions publish in offset order and then commit in reverse order; the middle one rolls back. */
  async function reverseCommits(topic: string): Promise<{ committed: string[]; rolledBack: string }> {
    const publisher = new SqlPublisher(executorOf(pool()), mariadbEngine);
    const conns = await Promise.all(Array.from({ length: 5 }, () => pool().getConnection()));
    const sent = outgoing(5, 'reverse');
    try {
      for (const [i, conn] of conns.entries()) {
        await conn.query('START TRANSACTION');
        await publisher.publish(topic, [sent[i]!], executorOf(conn));
      }
      for (let i = conns.length - 1; i >= 0; i -= 1) {
        await new Promise((r) => setTimeout(r, 150)); // time for the subscriber to read what has committed
        await conns[i]!.query(i === 2 ? 'ROLLBACK' : 'COMMIT');
      }
    } finally {
      for (const c of conns) c.release();
    }
    return { committed: sent.filter((_, i) => i !== 2).map((m) => m.uuid), rolledBack: sent[2]!.uuid };
  }

  for (const isolation of ['SERIALIZABLE', 'REPEATABLE READ', 'READ COMMITTED'] as const) {
    it(`${isolation}, contiguous: every committed message exactly once, the rolled-back one never`, async () => {
      const topic = newTopic();
      const group = `contiguous-${isolation}`;
      await prepareOffsetTopic(pool(), topic, group);
      await subscribe(topic, group, { isolation });
      const { committed, rolledBack } = await reverseCommits(topic);
      const max = await selectMaxOffset(executorOf(pool()), topic);
      await eventually('the group to ack the last offset', async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max);
      const effects = await readSqlEffects(pool(), group);
      for (const uuid of committed) assert.equal(effects.get(uuid), 1, `committed message ${uuid} handled exactly once`);
      assert.equal(effects.has(rolledBack), false, 'the rolled-back message was never handled');
    });
  }

  it('control: REPEATABLE READ without contiguity (the non-locking read) loses the late commits', async () => {
    const topic = newTopic();
    const group = 'none-rr';
    await prepareOffsetTopic(pool(), topic, group);
    await subscribe(topic, group, { isolation: 'REPEATABLE READ', gapHandling: 'none' });
    const { committed } = await reverseCommits(topic);
    const max = await selectMaxOffset(executorOf(pool()), topic);
    await eventually('the group to ack the last offset', async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max);
    await new Promise((r) => setTimeout(r, 200));
    const effects = await readSqlEffects(pool(), group);
    const handled = committed.filter((uuid) => effects.has(uuid));
    // Offset 5 commits first and is acked; 4, 2 and 1 commit below the acked offset and are never read.
    assert.deepEqual(handled, [committed[committed.length - 1]], 'only the first commit (the highest offset) was handled');
  });

  it('16 concurrent single-row autocommit publishers for 20 s: defaults lose nothing, the watermill profile loses messages', async () => {
    const topic = newTopic();
    await prepareOffsetTopic(pool(), topic, 'safe');
    await prepareOffsetTopic(pool(), topic, 'watermill');
    // Both read the same topic while it is written: the default subscriber, and watermill-sql's settings
    // (SERIALIZABLE, FOR UPDATE on the offsets row, ack through the last row read), both at batch 100.
    await subscribe(topic, 'safe', { batchSize: 100 });
    await subscribe(topic, 'watermill', { batchSize: 100, isolation: 'SERIALIZABLE', gapHandling: 'none' });
    const publishers = 16;
    const deadline = Date.now() + 20_000;
    let inserted = 0;
    // Raw INSERTs, not our publisher: the subscriber must be safe against publishers that do not cooperate.
    const insert = `INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, ?, ?)`;
    await Promise.all(
      Array.from({ length: publishers }, async () => {
        while (Date.now() < deadline) {
          await pool().query(insert, [randomUUID(), '{"counter_uuid":null}', '{}']);
          inserted += 1;
        }
      }),
    );
    const max = await selectMaxOffset(executorOf(pool()), topic);
    for (const group of ['safe', 'watermill']) {
      await eventually(`group ${group} to ack the last offset`, async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max, 60_000);
    }
    const safe = await compare(pool(), topic, 'safe');
    const watermill = await compare(pool(), topic, 'watermill');
    const report = `${inserted} messages from ${publishers} publishers; watermill profile lost ${watermill.lost.length} (offsets ${watermill.lostOffsets.slice(0, 20).join(', ')}${watermill.lostOffsets.length > 20 ? ', ...' : ''})`;
    process.stdout.write(`# ${report}\n`);
    assert.ok(inserted >= 4_000, `the publishers wrote a meaningful load (${inserted})`);
    assert.deepEqual(safe.lost, [], 'default subscriber: nothing lost');
    assert.deepEqual(safe.duplicated, [], 'default subscriber: nothing handled twice');
    assert.ok(watermill.lost.length > 0, `the watermill profile must be seen to lose messages: ${report}`);
    assert.deepEqual(watermill.duplicated, [], 'the watermill profile loses, it does not duplicate');
  });
});
