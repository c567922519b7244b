// The offset consumer on a MariaDB replica, and on the replica once it is promoted.
//
// A replica applies the primary's row events with the offsets the primary allocated, one transaction at a time in
// the primary's COMMIT order, which is not offset order. So a hole on a replica may be filled later by a
// transaction that is still open on the primary, and nothing on the replica shows it: its PROCESSLIST has no
// statement holding the offset (the allocator runs on the primary), and the range's locking read finds no row and
// no lock. Two consumer groups read the replica at the same time: `statements` (the default, which refuses to
// prove a hole while a replication applier runs) and `statements-node-local` (the same proof without that check:
// the control). The primary holds a transaction open with offset 1 while offset 2 commits and reaches the replica,
// then commits: the control passes the hole and loses offset 1; the default waits and counts both.
//
// Then the replica is promoted (the applier has applied everything it received, and stopped): a hole there is
// proven and passed like on any primary, and a row published after the promotion is consumed.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { openDatabase } from '../src/system/db/openDatabase.ts';
import type { Database } from '../src/system/db/database.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, prepareOffsetTopic, subscribeOffset } from '../src/system/pubsub/offsetSubscriber.ts';
import type { Subscription } from '../src/system/pubsub/types.ts';
import { REPLICA_REFUSAL } from '../src/system/pubsub/gapTracker.ts';
import { eventually, newTopic } from './contract/pubsubContract.ts';
import { createEffectsTable, readSqlEffects, recordSqlEffects, testPool } from './support/contractTargets.ts';
import { startTestPair, type MariadbReplicaPair } from './support/replicaPair.ts';
import { TcpProxy } from '../src/harness/faults/tcpProxy.ts';
import { throughAddress } from '../src/harness/systemUnderTest.ts';
import type { Pool } from '../src/system/db/mariadb/pool.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A pool on the pair's current primary, one per primary, closed with the pair. */
const primaryPools = new Map<string, Pool>();
function primaryPool2(p: MariadbReplicaPair): Pool {
  const url = p.primary!.url;
  let pool = primaryPools.get(url);
  if (pool === undefined) {
    pool = testPool(url, 2);
    primaryPools.set(url, pool);
  }
  return pool;
}

