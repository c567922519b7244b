// Liveness of the gap proof: a hole that cannot be proven permanent, because an unrelated statement never ends
// or a transaction left PREPARED holds the hole's row, is passed after the bound and counted as passed by
// timeout. Without such a blocker (an idle transaction elsewhere is none) a rolled-back insert's hole is passed
// by the proof, well before the bound.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { executorOf, type PoolConnection } from '../src/system/db/mariadb/pool.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, prepareOffsetTopic, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import type { Subscription } from '../src/system/pubsub/types.ts';
import { eventually, newTopic } from './contract/pubsubContract.ts';
import { readSqlEffects, recordSqlEffects } from './support/contractTargets.ts';
import { useSubscriberDatabase } from './support/subscriberDatabase.ts';

const BOUND_MS = 1_500;

describe('gap proof liveness: the bound passes what cannot be proven, and says so', () => {
  const held: PoolConnection[] = [];
  // Hooks run in the order they are registered: the held connections go before the pool ends.
  after(() => {
    for (const c of held) c.destroy();
  });
  const { pool, subscriptions } = useSubscriberDatabase(20);
  before(async () => {
    await pool().query('CREATE TABLE IF NOT EXISTS liveness_other (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
  });

  /** Offset 1 rolled back, offset 2 committed: a permanent hole below a visible offset. */
  async function rolledBackHole(topic: string): Promise<string> {
    const insert = `INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`;
    const a = await pool().getConnection();
    try {
      await a.query('START TRANSACTION');
      await a.query(insert, [randomUUID()]);
      const committed = randomUUID();
      await pool().query(insert, [committed]);
      await a.query('ROLLBACK');
      return committed;
    } finally {
      a.release();
    }
  }

  async function consume(topic: string, group: string): Promise<{ sub: Subscription; logs: string[]; elapsedMs: number }> {
    await prepareOffsetTopic(pool(), topic, group);
    const logs: string[] = [];
    const committed = await rolledBackHole(topic);
    const started = Date.now();
    const sub = await subscribeOffset(pool(), {
      ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
      topic,
      consumerGroup: group,
      gapTimeoutMs: BOUND_MS,
      handler: (messages, tx) => recordSqlEffects(tx, group, messages),
      log: (line) => logs.push(line),
    });
    subscriptions.push(sub);
    await eventually('the group to ack offset 2', async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === 2, 20_000);
    const elapsedMs = Date.now() - started;
    assert.equal((await readSqlEffects(pool(), group)).get(committed), 1, 'the committed message was handled once');
    return { sub, logs, elapsedMs };
  }

  it('control: with nothing in the way the hole is passed by the statements proof, not the bound', async () => {
    const { sub, logs } = await consume(newTopic(), 'free');
    assert.equal(sub.stats.gapsPassedByStatements, 1, logs.join('\n'));
    assert.equal(sub.stats.gapsPassedByTimeout, 0);
  });

  it('an unrelated SELECT SLEEP that outlives the bound: passed by timeout, recorded', async () => {
    const sleeper = await pool().getConnection();
    held.push(sleeper);
    const sleeperId = Number(((await sleeper.query('SELECT CONNECTION_ID() AS id')) as unknown as [{ id: number }[]])[0][0]!.id);
    const sleeping = sleeper.query('SELECT SLEEP(20)').catch(() => undefined);
    const { sub, logs, elapsedMs } = await consume(newTopic(), 'sleep');
    assert.equal(sub.stats.gapsPassedByTimeout, 1, logs.join('\n'));
    assert.equal(sub.stats.gapsPassedByStatements, 0);
    assert.ok(elapsedMs >= BOUND_MS - 50, `not before the bound (${elapsedMs} ms)`);
    assert.match(logs.join('\n'), /offsets 1-1 NOT proven permanent; passed by the 1500 ms bound \(timeout\)/);
    // Closing the socket would not end the statement on the server (it would hold up the next tests' step 1).
    await pool().query(`KILL ${sleeperId}`);
    await sleeping;
    sleeper.destroy();
  });

  it('an idle open transaction that has written elsewhere no longer holds the proof up: passed by the proof', async () => {
    const idle = await pool().getConnection();
    held.push(idle);
    await idle.query('START TRANSACTION');
    await idle.query('INSERT INTO liveness_other (v) VALUES (1)');
    const { sub, logs, elapsedMs } = await consume(newTopic(), 'idle');
    assert.equal(sub.stats.gapsPassedByStatements, 1, logs.join('\n'));
    assert.equal(sub.stats.gapsPassedByTimeout, 0);
    assert.ok(elapsedMs < BOUND_MS, `before the bound (${elapsedMs} ms)`);
    await idle.query('ROLLBACK');
  });

  it('an XA transaction left PREPARED with a row in the hole: passed by timeout, recorded (a bound, not a proof)', async () => {
    const topic = newTopic();
    await prepareOffsetTopic(pool(), topic, 'xa');
    // Offset 1 is the prepared transaction's row, held until XA COMMIT/ROLLBACK; offset 2 commits.
    const xa = await pool().getConnection();
    held.push(xa);
    const xid = `eob-${topic}`;
    await xa.query(`XA START '${xid}'`);
    await xa.query(`INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`, [randomUUID()]);
    await xa.query(`XA END '${xid}'`);
    await xa.query(`XA PREPARE '${xid}'`);
    try {
      const committed = randomUUID();
      await pool().query(`INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`, [committed]);
      const logs: string[] = [];
      const started = Date.now();
      const sub = await subscribeOffset(pool(), {
        ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
        topic,
        consumerGroup: 'xa',
        gapTimeoutMs: BOUND_MS,
        handler: (messages, tx) => recordSqlEffects(tx, 'xa', messages),
        log: (line) => logs.push(line),
      });
      subscriptions.push(sub);
      await eventually('the group to ack offset 2', async () => (await selectAckedOffset(executorOf(pool()), topic, 'xa')) === 2, 20_000);
      const elapsedMs = Date.now() - started;
      assert.equal(sub.stats.gapsPassedByTimeout, 1, logs.join('\n'));
      assert.equal(sub.stats.gapsPassedByStatements, 0);
      assert.ok(elapsedMs >= BOUND_MS - 50, `not before the bound (${elapsedMs} ms)`);
      assert.match(logs.join('\n'), /offsets 1-1 NOT proven permanent; passed by the 1500 ms bound \(timeout\)/);
    } finally {
      await xa.query(`XA ROLLBACK '${xid}'`);
    }
  });
});
