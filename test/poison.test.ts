// Poison messages against a private MariaDB: a message the counter handler rejects (no counter_uuid, a payload
// that is not a JSON object or not JSON at all, a counter_uuid that is not a UUID) ends in eob_poison_<topic>
// exactly once with its error, the good messages of its batch are counted exactly once, and the group (offset
// mode) or the queue moves on. Controls: with poisonAfterFailures 0 (the loop as it was, retrying forever) the
// group stays blocked; database errors in the handler never poison anything. Crash cases run the real worker.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { createPool, type Pool } from '../src/system/db/mariadb/pool.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { counterHandler, type HandlerName } from '../src/system/counterHandler.ts';
import { mariadbEngine } from '../src/system/sql/mariadb/engine.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, subscribeQueue } from '../src/system/pubsub/queueSubscriber.ts';
import type { BatchHandler, Subscription } from '../src/system/pubsub/types.ts';
import { messagesTable, queueTable } from '../src/system/sql/mariadb/identifiers.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { countQueue } from '../src/system/sql/mariadb/queueTable.ts';
import { selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import { selectAllCounters } from '../src/system/sql/mariadb/counterTable.ts';
import { selectPoisoned } from '../src/system/sql/mariadb/poisonTable.ts';
import type { PoisonRow } from '../src/system/types.ts';
import { eventually } from './contract/pubsubContract.ts';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TopicMode } from '../src/system/pubsub/types.ts';
import { childEnvironment } from '../src/config.ts';

const EOB = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'eob.js');