describe('the offset consumer on a MariaDB replica', () => {
  let pair: MariadbReplicaPair | undefined;
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const pool of primaryPools.values()) await pool.end().catch(() => undefined);
    await pair?.remove();
  });

  async function insert(conn: mysql.Connection, topic: string, uuid: string): Promise<number> {
    const [result] = await conn.query(`INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`, [uuid]);
    return Number((result as { insertId: number }).insertId);
  }

  it('refuses to prove a hole while the applier runs (the control passes it and loses the row); proves again once promoted', async () => {
    pair = await startTestPair({ level: 'async' });
    const topic = newTopic();
    const groups = { safe: `${topic}_safe`, control: `${topic}_ctl` };
    // Every table is made on the primary and reaches the replica by replication (made on the replica, the
    // primary's CREATE would stop its applier).
    const primaryDb: Database = openDatabase({ url: pair.primary!.url, connectionLimit: 2, connectTimeoutMs: 5_000, role: 'test' });
    closers.push(() => primaryDb.end());
    for (const g of Object.values(groups)) await prepareOffsetTopic(primaryDb, topic, g);
    const primaryPool = testPool(pair.primary!.url, 2);
    closers.push(() => primaryPool.end());
    await createEffectsTable(primaryPool);
    const replicaUrl = pair.replica!.url;
    const replicaPool = testPool(replicaUrl, 2);
    closers.push(() => replicaPool.end());
    await eventually('the tables on the replica', async () => {
      const [rows] = await replicaPool.query(`SELECT COUNT(*) AS n FROM \`watermill_offsets_${topic}\``);
      return Number((rows as { n: number }[])[0]?.n) === 2;
    });
    await eventually('the effects table on the replica', async () => (await replicaPool.query("SHOW TABLES LIKE 'contract_effects'").then(([r]) => (r as unknown[]).length)) === 1);

    // The consumers ack on the replica: its own writes, binary-logged under gtid_strict_mode, would take GTIDs of
    // the primary's domain and stop the applier at the primary's next event. A domain of its own keeps them apart.
    await replicaPool.query('SET GLOBAL gtid_domain_id = 2');
    // The consumers read the replica (through a Database opened from its URL, as a worker pointed there would).
    const replicaDb: Database = openDatabase({ url: replicaUrl, connectionLimit: 4, connectTimeoutMs: 5_000, multipleStatements: true, role: 'test' });
    closers.push(() => replicaDb.end());
    const logs: string[] = [];
    const subs: Subscription[] = [];
    for (const [kind, gapProof] of [['safe', 'statements'], ['control', 'statements-node-local']] as const) {
      subs.push(
        await subscribeOffset(replicaDb, {
          ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
          topic,
          consumerGroup: groups[kind],
          gapProof,
          handler: (messages, tx) => recordSqlEffects(tx, groups[kind], messages),
          log: (line) => logs.push(`${kind}: ${line}`),
        }),
      );
    }
    closers.push(async () => {
      for (const s of subs) await s.close();
    });

    const held = await mysql.createConnection({ uri: pair.primary!.url });
    const other = await mysql.createConnection({ uri: pair.primary!.url });
    closers.push(async () => {
      held.destroy();
      other.destroy();
    });
    const first = randomUUID();
    const second = randomUUID();
    await held.query('BEGIN');
    const firstOffset = await insert(held, topic, first);
    const secondOffset = await insert(other, topic, second);
    assert.ok(firstOffset < secondOffset, 'the held transaction holds the lower offset');
    // The control steps over the hole as soon as offset 2 reaches the replica.
    await eventually('the control consuming the higher offset over the hole', async () => (await readSqlEffects(replicaPool, groups.control)).has(second));
    assert.equal((await readSqlEffects(replicaPool, groups.safe)).size, 0, 'the default waits at the hole');
    await held.query('COMMIT');
    await eventually('the default consuming both', async () => {
      const e = await readSqlEffects(replicaPool, groups.safe);
      return e.has(first) && e.has(second);
    });
    // The held row is on the replica now; give the control every chance to have read it.
    await eventually('the held row on the replica', async () => {
      const [rows] = await replicaPool.query(`SELECT COUNT(*) AS n FROM \`watermill_${topic}\` WHERE \`offset\` = ?`, [firstOffset]);
      return Number((rows as { n: number }[])[0]?.n) === 1;
    });
    await sleep(500);
    const control = await readSqlEffects(replicaPool, groups.control);
    assert.deepEqual([...control.keys()], [second], 'the control lost the row the held transaction committed (it acked past its offset)');
    assert.ok(logs.some((l) => l.startsWith('safe:') && l.includes(REPLICA_REFUSAL)), 'the default said why it waited');

    // Promotion: the applier is gone, so a hole is proven again (here a rolled-back insert's offset).
    await pair.killPrimary();
    await pair.promoteReplica();
    const onPromoted = await mysql.createConnection({ uri: replicaUrl });
    closers.push(async () => onPromoted.destroy());
    await onPromoted.query('BEGIN');
    await insert(onPromoted, topic, randomUUID());
    await onPromoted.query('ROLLBACK');
    const later = randomUUID();
    await insert(onPromoted, topic, later);
    await eventually('the default passing the rolled-back hole on the promoted node', async () => (await readSqlEffects(replicaPool, groups.safe)).has(later));
  });

  it('after an asynchronous failover, a gap decision made on the old primary is forgotten (the control keeps it and loses a row)', async () => {
    const p = await startTestPair({ level: 'async' });
    closers.push(() => p.remove());
    const topic = newTopic();
    const groups = { safe: `${topic}_safe`, control: `${topic}_ctl` };
    const primaryDb: Database = openDatabase({ url: p.primary!.url, connectionLimit: 2, connectTimeoutMs: 5_000, role: 'test' });
    closers.push(() => primaryDb.end());
    for (const g of Object.values(groups)) await prepareOffsetTopic(primaryDb, topic, g);
    const primaryPool = testPool(p.primary!.url, 2);
    closers.push(() => primaryPool.end());
    await createEffectsTable(primaryPool);
    const replicaPool = testPool(p.replica!.url, 2);
    closers.push(() => replicaPool.end());
    await eventually('the tables on the replica', async () => (await replicaPool.query("SHOW TABLES LIKE 'contract_effects'").then(([r]) => (r as unknown[]).length)) === 1);
    // The consumers reach the database through a virtual address, as the worker does.
    const vip = await TcpProxy.start({ targetPort: p.primary!.port });
    closers.push(() => vip.close());
    const viaVip = throughAddress(p.primary!.url, vip.port);
    const vipDb: Database = openDatabase({ url: viaVip, connectionLimit: 4, connectTimeoutMs: 5_000, multipleStatements: true, role: 'test' });
    closers.push(() => vipDb.end());
    const logs: string[] = [];
    const subs: Subscription[] = [];
    for (const [kind, keep] of [['safe', false], ['control', true]] as const) {
      subs.push(
        await subscribeOffset(vipDb, {
          ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
          topic,
          consumerGroup: groups[kind],
          keepGapDecisionsAcrossSessions: keep,
          handler: (messages, tx) => recordSqlEffects(tx, groups[kind], messages),
          log: (line) => logs.push(`${kind}: ${line}`),
        }),
      );
    }
    closers.push(async () => {
      for (const s of subs) await s.close();
    });

    // The replica stops receiving; on the primary a rolled-back offset below ten committed rows: both groups prove
    // the hole permanent there and consume the rows, which the replica never gets.
    await p.holdReplica();
    const oldPrimary = await mysql.createConnection({ uri: p.primary!.url });
    await oldPrimary.query('BEGIN');
    await insert(oldPrimary, topic, randomUUID());
    await oldPrimary.query('ROLLBACK');
    // In one transaction, so that the consumers' first read sees all ten above the hole and one proof covers them.
    await oldPrimary.query('BEGIN');
    for (let i = 0; i < 10; i += 1) await insert(oldPrimary, topic, randomUUID());
    await oldPrimary.query('COMMIT');
    oldPrimary.destroy();
    for (const kind of ['safe', 'control'] as const) {
      await eventually(`${kind} consuming on the old primary`, async () => (await readSqlEffects(primaryPool, groups[kind])).size === 10);
    }
    assert.ok(logs.some((l) => l.startsWith('control:') && l.includes('never committed')), 'the control proved the hole on the old primary');

    // Failover: the promoted node has none of those rows (its acked offsets are 0), and its counter starts at 1.
    await p.killPrimary();
    await p.promoteReplica();
    vip.retarget(p.primary!.port);
    const held = await mysql.createConnection({ uri: p.primary!.url });
    const other = await mysql.createConnection({ uri: p.primary!.url });
    closers.push(async () => {
      held.destroy();
      other.destroy();
    });
    await held.query('BEGIN');
    const heldId = randomUUID();
    const heldOffset = await insert(held, topic, heldId);
    const laterId = randomUUID();
    const laterOffset = await insert(other, topic, laterId);
    assert.ok(heldOffset < laterOffset && laterOffset <= 10, `the new rows take offsets the old decision covered (${heldOffset}, ${laterOffset})`);
    await eventually('the control consuming over the held offset with the old decision', async () => (await readSqlEffects(primaryPool2(p), groups.control)).has(laterId), 30_000);
    assert.equal((await readSqlEffects(primaryPool2(p), groups.safe)).size, 0, 'the default waits at the hole on the new primary');
    await held.query('COMMIT');
    await eventually('the default consuming both', async () => {
      const e = await readSqlEffects(primaryPool2(p), groups.safe);
      return e.has(heldId) && e.has(laterId);
    });
    await sleep(500);
    const control = await readSqlEffects(primaryPool2(p), groups.control);
    assert.deepEqual([...control.keys()], [laterId], 'the control lost the held row: its acked offset had gone past it');
  });
});

