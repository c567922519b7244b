// Crash safety of the worker on PostgreSQL: SIGKILL at each failpoint of the consume transaction, in offset
// and queue mode, while messages flow; afterwards every counter equals the number of its messages. The controls
// (after-commit and before-commit, killed between their two commits) must end above and below, or the check
// proves nothing. Workers are real `eob worker` processes given the URL in DATABASE_URL.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { ChildService } from '../src/harness/childService.ts';
import { workerArgv, type WorkerSpec } from '../src/system/workerSpec.ts';
import { childEnvironment } from '../src/config.ts';
import { projectRoot } from '../src/projectRoot.ts';
import type { FailpointName } from '../src/system/failpoints.ts';
import type { TopicMode } from '../src/system/pubsub/types.ts';
import { eventually } from './contract/pubsubContract.ts';
import { compareCounters, diesAtFailpoint, EXACTLY_ONCE_FAILPOINTS, publishSpread, publishThroughOutages, type CounterComparison } from './support/crashSafety.ts';

describe('worker crash safety on PostgreSQL (real processes, private server)', () => {
  const { server, db } = usePrivatePostgresDatabase();
  const counters = Array.from({ length: 20 }, () => randomUUID());

  function worker(spec: WorkerSpec): ChildService {
    return new ChildService({
      name: 'worker',
      command: process.execPath,
      args: [path.join(projectRoot(), 'bin', 'eob.js'), ...workerArgv(spec)],
      env: childEnvironment({ EOB_LOG: 'quiet', DATABASE_URL: server().url, MYSQL_URL: undefined, EOB_FAILPOINTS: undefined }),
      readiness: { kind: 'line', pattern: /^worker started/ },
      startTimeoutMs: 60_000,
      stopTimeoutMs: 10_000,
    });
  }

  async function compare(topic: string, mode: TopicMode): Promise<CounterComparison> {
    const { messages } = await db().engine.selectAllMessages(db().executor(), { topic, mode });
    return compareCounters(messages, await db().engine.selectAllCounters(db().executor()));
  }

  async function freshTopic(mode: TopicMode): Promise<string> {
    const topic = `crash_${randomUUID().slice(0, 8)}`;
    await db().engine.ensureSchema(db().executor(), { topic, mode, dedup: false });
    await db().executor().query('TRUNCATE "counter"');
    return topic;
  }

  /** Kills a worker at `failpoint` `times` times while publishing, then a clean worker drains the topic. */
  async function crashLoop(topic: string, spec: WorkerSpec, failpoint: FailpointName, times: number, nth: number): Promise<number> {
    const mode = spec.mode ?? 'offset';
    let crashes = 0;
    const publishing = publishSpread(new SqlPublisher(db().executor(), db().engine, mode), topic, counters, 3_000, 5);
    for (let i = 0; i < times; i += 1) {
      const w = worker({ ...spec, topic, failpoints: [`${failpoint}=${nth}`] });
      await w.start();
      await diesAtFailpoint(w, failpoint, 60_000);
      crashes += 1;
    }
    await publishing;
    const clean = worker({ ...spec, topic });
    await clean.start();
    try {
      await eventually(
        'the worker to consume everything',
        async () => {
          const c = await db().engine.selectConsumption(db().executor(), { mode, topic, consumerGroup: spec.consumerGroup ?? 'counter' });
          return c.drained && c.published === 3_000;
        },
        90_000,
      );
    } finally {
      await clean.stop();
    }
    return crashes;
  }

  for (const mode of ['offset', 'queue'] as const) {
    for (const point of EXACTLY_ONCE_FAILPOINTS) {
      it(`${mode} mode, SIGKILL at ${point} three times: every counter equals its messages`, async () => {
        const topic = await freshTopic(mode);
        const crashes = await crashLoop(topic, { mode, batchSize: 100 }, point, 3, 4);
        const result = await compare(topic, mode);
        assert.equal(crashes, 3);
        assert.equal(result.messages, 3_000);
        assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 });
      });
    }
  }

  it('offset mode, the private PostgreSQL SIGKILLed and restarted twice while messages flow: nothing lost or doubled', async () => {
    const topic = await freshTopic('offset');
    const w = worker({ topic, batchSize: 100 });
    await w.start();
    const publishing = publishThroughOutages(new SqlPublisher(db().executor(), db().engine, 'offset'), topic, counters);
    let published: number;
    try {
      for (let i = 0; i < 2; i += 1) {
        await new Promise((r) => setTimeout(r, 1_500));
        await server().kill('SIGKILL');
        await server().start();
      }
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      published = await publishing.stop();
    }
    await eventually('the worker to consume everything', async () => (await db().engine.selectConsumption(db().executor(), { mode: 'offset', topic, consumerGroup: 'counter' })).drained, 90_000);
    assert.equal(w.running, true, `the worker survived the outages: ${w.outputTail()}`);
    await w.stop();
    const result = await compare(topic, 'offset');
    assert.ok(published > 500, `messages flowed during the test (${published})`);
    assert.deepEqual({ lost: result.lost, duplicated: result.duplicated }, { lost: 0, duplicated: 0 });
  });

  it('control: after-commit, killed between its two commits, ends ABOVE the message count (duplicates)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'after-commit' }, 'consume-between-commits', 3, 2);
    const result = await compare(topic, 'offset');
    assert.equal(result.lost, 0);
    assert.ok(result.duplicated >= 3, `each crash re-applies a committed batch (duplicated ${result.duplicated})`);
  });

  it('control: before-commit, killed between its two commits, ends BELOW the message count (losses)', async () => {
    const topic = await freshTopic('offset');
    await crashLoop(topic, { batchSize: 100, ackMode: 'before-commit' }, 'consume-between-commits', 3, 2);
    const result = await compare(topic, 'offset');
    assert.equal(result.duplicated, 0);
    assert.ok(result.lost >= 3, `each crash loses an acked batch (lost ${result.lost})`);
  });
});
