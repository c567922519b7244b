// A MariaDB primary and a GTID replica (mariadbReplicaPair.ts), and what a failover keeps of the commits the
// primary acknowledged:
// - a row written on the primary reaches the replica, which refuses writes of ordinary users (read_only);
// - async, the control: the replica's I/O thread stopped (holdReplica), rows acknowledged, the primary
//   SIGKILLed, the replica promoted: every row acknowledged after the hold is gone;
// - semi-sync (AFTER_SYNC, no fallback): rows written by 8 connections while the primary is SIGKILLed, promoted,
//   a fresh replica rebuilt, the same again: no acknowledged row is lost in either failover; with the replica
//   held for 12 s (longer than MariaDB's default 10 s fallback), commits are not acknowledged at all (so none can be
//   lost), the fallback timeout is the maximum, and semi-sync is still on with no commit answered alone;
// - semi-sync with the fallback (rpl_semi_sync_master_timeout 300 ms): the held replica makes the primary go on
//   alone, and the rows it then acknowledges are lost like async's.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { startTestPair, type MariadbReplicaPair } from './support/replicaPair.ts';
import { MAX_SEMI_SYNC_TIMEOUT_MS } from '../src/harness/mariadb/mariadbReplicaPair.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function connect(url: string): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: url, connectTimeout: 5_000 });
}

async function prepare(pair: MariadbReplicaPair): Promise<void> {
  const c = await connect(pair.primary!.url);
  await c.query('CREATE TABLE t (id INT PRIMARY KEY, writer INT NOT NULL) ENGINE=InnoDB');
  await c.end();
}

/** Inserts ids from `from` one autocommit statement at a time until `stop`; returns the ids acknowledged. */
async function writeUntil(url: string, writer: number, ids: () => number, stop: () => boolean, timeoutMs = 5_000): Promise<number[]> {
  const acknowledged: number[] = [];
  let c: mysql.Connection;
  try {
    c = await connect(url);
  } catch {
    return acknowledged;
  }
  try {
    while (!stop()) {
      const id = ids();
      await c.query({ sql: 'INSERT INTO t (id, writer) VALUES (?, ?)', timeout: timeoutMs }, [id, writer]);
      acknowledged.push(id);
    }
  } catch {
    // the primary died under it (or the commit was not answered in time): not acknowledged
  } finally {
    c.destroy();
  }
  return acknowledged;
}

async function idsOn(url: string): Promise<Set<number>> {
  const c = await connect(url);
  try {
    const [rows] = await c.query('SELECT id FROM t');
    return new Set((rows as { id: number }[]).map((r) => r.id));
  } finally {
    await c.end();
  }
}

function lostOf(acknowledged: readonly number[], present: Set<number>): number[] {
  return acknowledged.filter((id) => !present.has(id));
}