// Semi-sync with no fallback: a publisher's COMMIT waits for the replica's acknowledgement as long as the replica
// is away, holding its offset, invisible. The bound (gapTimeoutMs, short here) would pass that hole and lose the
// row once the replica returns and the COMMIT completes; while a commit waits for an acknowledgement, it does not.
describe('the offset consumer on a semi-sync primary whose replica is away', () => {
  let pair: MariadbReplicaPair | undefined;
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await pair?.remove();
  });

  it('does not pass a hole by the bound while a commit waits for the replica, and counts that row once it commits', async () => {
    pair = await startTestPair({ level: 'semi-sync' });
    const url = pair.primary!.url;
    const topic = newTopic();
    const group = `${topic}_g`;
    const gapTimeoutMs = 2_000;
    const db: Database = openDatabase({ url, connectionLimit: 4, connectTimeoutMs: 5_000, multipleStatements: true, role: 'test' });
    closers.push(() => db.end());
    await prepareOffsetTopic(db, topic, group);
    const pool = testPool(url, 2);
    closers.push(() => pool.end());
    await createEffectsTable(pool);
    const logs: string[] = [];
    const sub: Subscription = await subscribeOffset(db, {
      ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS,
      topic,
      consumerGroup: group,
      gapTimeoutMs,
      handler: (messages, tx) => recordSqlEffects(tx, group, messages),
      log: (line) => logs.push(line),
    });
    closers.push(() => sub.close());
    const held = await mysql.createConnection({ uri: url });
    const other = await mysql.createConnection({ uri: url });
    closers.push(async () => {
      held.destroy();
      other.destroy();
    });
    const heldId = randomUUID();
    const laterId = randomUUID();
    await held.query('BEGIN');
    const heldOffset = (async () => {
      const [result] = await held.query(`INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`, [heldId]);
      return Number((result as { insertId: number }).insertId);
    })();
    const first = await heldOffset;
    const [later] = await other.query(`INSERT INTO \`watermill_${topic}\` (\`uuid\`, \`payload\`, \`metadata\`) VALUES (?, '{}', '{}')`, [laterId]);
    assert.ok(first < Number((later as { insertId: number }).insertId), 'the held transaction has the lower offset');
    await pair.holdReplica();
    const commit = held.query('COMMIT'); // waits for an acknowledgement that does not come while the replica is held
    commit.catch(() => undefined);
    await sleep(gapTimeoutMs * 2.5);
    assert.equal((await readSqlEffects(pool, group)).size, 0, 'the consumer waits at the hole');
    await pair.releaseReplica();
    await commit;
    await eventually('both rows counted', async () => {
      const e = await readSqlEffects(pool, group);
      return e.has(heldId) && e.has(laterId);
    });
    assert.ok(!logs.some((l) => l.includes('(timeout)')), `the bound passed no hole: ${JSON.stringify(logs)}`);
    assert.ok(logs.some((l) => l.includes("semi-sync acknowledgement")), `the wait was logged with its reason: ${JSON.stringify(logs)}`);
  });
});