/** Runs `eob ...` to its end; never rejects, the exit code is part of the answer. */
function eob(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [EOB, ...args], { env: childEnvironment({ MYSQL_URL: '' }), timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

type Mode = TopicMode;

interface PoisonKind {
  name: string;
  /** The payload column's text, exactly as stored. */
  payload: string;
  error: RegExp;
  /** The JSON check of the payload column must be dropped first (MariaDB and MySQL refuse invalid JSON). */
  needsTextPayload?: boolean;
}

const KINDS: PoisonKind[] = [
  { name: 'no counter_uuid', payload: '{"other": "x"}', error: /payload has no counter_uuid/ },
  { name: 'a JSON value that is not an object', payload: '"just a string"', error: /payload is not a JSON object \(got a string: "just a string"\)/ },
  { name: 'a JSON array', payload: '[1, 2, 3]', error: /payload is not a JSON object \(got an array/ },
  { name: 'invalid JSON', payload: '{"counter_uuid": ', error: /payload is not a JSON object \(got a string: "\{\\"counter_uuid\\": "\)/, needsTextPayload: true },
  { name: 'a counter_uuid that is not a UUID', payload: '{"counter_uuid": "not-a-uuid"}', error: /counter_uuid is not a UUID \(got a string: "not-a-uuid"\)/ },
];

describe('poison messages (private MariaDB)', () => {
  let sut: SystemUnderTest;
  let pool: Pool;
  const counters = Array.from({ length: 3 }, () => randomUUID());

  before(async () => {
    sut = await SystemUnderTest.start({ handleSignals: false, quietChildren: false });
    // As the worker's pool: several statements per round trip, so the savepoint travels with the read.
    pool = createPool({ url: sut.databaseUrl, connectionLimit: 4, connectTimeoutMs: 5_000, multipleStatements: true });
  });
  after(async () => {
    await pool?.end();
    await sut?.close();
  });

  async function freshTopic(mode: Mode, textPayload = false): Promise<string> {
    const topic = `poison_${randomUUID().slice(0, 8)}`;
    await ensureSchema(sut.db, { topic, topicSchema: mode, dedup: false });
    const table = mode === 'offset' ? messagesTable(topic) : queueTable(topic);
    // A table a user created with a plain text payload column: the only way invalid JSON reaches a consumer.
    if (textPayload) await sut.db.query(`ALTER TABLE ${table} MODIFY \`payload\` LONGTEXT DEFAULT NULL`);
    await sut.db.query('DELETE FROM `counter`');
    return topic;
  }

  /** Inserts rows with exactly these payload texts, in order, in one statement; returns their offsets. */
  async function insertPayloads(topic: string, mode: Mode, payloads: readonly string[]): Promise<number[]> {
    const table = mode === 'offset' ? messagesTable(topic) : queueTable(topic);
    const result = await sut.db.query<{ insertId: number }>(
      `INSERT INTO ${table} (\`uuid\`, \`payload\`, \`metadata\`) VALUES ${payloads.map(() => '(?, ?, ?)').join(', ')}`,
      payloads.flatMap((p) => [randomUUID(), p, '{}']),
    );
    return payloads.map((_, i) => Number(result.insertId) + i);
  }

  const good = (i: number) => JSON.stringify({ counter_uuid: counters[i % counters.length] });

  /** Counts per counter of the good payloads, for comparison with the counter table. */
  function expectedCounts(payloads: readonly string[]): Map<string, number> {
    const expected = new Map<string, number>();
    for (const p of payloads) {
      const id = counters.find((c) => p === JSON.stringify({ counter_uuid: c }));
      if (id !== undefined) expected.set(id, (expected.get(id) ?? 0) + 1);
    }
    return expected;
  }

  interface Run {
    subscription: Subscription;
    logs: string[];
  }

  async function subscribe(topic: string, mode: Mode, o: { poisonAfterFailures: number; batchSize?: number; profile?: HandlerName; handler?: BatchHandler; concurrency?: number }): Promise<Run> {
    const logs: string[] = [];
    const common = {
      topic,
      batchSize: o.batchSize ?? 100,
      resendIntervalMs: 20,
      pollIntervalMs: 5,
      poisonAfterFailures: o.poisonAfterFailures,
      handler: o.handler ?? counterHandler(o.profile ?? 'batched', mariadbEngine),
      log: (line: string) => logs.push(line),
    };
    const subscription =
      mode === 'offset'
        ? await subscribeOffset(pool, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, ...common, consumerGroup: 'counter' })
        : await subscribeQueue(pool, { ...DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, ...common, concurrency: o.concurrency ?? 1 });
    return { subscription, logs };
  }

  async function drained(topic: string, mode: Mode): Promise<void> {
    await eventually(
      'the group to ack every message',
      async () => {
        if (mode === 'queue') {
          const q = await countQueue(sut.db, topic);
          return q.acked === q.total;
        }
        return (await selectAckedOffset(sut.db, topic, 'counter')) === (await selectMaxOffset(sut.db, topic));
      },
      30_000,
    );
  }

  async function poisonRows(topic: string): Promise<PoisonRow[]> {
    return selectPoisoned(sut.db, topic, { limit: 1000 });
  }

  for (const mode of ['offset', 'queue'] as const) {
    for (const kind of KINDS) {
      it(`${mode} mode, ${kind.name}: poisoned once with its error, the rest of its batch counted once, the ${mode === 'offset' ? 'group' : 'queue'} moves on`, async () => {
        const topic = await freshTopic(mode, kind.needsTextPayload === true);
        // One batch: 10 good, the poison, 10 good.
        const payloads = [...Array.from({ length: 10 }, (_, i) => good(i)), kind.payload, ...Array.from({ length: 10 }, (_, i) => good(i + 10))];
        const offsets = await insertPayloads(topic, mode, payloads);
        const poisonOffset = offsets[10]!;
        const run = await subscribe(topic, mode, { poisonAfterFailures: 3 });
        await drained(topic, mode);
        // Published after the poison was moved aside: the group goes on consuming.
        const later = [good(0), good(1)];
        await insertPayloads(topic, mode, later);
        await drained(topic, mode);
        await run.subscription.close();

        assert.deepEqual(await selectAllCounters(sut.db), expectedCounts([...payloads, ...later]));
        const rows = await poisonRows(topic);
        assert.equal(rows.length, 1, JSON.stringify(rows));
        const row = rows[0]!;
        assert.deepEqual(
          { mode: row.mode, group: row.consumerGroup, offset: row.offset, payload: row.payload, failedDeliveries: row.failedDeliveries, timesPoisoned: row.timesPoisoned },
          { mode, group: mode === 'offset' ? 'counter' : '', offset: poisonOffset, payload: kind.payload, failedDeliveries: 3, timesPoisoned: 1 },
        );
        assert.match(row.error, kind.error);
        assert.equal(row.metadata, '{}');
        assert.ok(row.createdAt instanceof Date && row.poisonedAt.getTime() >= row.createdAt.getTime());
        assert.equal(run.subscription.stats.poisoned, 1);
        const moved = run.logs.filter((l) => l.includes('moved to'));
        assert.equal(moved.length, 1, `logged once: ${run.logs.join('\n')}`);
        assert.match(moved[0]!, new RegExp(`offset ${poisonOffset} .* moved to \`eob_poison_${topic}\` after 3 failed deliveries`));
        // Each failed delivery is one line (not one per retry of a loop that never ends): 2 before the third.
        assert.equal(run.logs.filter((l) => l.includes('handler failed')).length, 2, run.logs.join('\n'));
      });
    }

    it(`${mode} mode, control: with poisonAfterFailures 0 (retry forever, the old loop) the poison blocks its whole batch`, async () => {
      const topic = await freshTopic(mode);
      await insertPayloads(topic, mode, [good(0), '{"other": 1}', good(1)]);
      const run = await subscribe(topic, mode, { poisonAfterFailures: 0 });
      await eventually('a few failed deliveries', async () => run.subscription.stats.rollbacks >= 5);
      await run.subscription.close();
      if (mode === 'offset') assert.equal(await selectAckedOffset(sut.db, topic, 'counter'), 0, 'the group did not move');
      else assert.equal((await countQueue(sut.db, topic)).acked, 0, 'no row was acked');
      assert.deepEqual(await selectAllCounters(sut.db), new Map());
      assert.deepEqual(await poisonRows(topic), []);
    });

    it(`${mode} mode, several poison messages over several batches, watermill handler (effects written per message): each poisoned once, good ones counted once`, async () => {
      const topic = await freshTopic(mode);
      const payloads = Array.from({ length: 40 }, (_, i) => ([3, 4, 17, 39].includes(i) ? `{"n": ${i}}` : good(i)));
      await insertPayloads(topic, mode, payloads);
      const run = await subscribe(topic, mode, { poisonAfterFailures: 2, batchSize: 8, profile: 'watermill' });
      await drained(topic, mode);
      await run.subscription.close();
      assert.deepEqual(await selectAllCounters(sut.db), expectedCounts(payloads));
      const rows = await poisonRows(topic);
      assert.deepEqual(rows.map((r) => r.payload).sort(), ['{"n": 17}', '{"n": 39}', '{"n": 3}', '{"n": 4}']);
      assert.ok(rows.every((r) => r.timesPoisoned === 1 && r.failedDeliveries === 2));
      assert.equal(run.subscription.stats.poisoned, 4);
    });
  }

  it('queue mode, 3 consumers sharing the failure counts: poisoned once, good ones counted once', async () => {
    const topic = await freshTopic('queue');
    const payloads = Array.from({ length: 300 }, (_, i) => (i % 50 === 7 ? '{"bad": true}' : good(i)));
    await insertPayloads(topic, 'queue', payloads);
    const run = await subscribe(topic, 'queue', { poisonAfterFailures: 3, batchSize: 20, concurrency: 3 });
    await drained(topic, 'queue');
    await run.subscription.close();
    assert.deepEqual(await selectAllCounters(sut.db), expectedCounts(payloads));
    const rows = await poisonRows(topic);
    assert.equal(rows.length, 6);
    assert.ok(rows.every((r) => r.timesPoisoned === 1), JSON.stringify(rows));
    assert.equal(run.subscription.stats.poisoned, 6);
  });

  it('database errors in the handler never poison a message: a deadlock and a missing table are retried, then everything is counted', async () => {
    const topic = await freshTopic('offset');
    const payloads = Array.from({ length: 10 }, (_, i) => good(i));
    await insertPayloads(topic, 'offset', payloads);
    const real = counterHandler('batched', mariadbEngine);
    let calls = 0;
    const handler: BatchHandler = async (messages, tx) => {
      calls += 1;
      if (calls <= 3) throw Object.assign(new Error('Deadlock found when trying to get lock'), { errno: 1213, code: 'ER_LOCK_DEADLOCK', sqlState: '40001' });
      if (calls <= 6) throw Object.assign(new Error("Table 'eob.counter' doesn't exist"), { errno: 1146, code: 'ER_NO_SUCH_TABLE', sqlState: '42S02' });
      await real(messages, tx);
    };
    const run = await subscribe(topic, 'offset', { poisonAfterFailures: 1, handler });
    await drained(topic, 'offset');
    await run.subscription.close();
    assert.deepEqual(await selectAllCounters(sut.db), expectedCounts(payloads));
    assert.deepEqual(await poisonRows(topic), []);
    assert.equal(run.subscription.stats.poisoned, 0);
    assert.ok(run.logs.some((l) => l.includes('not counted against any message')), run.logs.join('\n'));
  });

  it('eob poison list: shows each poisoned message with its error; filters; clear errors for a bad flag or an unreachable database', async () => {
    const topic = await freshTopic('offset');
    const offsets = await insertPayloads(topic, 'offset', [good(0), '{"counter_uuid": "zz"}', good(1)]);
    const run = await subscribe(topic, 'offset', { poisonAfterFailures: 1 });
    await drained(topic, 'offset');
    await run.subscription.close();

    const listed = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--topic', topic]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`1 poisoned message in \`eob_poison_${topic}\``));
    assert.match(listed.stdout, new RegExp(`offset ${offsets[1]}  group counter \\(offset mode\\)`));
    assert.match(listed.stdout, /after 1 failed deliveries/);
    assert.match(listed.stdout, /error: +message \d+ \(.*\): counter_uuid is not a UUID \(got a string: "zz"\)/);
    assert.match(listed.stdout, /payload: +\{"counter_uuid": "zz"\}/);

    const json = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--topic', topic, '--json', '--mode', 'offset', '--consumer-group', 'counter']);
    assert.equal(json.code, 0, json.stderr);
    const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as PoisonRow);
    assert.deepEqual(rows.map((r) => [r.offset, r.payload]), [[offsets[1], '{"counter_uuid": "zz"}']]);

    const none = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--topic', topic, '--mode', 'queue']);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /no poisoned messages in .* that match the filter/);
    const noTable = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--topic', 'never_consumed']);
    assert.match(noTable.stdout, /no poisoned messages: `eob_poison_never_consumed` does not exist/);

    const badLimit = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--limit', '0']);
    assert.equal(badLimit.code, 2);
    assert.match(badLimit.stderr, /--limit must be a whole number from 1 to 100000 \(got 0\)/);
    const badTopic = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--topic', 'no-dashes']);
    assert.equal(badTopic.code, 2);
    assert.match(badTopic.stderr, /--topic must be 1-48 letters, digits or _/);
    const unknownFlag = await eob(['poison', 'list', '--mysql-url', sut.databaseUrl, '--colour']);
    assert.equal(unknownFlag.code, 2);
    assert.match(unknownFlag.stderr, /Unknown argument: colour/);
    const unreachable = await eob(['poison', 'list', '--mysql-url', 'mysql://root:secret@127.0.0.1:1/eob']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the database at mysql:\/\/root:\*\*\*@127\.0\.0\.1:1\/eob: ECONNREFUSED.*eob db start/);
    assert.doesNotMatch(unreachable.stderr, /secret/);

    const badWorkerFlag = await eob(['worker', '--mysql-url', sut.databaseUrl, '--poison-after-failures', '-1']);
    assert.equal(badWorkerFlag.code, 2);
    assert.match(badWorkerFlag.stderr, /worker: poisonAfterFailures must be a whole number from 0 to 1000000 \(got -1\)/);
  });

  describe('crash safety (the real worker process, SIGKILL)', () => {
    for (const mode of ['offset', 'queue'] as const) {
      it(`${mode} mode: killed between failed deliveries, and again just before the commit that poisons: good messages counted once, the poison moved once`, async () => {
        const topic = await freshTopic(mode);
        const payloads = [...Array.from({ length: 30 }, (_, i) => good(i)), '{"counter_uuid": 7}', ...Array.from({ length: 30 }, (_, i) => good(i + 30))];
        await insertPayloads(topic, mode, payloads);
        const flags = { mode, topic, batchSize: 100, poisonAfterFailures: 4 };

        // 1. Killed after its second failed delivery (the counts in memory are lost with it).
        const first = await sut.startWorker(flags);
        await eventually('two failed deliveries', async () => (first.outputTail(200).match(/handler failed/g) ?? []).length >= 2);
        await first.kill('SIGKILL');
        // 2. Killed just before the COMMIT that would ack the batch and poison the message (the first commit of
        //    this topic, since every earlier delivery rolled back).
        const second = await sut.startWorker({ ...flags, failpoints: ['consume-before-commit=1'] });
        const status = await second.exited();
        assert.equal(status.signal, 'SIGKILL', second.outputTail());
        assert.deepEqual(await poisonRows(topic), [], 'nothing committed by the killed attempt');
        assert.deepEqual(await selectAllCounters(sut.db), new Map(), 'no effect committed by the killed attempt');
        // 3. A clean worker: the count starts again, so the message has 4 more failed deliveries, then moves.
        const third = await sut.startWorker(flags);
        await drained(topic, mode);
        await sut.stopService(third);

        assert.deepEqual(await selectAllCounters(sut.db), expectedCounts(payloads));
        const rows = await poisonRows(topic);
        assert.equal(rows.length, 1);
        assert.deepEqual({ failed: rows[0]!.failedDeliveries, times: rows[0]!.timesPoisoned }, { failed: 4, times: 1 });
        assert.match(rows[0]!.error, /counter_uuid is not a UUID \(got a number: 7\)/);
        assert.match(third.outputTail(200), /moved to `eob_poison_.*` after 4 failed deliveries/);
        assert.match(third.outputTail(200), /"poisoned":1/, 'the stop line carries the stats');
      });
    }
  });
});
