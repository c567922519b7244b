// Crash safety of the worker process: SIGKILL at each failpoint and SIGKILL of the database while messages
// flow; afterwards every counter equals the number of its messages. The controls (after-commit and
// before-commit with a crash between their two commits) must end above and below, or the check proves nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SystemUnderTest, type WorkerFlags } from '../src/harness/systemUnderTest.ts';
import { MysqlPublisher } from '../src/system/pubsub/mysqlPublisher.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { selectAllCounters } from '../src/system/sql/mariadb/counterTable.ts';
import { selectAllMessages, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { countQueue, selectAllQueueMessages } from '../src/system/sql/mariadb/queueTable.ts';
import type { FailpointName } from '../src/system/failpoints.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import { eventually } from './contract/pubsubContract.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';

interface CounterComparison {
  /** Counters whose value is below their number of messages, and by how much in all. */
  lost: number;
  /** Counters whose value is above their number of messages, and by how much in all. */
  duplicated: number;
  messages: number;
}

async function compareCounters(db: SqlExecutor, topic: string, mode: TopicMode): Promise<CounterComparison> {
  const messages = mode === 'offset' ? await selectAllMessages(db, topic) : await selectAllQueueMessages(db, topic);
  const expected = new Map<string, number>();
  for (const m of messages) {
    const id = (m.payload as { counter_uuid: string }).counter_uuid;
    expected.set(id, (expected.get(id) ?? 0) + 1);
  }
  const counters = await selectAllCounters(db);
  let lost = 0;
  let duplicated = 0;
  for (const id of new Set([...expected.keys(), ...counters.keys()])) {
    const diff = (counters.get(id) ?? 0) - (expected.get(id) ?? 0);
    if (diff < 0) lost -= diff;
    else duplicated += diff;
  }
  return { lost, duplicated, messages: messages.length };
}

describe('worker crash safety (real processes, private database)', () => {
  let sut: SystemUnderTest;
  const counters = Array.from({ length: 20 }, () => randomUUID());

  before(async () => {
    sut = await SystemUnderTest.start({ handleSignals: false });
  });
  after(async () => {
    await sut.close();
  });

  /** Publishes `n` messages in batches of 50, spread over the counters, while the test does its faults. */
  async function publish(topic: string, mode: TopicMode, n: number, pauseMs = 0): Promise<void> {
    const publisher = new MysqlPublisher(sut.db, mode);
    for (let i = 0; i < n; i += 50) {
      const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) => ({
        uuid: randomUUID(),
        payload: { counter_uuid: counters[(i + j) % counters.length] },
        metadata: {},
      }));
      await publisher.publish(topic, batch);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  async function drained(topic: string, mode: TopicMode, group: string): Promise<void> {
    await eventually(
      'the worker to consume everything',
      async () => {
        if (mode === 'queue') {
          const q = await countQueue(sut.db, topic);
          return q.acked === q.total;
        }
        return (await selectAckedOffset(sut.db, topic, group)) === (await selectMaxOffset(sut.db, topic));
      },
      60_000,
    );
  }

  async function freshTopic(mode: TopicMode): Promise<string> {
    const topic = `crash_${randomUUID().slice(0, 8)}`;
    await ensureSchema(sut.db, { topic, topicSchema: mode, dedup: false });
    // Each test gets its own counters table contents: clear them so comparisons see only this topic.
    await sut.db.query('DELETE FROM `counter`');
    return topic;
  }

  /**
   * Runs a worker with `failpoint` armed until it dies there, `times` times, while publishing continues;
   * then a clean worker drains the topic. Returns how often the process was killed at the point.
   */
  async function crashLoop(topic: string, flags: WorkerFlags, failpoint: FailpointName, times: number, nth: number): Promise<number> {
    let crashes = 0;
    const publishing = publish(topic, flags.mode ?? 'offset', 3_000, 5);
    for (let i = 0; i < times; i += 1) {
      const worker = await sut.startWorker({ ...flags, topic, failpoints: [`${failpoint}=${nth}`] });
      const status = await Promise.race([
        worker.exited(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${failpoint} not reached in 30 s: ${worker.outputTail()}`)), 30_000)),
      ]);
      assert.equal(status.signal, 'SIGKILL', `worker died by its failpoint ${failpoint} (exit ${JSON.stringify(status)}): ${worker.outputTail()}`);
      crashes += 1;
    }
    await publishing;
    const clean = await sut.startWorker({ ...flags, topic });
    await drained(topic, flags.mode ?? 'offset', flags.consumerGroup ?? 'counter');
    await sut.stopService(clean);
    return crashes;
  }

  const exactlyOncePoints: FailpointName[] = [
    'consume-after-read',
    'consume-after-effects',
    'consume-after-ack',
    'consume-before-commit',
    'consume-after-commit',
  ];

  for (const mode of ['offset', 'queue'] as const) {
    for (const point of exactlyOncePoints) {
      it(`${mode} mode, SIGKILL at ${point} three times: every counter equals its messages`, async () => {
        const topic = await freshTopic(mode);
        const crashes = await crashLoop(topic, { mode, batchSize: 100 }, point, 3, 4);
        const result = await compareCounters(sut.db, topic, mode);
        assert.equal(crashes, 3);
        assert.equal(result.messages, 3_000);
        assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 });
      });
    }
  }

  it('offset mode, the private database SIGKILLed and restarted twice while messages flow: nothing lost or doubled', async () => {
    const topic = await freshTopic('offset');
    const worker = await sut.startWorker({ topic, batchSize: 100 });
    const db = sut.requireManagedDatabase();
    const publisher = new MysqlPublisher(sut.db);
    let published = 0;
    let stop = false;
    // The publisher keeps going through the outages; an INSERT whose outcome is unknown is not counted,
    // which is fine: the check below compares counters with the messages that are in the table.
    const publishing = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 20 }, (_, j) => ({ uuid: randomUUID(), payload: { counter_uuid: counters[j] }, metadata: {} }));
        await publisher.publish(topic, batch).then(
          () => (published += batch.length),
          () => new Promise((r) => setTimeout(r, 50)),
        );
      }
    })();
    for (let i = 0; i < 2; i += 1) {
      await new Promise((r) => setTimeout(r, 1_500));
      await db.kill('SIGKILL');
      await db.restart({ clean: false });
    }
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await publishing;
    await drained(topic, 'offset', 'counter');
    assert.equal(worker.running, true, `the worker survived the outages: ${worker.outputTail()}`);
    await sut.stopService(worker);
    const result = await compareCounters(sut.db, topic, 'offset');
    assert.ok(published > 500, `messages flowed during the test (${published})`);
    assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 });
  });

  it('control: after-commit, killed between its two commits, ends ABOVE the message count (duplicates)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'after-commit' }, 'consume-between-commits', 3, 2);
    const result = await compareCounters(sut.db, topic, 'offset');
    assert.equal(result.lost, 0);
    assert.ok(result.duplicated >= 3, `each crash re-applies a committed batch (duplicated ${result.duplicated})`);
  });

  it('control: before-commit, killed between its two commits, ends BELOW the message count (losses)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'before-commit' }, 'consume-between-commits', 3, 2);
    const result = await compareCounters(sut.db, topic, 'offset');
    assert.equal(result.duplicated, 0);
    assert.ok(result.lost >= 3, `each crash loses an acked batch (lost ${result.lost})`);
  });
});
