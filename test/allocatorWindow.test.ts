// The InnoDB allocator window, made deterministic: gdb stops every 10th publisher insert for 300 ms right
// after its offset was allocated and before its transaction registered as a writer. A consumer whose gap
// proof is INNODB_TRX alone passes those holes and loses the messages; the `statements` proof loses none.
// Both read the same topic in the same run. A second case has the stalled inserts in explicit transactions
// (BEGIN; INSERT; SLEEP; COMMIT) while INNODB_TRX is polled every 40 ms, and consumers at READ COMMITTED and
// REPEATABLE READ: step 1 must wait the stalled INSERT out and step 2 must then see its row held. Skipped, with
// the reason, where gdb or ptrace is not available; in CI (CI=true, where gdb is installed) that is a failure.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { executorOf, parseMysqlUrl } from '../src/system/db/mariadb/pool.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, prepareOffsetTopic, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import type { GapProof } from '../src/system/pubsub/gapTracker.ts';
import { readEnvironment } from '../src/config.ts';
import type { IsolationLevel } from '../src/system/pubsub/types.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { selectAllMessages, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import type { Subscription } from '../src/system/pubsub/types.ts';
import { DEFAULT_ALLOCATOR_STALL_OPTIONS, startAllocatorStall, type AllocatorStall } from '../src/harness/faults/allocatorStall.ts';
import { eventually, newTopic } from './contract/pubsubContract.ts';
import { readSqlEffects, recordSqlEffects } from './support/contractTargets.ts';
import { useSubscriberDatabase } from './support/subscriberDatabase.ts';

const PUBLISHERS = 16;
const ROWS_EACH = 150;
const EXPLICIT_PUBLISHERS = 8;
const EXPLICIT_ROWS_EACH = 25;