describe('a MariaDB primary and a GTID replica', () => {
  const pairs: MariadbReplicaPair[] = [];
  after(async () => {
    for (const p of pairs) await p.remove().catch(() => undefined);
  });
  async function pair(options: Parameters<typeof startTestPair>[0]): Promise<MariadbReplicaPair> {
    const p = await startTestPair(options);
    pairs.push(p);
    await prepare(p);
    return p;
  }

  it('replicates a row to the replica, which is read-only to other users', async () => {
    const p = await pair({ level: 'semi-sync' });
    assert.equal(p.nodes.length, 2);
    assert.deepEqual(p.nodes.map((n) => n.role), ['primary', 'replica']);
    const c = await connect(p.primary!.url);
    await c.query('INSERT INTO t VALUES (1, 0)');
    await c.end();
    // AFTER_SYNC: the replica had it in its relay log before the INSERT was answered; applied soon after.
    let seen = false;
    for (let i = 0; i < 100 && !seen; i += 1) {
      seen = (await idsOn(p.replica!.url)).has(1);
      if (!seen) await sleep(50);
    }
    assert.ok(seen, 'the row reached the replica');
    const r = await connect(p.replica!.url);
    try {
      await r.query("CREATE USER IF NOT EXISTS 'plain'@'127.0.0.1' IDENTIFIED BY 'plain-password-123'");
      await r.query("GRANT INSERT, SELECT ON *.* TO 'plain'@'127.0.0.1'");
    } finally {
      await r.end();
    }
    const plain = await mysql.createConnection({ host: '127.0.0.1', port: p.replica!.port, user: 'plain', password: 'plain-password-123', database: 'eob' });
    await assert.rejects(plain.query('INSERT INTO t VALUES (2, 0)'), /read-only|read_only/i);
    await plain.end();
    const s = await p.semiSyncStatus();
    assert.ok(s.active && s.clients === 1, `semi-sync active with one client (${JSON.stringify(s)})`);
  });

  it('async, the control: rows acknowledged while the replica is held are lost by the failover', async () => {
    const p = await pair({ level: 'async' });
    const before = await writeUntil(p.primary!.url, 1, counter(1), stopAfter(20));
    await waitReplicaHas(p, before);
    await p.holdReplica();
    const held = await writeUntil(p.primary!.url, 1, counter(1_000), stopAfter(50));
    assert.equal(held.length, 50, 'the primary acknowledges every row alone');
    await p.killPrimary();
    await p.promoteReplica();
    assert.equal(p.primary?.port, p.nodes[1]!.port);
    const present = await idsOn(p.primary!.url);
    assert.deepEqual(lostOf(before, present), [], 'rows the replica had before the hold survive');
    assert.equal(lostOf(held, present).length, 50, 'every row acknowledged after the hold is lost');
    // The promoted node takes writes.
    assert.equal((await writeUntil(p.primary!.url, 1, counter(5_000), stopAfter(3))).length, 3);
  });

  it('semi-sync: no acknowledged row is lost by two failovers under 8 writers, the second after a rebuilt replica', async () => {
    const p = await pair({ level: 'semi-sync' });
    let next = 1;
    for (const failover of [1, 2]) {
      let stopped = false;
      const writers = Array.from({ length: 8 }, (_, w) => writeUntil(p.primary!.url, w, () => next++, () => stopped));
      await sleep(700);
      await p.killPrimary();
      const acknowledged = (await Promise.all(writers)).flat();
      stopped = true;
      await p.promoteReplica();
      const present = await idsOn(p.primary!.url);
      assert.ok(acknowledged.length > 50, `failover ${failover}: rows were acknowledged before the kill (${acknowledged.length})`);
      assert.deepEqual(lostOf(acknowledged, present), [], `failover ${failover}: ${acknowledged.length} acknowledged, none lost`);
      if (failover === 1) {
        const oldPort = p.nodes[0]!.port;
        await p.rebuildReplica();
        assert.equal(p.replica?.role, 'replica');
        assert.notEqual(p.replica?.port, oldPort, 'the old primary did not come back; a fresh server took its place');
        assert.deepEqual([...(await idsOn(p.replica!.url))].sort((a, b) => a - b), [...present].sort((a, b) => a - b), 'the fresh replica copied the whole history');
      }
    }
  });

  it('semi-sync without fallback: with the replica held, a commit is not acknowledged, so the failover loses nothing acknowledged', async () => {
    const p = await pair({ level: 'semi-sync' });
    const c = await connect(p.primary!.url);
    const [vars] = await c.query('SELECT @@rpl_semi_sync_master_timeout AS timeoutMs, @@rpl_semi_sync_master_wait_no_slave AS waitNoSlave');
    await c.end();
    const v = (vars as { timeoutMs: number | string; waitNoSlave: number | string }[])[0]!;
    assert.equal(Number(v.timeoutMs), MAX_SEMI_SYNC_TIMEOUT_MS, 'the fallback timeout is the maximum');
    assert.equal(Number(v.waitNoSlave), 1, 'a commit waits even with no replica connected');
    const before = await writeUntil(p.primary!.url, 1, counter(1), stopAfter(10));
    await p.holdReplica();
    // Longer than MariaDB's default fallback (rpl_semi_sync_master_timeout 10 s), which would answer the commit
    // at 10 s, acknowledged by the primary alone.
    const held = await writeUntil(p.primary!.url, 1, counter(1_000), stopAfter(5), 12_000);
    assert.deepEqual(held, [], 'no commit is answered without the replica');
    const s = await p.semiSyncStatus();
    assert.equal(s.active, true, 'semi-sync is still on after the held period (no fallback)');
    assert.equal(s.noTx, 0, 'no commit was answered without an acknowledgement');
    await p.killPrimary();
    await p.promoteReplica();
    assert.deepEqual(lostOf(before, await idsOn(p.primary!.url)), []);
  });

  it('semi-sync with the fallback after 300 ms: the held replica makes the primary go on alone, and the failover loses those rows', async () => {
    const p = await pair({ level: 'semi-sync', semiSyncTimeoutMs: 300 });
    const before = await writeUntil(p.primary!.url, 1, counter(1), stopAfter(10));
    await p.holdReplica();
    const held = await writeUntil(p.primary!.url, 1, counter(1_000), stopAfter(20));
    assert.equal(held.length, 20, 'after the timeout the primary acknowledges alone');
    const s = await p.semiSyncStatus();
    assert.equal(s.active, false, 'semi-sync fell back to async');
    assert.ok(s.noTx >= 20, `the fallback is reported: ${s.noTx} commits without an acknowledgement`);
    await p.killPrimary();
    await p.promoteReplica();
    const present = await idsOn(p.primary!.url);
    assert.deepEqual(lostOf(before, present), []);
    assert.equal(lostOf(held, present).length, 20, 'the rows acknowledged after the fallback are lost');
  });
});

function counter(from: number): () => number {
  let n = from;
  return () => n++;
}

function stopAfter(n: number): () => boolean {
  let calls = 0;
  return () => calls++ >= n;
}

async function waitReplicaHas(p: MariadbReplicaPair, ids: readonly number[]): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const present = await idsOn(p.replica!.url);
    if (ids.every((id) => present.has(id))) return;
    await sleep(25);
  }
  throw new Error('the replica did not receive the rows written before the hold');
}
