// Poison messages on PostgreSQL: a message the handler keeps rejecting is moved to eob_poison_<topic> in the
// transaction that acks its batch, after the set number of failed deliveries, in both modes; the good messages
// around it are counted once, and the group moves on; `eob poison list` shows it from DATABASE_URL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { usePrivatePostgresDatabase } from './support/privatePostgresDatabase.ts';
import { SqlPublisher } from '../src/system/pubsub/sqlPublisher.ts';
import { DEFAULT_WORKER_OPTIONS, startWorker } from '../src/system/worker.ts';
import { countPgPoisoned } from '../src/system/sql/postgres/poisonTable.ts';
import { eventually } from './contract/pubsubContract.ts';
import { childEnvironment } from '../src/config.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('poison messages on PostgreSQL', () => {
  const { server, db } = usePrivatePostgresDatabase();

  for (const mode of ['offset', 'queue'] as const) {
    test(`${mode} mode: one bad payload among 40 is moved aside after 2 failed deliveries; the 40 are counted once`, async () => {
      const topic = `poison_${randomUUID().slice(0, 8)}`;
      const counter = randomUUID();
      await db().engine.ensureSchema(db().executor(), { topic, mode, dedup: false });
      await db().executor().query('TRUNCATE "counter"');
      const publisher = new SqlPublisher(db().executor(), db().engine, mode);
      const good = (n: number) => Array.from({ length: n }, () => ({ uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} }));
      await publisher.publish(topic, good(20));
      await publisher.publish(topic, [{ uuid: randomUUID(), payload: { counter_uuid: 'not-a-uuid' }, metadata: {} }]);
      await publisher.publish(topic, good(20));
      const lines: string[] = [];
      const worker = await startWorker({ ...DEFAULT_WORKER_OPTIONS, databaseUrl: server().url, topic, mode, batchSize: 10, poisonAfterFailures: 2, pollIntervalMs: 5, log: (l) => lines.push(l) });
      try {
        await eventually('the good messages counted and the bad one poisoned', async () =>
          (await db().engine.selectCounterValue(db().executor(), counter)) === 40 && (await countPgPoisoned(db().executor(), topic)) === 1,
        );
        const c = await db().engine.selectConsumption(db().executor(), { mode, topic, consumerGroup: 'counter' });
        assert.equal(c.drained, true, 'the group moved past the poison');
        assert.equal(worker.subscription.stats.poisoned, 1);
        assert.ok(lines.some((l) => l.includes('moved to "eob_poison_')), lines.join('\n'));
      } finally {
        await worker.close();
      }
      assert.equal(await db().engine.selectCounterValue(db().executor(), counter), 40);
      const listed = await eob(['poison', 'list', '--topic', topic, '--json']);
      assert.equal(listed.code, 0, listed.output);
      const rows = listed.output.trim().split('\n').map((l) => JSON.parse(l) as { mode: string; payload: string; error: string; failedDeliveries: number });
      assert.equal(rows.length, 1, listed.output);
      assert.equal(rows[0]?.mode, mode);
      assert.match(rows[0]?.payload ?? '', /not-a-uuid/);
      assert.match(rows[0]?.error ?? '', /counter_uuid is not a UUID/);
      assert.equal(rows[0]?.failedDeliveries, 2);
    });
  }

  test('eob poison list on a topic nothing was poisoned on says the table does not exist', async () => {
    const none = await eob(['poison', 'list', '--topic', 'never_consumed']);
    assert.equal(none.code, 0, none.output);
    assert.match(none.output, /no poisoned messages: "eob_poison_never_consumed" does not exist/);
  });

  function eob(args: string[]): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnvironment({ MYSQL_URL: undefined, DATABASE_URL: server().url }),
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += String(d)));
      child.stderr.on('data', (d: Buffer) => (output += String(d)));
      child.on('exit', (code) => resolve({ code, output }));
    });
  }
});