describe('gap proofs under the allocator-window stall (gdb)', () => {
  const { db, pool, subscriptions } = useSubscriberDatabase(20);
  const logs: string[] = [];

  async function subscribe(topic: string, group: string, gapProof: GapProof, isolation: IsolationLevel = 'READ COMMITTED'): Promise<Subscription> {
    const sub = await subscribeOffset(pool(), {
      ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
      isolation,
      // The worker's defaults: batch 1000, poll 10 ms.
      batchSize: 1000,
      topic,
      consumerGroup: group,
      gapProof,
      handler: (messages, tx) => recordSqlEffects(tx, group, messages),
      log: (line) => logs.push(line),
    });
    subscriptions.push(sub);
    return sub;
  }

  /** A raw mysql2 connection, autocommit, one row per statement: a publisher that does not cooperate. */
  function rawConnection(): Promise<mysql.Connection> {
    const u = parseMysqlUrl(db().url);
    return mysql.createConnection({ host: u.host, port: u.port, user: u.user, password: u.password, database: u.database });
  }

  /**
   * Stalls every 10th INSERT of `publishers` for 300 ms right after its offset is allocated, checking the
   * evidence on every `evidenceEvery`th stall; undefined where gdb cannot attach, the test skipped (in CI failed).
   */
  async function stallPublishers(t: TestContext, publishers: readonly mysql.Connection[], evidenceEvery: number): Promise<AllocatorStall | undefined> {
    const ids = await Promise.all(publishers.map(async (c) => Number((await c.query<mysql.RowDataPacket[]>('SELECT CONNECTION_ID() AS id'))[0][0]!.id)));
    const started = await startAllocatorStall({
      ...DEFAULT_ALLOCATOR_STALL_OPTIONS,
      serverPid: db().pid!,
      mysqlUrl: db().url,
      // Every 10th, not 20th: with the control's snapshot freshness checked by token, every 20th lost 0-8 of the
      // raw publishers' 2,400 (0 in 1 of 5 runs), too few for that case's assertion to rely on.
      every: 10,
      stallMs: 300,
      evidenceEvery,
      onlyConnectionIds: ids,
    });
    if (started.kind === 'unavailable') {
      skipOrFailInCi(t, started.reason);
      return undefined;
    }
    return started.stall;
  }

  // Text statements (COMMAND Query) and prepared ones (COMMAND Execute, as the server's and the chaos load's
  // INSERTs are sent): the statements proof must see both.
  for (const send of ['query', 'execute'] as const) it(`16 raw publishers x 150 single-row INSERTs (${send}), 300 ms stalls: innodb-trx loses messages, statements loses none`, async (t) => {
    const topic = newTopic();
    await prepareOffsetTopic(pool(), topic, 'old');
    await prepareOffsetTopic(pool(), topic, 'new');
    const oldSub = await subscribe(topic, 'old', 'innodb-trx');
    const newSub = await subscribe(topic, 'new', 'statements');

    const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, rawConnection));
    try {
      // Every check reads INNODB_TRX and so delays the consumers' own reads of it: a sample is enough.
      const stall = await stallPublishers(t, publishers, 10);
      if (stall === undefined) return;
      const insert = `INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, ?, ?)`;
      try {
        await Promise.all(
          publishers.map(async (c) => {
            for (let i = 0; i < ROWS_EACH; i += 1) {
              const values = [randomUUID(), '{"counter_uuid":null}', '{}'];
              if (send === 'query') await c.query(insert, values);
              else await c.execute(insert, values);
            }
          }),
        );
      } finally {
        await stall.stop();
      }
      const counts = stall.counts();
      const stalledUuids = new Set(stall.stalls.map((s) => /'([0-9a-f-]{36})'/.exec(s.statement ?? '')?.[1]).filter((x) => x !== undefined));
      process.stdout.write(`# stall: ${JSON.stringify(counts)}\n`);
      assert.ok(counts.stalls >= 200, `the stall landed on about every 10th of 2,400 inserts (${counts.stalls})`);
      assert.ok(counts.stallsInWindow > 0, `stalls proven in the window: ${counts.stallsInWindow} of ${counts.stalls}`);
      // Some stalled inserts already hold a real trx id at that point (seen: 41-43 of 120 here); those are
      // visible to INNODB_TRX and are not what this test is about, the others are.

      const max = await selectMaxOffset(executorOf(pool()), topic);
      for (const group of ['old', 'new']) {
        await eventually(`group ${group} to ack the last offset`, async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max, 60_000);
      }
      const messages = await selectAllMessages(executorOf(pool()), topic);
      assert.equal(messages.length, PUBLISHERS * ROWS_EACH);
      const outcome = async (group: string) => {
        const effects = await readSqlEffects(pool(), group);
        const lost = messages.filter((m) => !effects.has(m.uuid));
        return { lost, duplicated: [...effects].filter(([, n]) => n > 1).length };
      };
      const old = await outcome('old');
      const now = await outcome('new');
      const oldLostStalled = old.lost.filter((m) => stalledUuids.has(m.uuid)).length;
      const report =
        `innodb-trx lost ${old.lost.length} of ${messages.length} (offsets ${old.lost.map((m) => m.offset).join(', ')}; ${oldLostStalled} of them stalled inserts), ` +
        `statements lost ${now.lost.length}; passed holes: old ${JSON.stringify(pick(oldSub))}, new ${JSON.stringify(pick(newSub))}`;
      process.stdout.write(`# ${report}\n`);
      assert.ok(old.lost.length > 0, `the INNODB_TRX-only rule must be seen to lose messages under the stall: ${report}`);
      // A prepared statement's PROCESSLIST.INFO may show its placeholders, not the values: then no stalled uuid is known.
      if (stalledUuids.size > 0) assert.ok(oldLostStalled > 0, `what the old rule lost includes stalled inserts: ${report}`);
      assert.deepEqual(now.lost.map((m) => m.offset), [], `the statements proof loses nothing: ${report}`);
      assert.equal(now.duplicated, 0);
      assert.equal(old.duplicated, 0);
      assert.equal(newSub.stats.gapsPassedByTimeout, 0, 'no hole of the new rule was passed by the bound');
    } finally {
      await Promise.all(publishers.map((c) => c.end().catch(() => undefined)));
    }
  });

  it('explicit transactions (BEGIN; INSERT stalled after allocation; SLEEP; COMMIT), INNODB_TRX polled every 40 ms: nothing lost at READ COMMITTED or REPEATABLE READ', async (t) => {
    const topic = newTopic();
    await prepareOffsetTopic(pool(), topic, 'rc');
    await prepareOffsetTopic(pool(), topic, 'rr');
    const rc = await subscribe(topic, 'rc', 'statements', 'READ COMMITTED');
    const rr = await subscribe(topic, 'rr', 'statements', 'REPEATABLE READ');
    const publishers = await Promise.all(Array.from({ length: EXPLICIT_PUBLISHERS }, rawConnection));
    const poller = await rawConnection();
    let polling = true;
    const polls = (async () => {
      for (let i = 0; i < 5_000 && polling; i += 1) {
        await poller.query('SELECT `trx_id`, `trx_mysql_thread_id`, `trx_query` FROM information_schema.INNODB_TRX');
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();
    try {
      // The poller keeps INNODB_TRX from ever being fresh: the evidence could not be read anyway.
      const stall = await stallPublishers(t, publishers, 0);
      if (stall === undefined) return;
      const insert = `INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, ?, ?)`;
      try {
        await Promise.all(
          publishers.map(async (c, p) => {
            for (let i = 0; i < EXPLICIT_ROWS_EACH; i += 1) {
              await c.query('START TRANSACTION');
              await c.query(insert, [randomUUID(), '{"counter_uuid":null}', '{}']);
              // Open for 50-450 ms after the row is written, while other publishers' higher offsets commit.
              await c.query('DO SLEEP(?)', [0.05 + ((p * 7 + i * 13) % 9) * 0.05]);
              await c.query('COMMIT');
            }
          }),
        );
      } finally {
        await stall.stop();
      }
      const counts = stall.counts();
      process.stdout.write(`# explicit-transaction stall: ${JSON.stringify(counts)}\n`);
      assert.ok(counts.stalls >= 10, `the stall landed on about every 10th of ${EXPLICIT_PUBLISHERS * EXPLICIT_ROWS_EACH} inserts (${counts.stalls})`);

      const max = await selectMaxOffset(executorOf(pool()), topic);
      for (const group of ['rc', 'rr']) {
        await eventually(`group ${group} to ack the last offset`, async () => (await selectAckedOffset(executorOf(pool()), topic, group)) === max, 60_000);
      }
      const messages = await selectAllMessages(executorOf(pool()), topic);
      assert.equal(messages.length, EXPLICIT_PUBLISHERS * EXPLICIT_ROWS_EACH);
      for (const [group, sub] of [['rc', rc], ['rr', rr]] as const) {
        const effects = await readSqlEffects(pool(), group);
        const lost = messages.filter((m) => !effects.has(m.uuid)).map((m) => m.offset);
        const report = `${group}: lost ${lost.length} (${lost.join(', ')}); passed holes ${JSON.stringify(pick(sub))}`;
        process.stdout.write(`# ${report}\n`);
        assert.deepEqual(lost, [], report);
        assert.equal([...effects].filter(([, n]) => n > 1).length, 0, `${group}: no duplicates`);
        assert.equal(sub.stats.gapsPassed, 0, `${group}: no insert was rolled back, so no hole is permanent: ${report}`);
      }
    } finally {
      polling = false;
      await polls;
      await Promise.all([...publishers, poller].map((c) => c.end().catch(() => undefined)));
    }
  });
});

function pick(s: Subscription) {
  const { gapsPassed, gapsPassedByTimeout, gapsPassedByStatements, gapsPassedByInnodbTrx } = s.stats;
  return { gapsPassed, gapsPassedByTimeout, gapsPassedByStatements, gapsPassedByInnodbTrx };
}

/** Where gdb cannot attach the stall is skipped; in CI, which installs gdb, a skip would hide a broken test. */
function skipOrFailInCi(t: { skip: (message: string) => void }, reason: string): void {
  if (readEnvironment().ci) assert.fail(`allocator stall unavailable in CI (CI=true), where gdb is installed: ${reason}`);
  t.skip(`allocator stall unavailable: ${reason}`);
}
