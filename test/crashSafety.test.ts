// Crash safety of the worker process: SIGKILL at each failpoint and SIGKILL of the database while messages
// flow; afterwards every counter equals the number of its messages. The controls (after-commit and
// before-commit with a crash between their two commits) must end above and below, or the check proves nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SystemUnderTest, type WorkerFlags } from '../src/harness/systemUnderTest.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { selectAllCounters } from '../src/system/sql/mariadb/counterTable.ts';
import { selectAllMessages, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { countQueue, selectAllQueueMessages } from '../src/system/sql/mariadb/queueTable.ts';
import type { FailpointName } from '../src/system/failpoints.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import { eventually } from './contract/pubsubContract.ts';
import { compareCounters, diesAtFailpoint, EXACTLY_ONCE_FAILPOINTS, publishSpread, publishThroughOutages, type CounterComparison } from './support/crashSafety.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';

async function compare(db: SqlExecutor, topic: string, mode: TopicMode): Promise<CounterComparison> {
  const messages = mode === 'offset' ? await selectAllMessages(db, topic) : await selectAllQueueMessages(db, topic);
  return compareCounters(messages, await selectAllCounters(db));
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
    const publishing = publishSpread(new SqlPublisher(sut.db, mariadbEngine, flags.mode ?? 'offset'), topic, counters, 3_000, 5);
    for (let i = 0; i < times; i += 1) {
      const worker = await sut.startWorker({ ...flags, topic, failpoints: [`${failpoint}=${nth}`] });
      await diesAtFailpoint(worker, failpoint, 30_000);
      crashes += 1;
    }
    await publishing;
    const clean = await sut.startWorker({ ...flags, topic });
    await drained(topic, flags.mode ?? 'offset', flags.consumerGroup ?? 'counter');
    await sut.stopService(clean);
    return crashes;
  }

  for (const mode of ['offset', 'queue'] as const) {
    for (const point of EXACTLY_ONCE_FAILPOINTS) {
      it(`${mode} mode, SIGKILL at ${point} three times: every counter equals its messages`, async () => {
        const topic = await freshTopic(mode);
        const crashes = await crashLoop(topic, { mode, batchSize: 100 }, point, 3, 4);
        const result = await compare(sut.db, topic, mode);
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
    const publishing = publishThroughOutages(new SqlPublisher(sut.db, mariadbEngine), topic, counters);
    for (let i = 0; i < 2; i += 1) {
      await new Promise((r) => setTimeout(r, 1_500));
      await db.kill('SIGKILL');
      await db.restart({ clean: false });
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const published = await publishing.stop();
    await drained(topic, 'offset', 'counter');
    assert.equal(worker.running, true, `the worker survived the outages: ${worker.outputTail()}`);
    await sut.stopService(worker);
    const result = await compare(sut.db, topic, 'offset');
    assert.ok(published > 500, `messages flowed during the test (${published})`);
    assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 });
  });

  it('control: after-commit, killed between its two commits, ends ABOVE the message count (duplicates)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'after-commit' }, 'consume-between-commits', 3, 2);
    const result = await compare(sut.db, topic, 'offset');
    assert.equal(result.lost, 0);
    assert.ok(result.duplicated >= 3, `each crash re-applies a committed batch (duplicated ${result.duplicated})`);
  });

  it('control: before-commit, killed between its two commits, ends BELOW the message count (losses)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'before-commit' }, 'consume-between-commits', 3, 2);
    const result = await compare(sut.db, topic, 'offset');
    assert.equal(result.duplicated, 0);
    assert.ok(result.lost >= 3, `each crash loses an acked batch (lost ${result.lost})`);
  });
});
