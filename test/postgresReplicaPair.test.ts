// A PostgreSQL primary and streaming standby, failed over: SIGKILL the primary, promote the standby.
// - async, standby held (its WAL receiver stopped) after it had caught up: the promoted node has exactly the
//   commits acknowledged before the hold, and none of the ones acknowledged after it. THE CONTROL: the loss of
//   acknowledged commits is certain, not lucky.
// - sync (synchronous_commit=on, the standby named in synchronous_standby_names): 16 writers, the primary killed
//   mid-stream without warning, and every acknowledged commit is on the promoted node. With the standby held, a
//   commit waits (SyncRep) instead of being acknowledged, and the kill turns it into an error, never a success.
// - the old primary stays down and a promotion while it runs is refused. Under sync the promoted node's commits
//   wait until a fresh standby (rebuilt from it in the dead node's place) streams; a second failover then loses
//   nothing either. Under async the promoted node takes writes at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestPostgresPair, type PostgresReplicaPair } from './support/postgresReplicaPair.ts';
import { resolvePostgresReplicaPairOptions } from '../src/harness/postgres/postgresReplicaPair.ts';

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A session ended by the kill emits 'error'; the awaited query reports it.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function ids(url: string): Promise<number[]> {
  const client = await connect(url);
  try {
    return (await client.query<{ id: number }>('SELECT id FROM acked ORDER BY id')).rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}

/** Inserts ids from..to one autocommit INSERT each; resolves with the ids the primary acknowledged. */
async function insertEach(client: pg.Client, from: number, to: number): Promise<number[]> {
  const acknowledged: number[] = [];
  for (let id = from; id <= to; id += 1) {
    await client.query('INSERT INTO acked (id) VALUES ($1)', [id]);
    acknowledged.push(id);
  }
  return acknowledged;
}

/** Resolves once session `pid` waits for its synchronous standby; fails if its commit was answered first. */
async function waitForSyncRep(url: string, pid: number, answered: () => boolean): Promise<void> {
  const client = await connect(url);
  try {
    for (;;) {
      const row = (await client.query<{ wait_event: string | null }>('SELECT wait_event FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0];
      if (row?.wait_event === 'SyncRep') return;
      assert.equal(answered(), false, 'the commit was answered before it waited for a standby');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await client.end();
  }
}

async function withPair(level: 'async' | 'sync', use: (pair: PostgresReplicaPair) => Promise<void>): Promise<void> {
  const pair = await startTestPostgresPair(level);
  try {
    await use(pair);
  } finally {
    await pair.remove();
  }
}

describe('PostgreSQL pair options', () => {
  it('name the bad field: a level PostgreSQL lacks, equal ports, a wrong number of data directories', () => {
    assert.throws(() => resolvePostgresReplicaPairOptions({ level: 'semi-sync' as never }), /level must be one of async, sync on PostgreSQL \(got "semi-sync"\)/);
    assert.throws(() => resolvePostgresReplicaPairOptions({ ports: [5440, 5440] }), /ports must differ/);
    assert.throws(() => resolvePostgresReplicaPairOptions({ nodeDatadirs: ['/tmp/a'] }), /nodeDatadirs must be two directories/);
    assert.equal(resolvePostgresReplicaPairOptions({ ports: [5440] }).ports?.length, 1, 'a missing replica port is picked at start');
  });
});

describe('a PostgreSQL primary/standby pair across a failover', () => {
  it('async, standby held: the promoted node lacks exactly the commits acknowledged after the hold (the control)', async () => {
    await withPair('async', async (pair) => {
      assert.deepEqual(pair.nodes.map((n) => n.role), ['primary', 'replica']);
      const primary = await connect(pair.nodes[0]!.url);
      await primary.query('CREATE TABLE acked (id int PRIMARY KEY)');
      const before = await insertEach(primary, 1, 200);
      await pair.waitForReplicaCaughtUp();
      await pair.holdReplica();
      const after = await insertEach(primary, 201, 400);
      assert.equal(after.length, 200, 'the primary went on acknowledging commits with its standby held');
      await pair.killPrimary();
      await pair.promoteReplica();
      assert.deepEqual(pair.nodes.map((n) => n.role), ['down', 'primary']);
      const survived = await ids(pair.nodes[1]!.url);
      assert.deepEqual(survived, before, 'the promoted node has every commit acknowledged before the hold and none after it');
      const lost = after.filter((id) => !survived.includes(id));
      assert.equal(lost.length, 200, `acknowledged commits lost by the failover: ${lost.length} of ${before.length + after.length}`);
      // The promoted node is a writer of its own, and nothing brings the old primary back.
      const promoted = await connect(pair.nodes[1]!.url);
      await promoted.query('INSERT INTO acked (id) VALUES (1000)');
      await promoted.end();
      assert.equal(pair.nodes[0]!.role, 'down');
      await primary.end().catch(() => undefined);
    });
  });

  it('sync: every commit acknowledged before a kill mid-stream is on the promoted node', async () => {
    await withPair('sync', async (pair) => {
      const setup = await connect(pair.nodes[0]!.url);
      await setup.query('CREATE TABLE acked (id int PRIMARY KEY)');
      await setup.end();
      const acknowledged: number[] = [];
      const failed: number[] = [];
      let next = 1;
      let stop = false;
      const writer = async (): Promise<void> => {
        const client = await connect(pair.nodes[0]!.url);
        while (!stop) {
          const id = next++;
          try {
            await client.query('INSERT INTO acked (id) VALUES ($1)', [id]);
            acknowledged.push(id);
          } catch {
            failed.push(id);
            break;
          }
        }
        await client.end().catch(() => undefined);
      };
      const writers = Array.from({ length: 16 }, () => writer());
      while (acknowledged.length < 500) await new Promise((resolve) => setTimeout(resolve, 10));
      await pair.killPrimary();
      stop = true;
      await Promise.all(writers);
      await pair.promoteReplica();
      const survived = new Set(await ids(pair.nodes[1]!.url));
      const lost = acknowledged.filter((id) => !survived.has(id));
      assert.deepEqual(lost, [], `acknowledged commits lost: ${lost.length} of ${acknowledged.length}`);
      assert.ok(failed.length > 0, 'the kill came while writers were committing');
      // The promise outlives the failover: the promoted node's commits wait for a standby of its own...
      const promoted = await connect(pair.nodes[1]!.url);
      const pid = (await promoted.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      let answered = false;
      const commit = promoted.query('INSERT INTO acked (id) VALUES (-1)').then(() => (answered = true));
      await waitForSyncRep(pair.nodes[1]!.url, pid, () => answered);
      // ...which a fresh standby, made from the promoted node in the dead one's place, provides.
      await pair.rebuildReplica();
      await commit;
      assert.deepEqual(pair.nodes.map((n) => n.role), ['replica', 'primary']);
      // A second failover: the rebuilt standby has every acknowledged commit, the one just made included.
      await pair.killPrimary();
      await pair.promoteReplica();
      const second = new Set(await ids(pair.nodes[0]!.url));
      assert.deepEqual([...acknowledged, -1].filter((id) => !second.has(id)), [], 'nothing acknowledged lost after two failovers');
      await promoted.end().catch(() => undefined);
    });
  });

  it('sync, standby held: a commit waits for the standby instead of being acknowledged, and the kill fails it', async () => {
    await withPair('sync', async (pair) => {
      const primary = await connect(pair.nodes[0]!.url);
      await primary.query('CREATE TABLE acked (id int PRIMARY KEY)');
      const before = await insertEach(primary, 1, 50);
      await pair.holdReplica();
      const waiting = await connect(pair.nodes[0]!.url);
      const pid = (await waiting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      let answered: 'acknowledged' | 'failed' | undefined;
      const commit = waiting.query('INSERT INTO acked (id) VALUES (51)').then(
        () => (answered = 'acknowledged'),
        () => (answered = 'failed'),
      );
      await waitForSyncRep(pair.nodes[0]!.url, pid, () => answered !== undefined);
      assert.equal(answered, undefined);
      await assert.rejects(pair.promoteReplica(), /still runs/, 'a promotion beside a live primary is refused');
      await pair.killPrimary();
      await commit;
      assert.equal(answered, 'failed', 'the waiting commit is never acknowledged');
      await pair.promoteReplica();
      assert.deepEqual(await ids(pair.nodes[1]!.url), before, 'every acknowledged commit survived; the unacknowledged one is absent');
      await Promise.all([primary.end().catch(() => undefined), waiting.end().catch(() => undefined)]);
    });
  });
});
