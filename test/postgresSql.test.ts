// The PostgreSQL SQL modules beyond the offset read: queue claims are disjoint and skip nothing for good, the
// publish de-duplication compares request ids byte for byte and binds each to its counter, counters add inside
// the statement, pruning removes only what every group has passed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { createPgPool, inPgTransaction, pgExecutorOf, type PgPool } from '../src/system/db/postgres/pool.ts';
import { claimPgUnacked, countPgQueue, createPgQueueTable, deletePgAckedQueueRows, markPgAcked } from '../src/system/sql/postgres/queueTable.ts';
import { claimPgRequestIds, createPgDedupTable, countPgDedupRows } from '../src/system/sql/postgres/dedupTable.ts';
import { addToPgCounters, createPgCounterTable, selectAllPgCounters } from '../src/system/sql/postgres/counterTable.ts';
import { postgresEngine } from '../src/system/sql/postgres/engine.ts';
import {
  countPgMessages,
  createPgMessagesTable,
  deletePgMessagesUpTo,
  insertPgMessages,
  selectAllPgMessages,
} from '../src/system/sql/postgres/messagesTable.ts';
import { createPgOffsetsTable, ensurePgGroupRow, selectLowestPgPosition, writePgPosition } from '../src/system/sql/postgres/offsetsTable.ts';
import { lockAndSelectPgMessagesStatement } from '../src/system/sql/postgres/messagesTable.ts';
import { classifyPgError } from '../src/system/db/postgres/errors.ts';
import { countPgPoisoned, createPgPoisonTable, poisonPgMessage } from '../src/system/sql/postgres/poisonTable.ts';
import { selectPgServerVersion, selectPgSessionPids, terminatePgSessions } from '../src/system/sql/postgres/sessions.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import { analyzePgTopic, pgProgressReader, primePgTopicStatistics, selectPgProgress } from '../src/system/sql/postgres/observation.ts';

describe('PostgreSQL SQL modules', () => {
  const server = usePrivatePostgres();
  const withPool = async (use: (pool: PgPool) => Promise<void>): Promise<void> => {
    const pool = createPgPool({ url: server().url, connectionLimit: 8, connectTimeoutMs: 5_000, role: 'test' });
    try {
      await use(pool);
    } finally {
      await pool.end();
    }
  };

  test('queue: two consumers holding their claims get disjoint batches; acked rows are not claimed again', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgQueueTable(db, 'q');
      await db.query(`INSERT INTO "eob_queue_q" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, 10)`);
      const a = await pool.connect();
      const b = await pool.connect();
      try {
        await a.query('BEGIN');
        await b.query('BEGIN');
        const first = await claimPgUnacked(pgExecutorOf(a), 'q', 6);
        const second = await claimPgUnacked(pgExecutorOf(b), 'q', 6);
        assert.equal(first.length, 6);
        assert.equal(second.length, 4, 'SKIP LOCKED passes over the 6 rows the first consumer holds');
        assert.deepEqual(first.map((m) => m.offset).filter((o) => second.some((s) => s.offset === o)), []);
        assert.equal(await markPgAcked(pgExecutorOf(a), 'q', first.map((m) => m.offset)), 6);
        await a.query('COMMIT');
        await b.query('ROLLBACK');
      } finally {
        a.release();
        b.release();
      }
      const again = await inPgTransaction(pool, 'READ COMMITTED', (tx) => claimPgUnacked(tx, 'q', 100));
      assert.equal(again.length, 4, 'the rolled-back claim is claimable again, the acked rows are not');
      assert.deepEqual(await countPgQueue(db, 'q'), { total: 10, acked: 6 });
      assert.equal(await deletePgAckedQueueRows(db, 'q', 100), 6);
      assert.deepEqual(await countPgQueue(db, 'q'), { total: 4, acked: 0 });
    }));

  test('dedup: ids differ byte for byte, are bound to their counter, and a concurrent claim waits for the first', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgDedupTable(db, 'd');
      const first = await inPgTransaction(pool, 'READ COMMITTED', (tx) =>
        claimPgRequestIds(tx, 'd', [
          { requestId: 'Abc-1', counterUuid: 'c1' },
          { requestId: 'abc-1', counterUuid: 'c2' },
          { requestId: 'Abc-1', counterUuid: 'c1' },
        ]),
      );
      assert.deepEqual(Object.fromEntries(first), { 'Abc-1': { mine: true, counterUuid: 'c1' }, 'abc-1': { mine: true, counterUuid: 'c2' } });
      const retry = await inPgTransaction(pool, 'READ COMMITTED', (tx) =>
        claimPgRequestIds(tx, 'd', [{ requestId: 'Abc-1', counterUuid: 'c9' }, { requestId: 'Abc-1 ', counterUuid: 'c1' }]),
      );
      assert.deepEqual(retry.get('Abc-1'), { mine: false, counterUuid: 'c1' }, 'a retry is not published, and names the counter it is bound to');
      assert.deepEqual(retry.get('Abc-1 '), { mine: true, counterUuid: 'c1' }, 'a trailing space makes another id');
      // Two transactions claiming one id: the second waits for the first, then sees its commit.
      const holder = await pool.connect();
      try {
        await holder.query('BEGIN');
        await claimPgRequestIds(pgExecutorOf(holder), 'd', [{ requestId: 'race', counterUuid: 'c1' }]);
        const waiting = inPgTransaction(pool, 'READ COMMITTED', (tx) => claimPgRequestIds(tx, 'd', [{ requestId: 'race', counterUuid: 'c1' }]));
        await new Promise((r) => setTimeout(r, 300));
        await holder.query('COMMIT');
        assert.deepEqual((await waiting).get('race'), { mine: false, counterUuid: 'c1' });
      } finally {
        holder.release();
      }
      assert.equal(await countPgDedupRows(db, 'd'), 4);
    }));

  test('counters add inside one statement; a failed batch adds nothing', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgCounterTable(db);
      await db.query('TRUNCATE "counter"');
      await addToPgCounters(db, new Map([['a', 2], ['b', 1]]));
      await Promise.all(Array.from({ length: 8 }, () => inPgTransaction(pool, 'READ COMMITTED', (tx) => addToPgCounters(tx, new Map([['a', 1], ['b', 3]])))));
      // At REPEATABLE READ a row updated by a transaction that committed after this one's snapshot is refused
      // with 40001 instead: retryable, never a lost or doubled increment.
      const rr = await Promise.allSettled(
        Array.from({ length: 4 }, () => inPgTransaction(pool, 'REPEATABLE READ', (tx) => addToPgCounters(tx, new Map([['c', 1]])))),
      );
      const refused = rr.filter((r) => r.status === 'rejected');
      for (const r of refused) assert.equal(classifyPgError((r as PromiseRejectedResult).reason), 'deadlock');
      const cAdded = rr.length - refused.length;
      await assert.rejects(
        inPgTransaction(pool, 'READ COMMITTED', async (tx) => {
          await addToPgCounters(tx, new Map([['a', 100]]));
          throw new Error('handler failed');
        }),
        /handler failed/,
      );
      assert.deepEqual(Object.fromEntries(await selectAllPgCounters(db)), { a: 10, b: 25, c: cAdded });
      assert.equal(await postgresEngine.sumCounters(db), 10 + 25 + cAdded, 'the engine sums what the rows hold');
    }));

  test('prune removes exactly the messages every group has passed', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgMessagesTable(db, 'p');
      await createPgOffsetsTable(db, 'p');
      for (let i = 0; i < 5; i += 1) await insertPgMessages(db, 'p', [{ uuid: randomUUID(), payload: { i }, metadata: {} }]);
      const all = await selectAllPgMessages(db, 'p');
      await ensurePgGroupRow(db, 'p', 'fast');
      await ensurePgGroupRow(db, 'p', 'slow');
      const at = (i: number) => ({ transactionId: all[i]?.transactionId as string, offset: all[i]?.offset as number });
      await writePgPosition(db, 'p', 'fast', at(4));
      await writePgPosition(db, 'p', 'slow', at(1));
      const { lowest, groups } = await selectLowestPgPosition(db, 'p');
      assert.equal(groups, 2);
      assert.deepEqual(lowest, at(1));
      assert.equal(await deletePgMessagesUpTo(db, 'p', lowest ?? at(0), 100), 2);
      assert.equal(await countPgMessages(db, 'p'), 3);
    }));

  test('error classes: a serialization failure is retryable, a syntax error is not', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await db.query('CREATE TABLE IF NOT EXISTS ser (id INT PRIMARY KEY, v INT)');
      await db.query('INSERT INTO ser VALUES (1, 0) ON CONFLICT DO NOTHING');
      const a = await pool.connect();
      try {
        await a.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await a.query('SELECT v FROM ser WHERE id = 1');
        await db.query('UPDATE ser SET v = v + 1 WHERE id = 1');
        const failure = await a.query('UPDATE ser SET v = v + 1 WHERE id = 1').then(() => undefined, (e: unknown) => e);
        assert.equal((failure as { code?: string }).code, '40001');
        assert.equal(classifyPgError(failure), 'deadlock');
        await a.query('ROLLBACK');
      } finally {
        a.release();
      }
      const syntax = await db.query('SELEC 1').then(() => undefined, (e: unknown) => e);
      assert.equal(classifyPgError(syntax), 'fatal');
    }));
  test('sessions: one role\'s connections are ended by name; its next transaction fails retryably, then works', async () => {
    const victim = createPgPool({ url: server().url, connectionLimit: 2, connectTimeoutMs: 5_000, role: 'victim' });
    const killer = createPgPool({ url: server().url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'killer' });
    try {
      const held = await victim.connect();
      const errors: unknown[] = [];
      held.on('error', (e) => errors.push(e));
      await held.query('BEGIN');
      assert.deepEqual((await selectPgSessionPids(pgExecutorOf(killer), 'eob-victim')).length, 1);
      assert.equal(await terminatePgSessions(pgExecutorOf(killer), 'eob-victim'), 1);
      const failure = await held.query('SELECT 1').then(() => undefined, (e: unknown) => e);
      assert.notEqual(failure, undefined);
      assert.notEqual(classifyPgError(failure), 'fatal', `retryable: ${String(failure)}`);
      held.release(true);
      assert.deepEqual(await inPgTransaction(victim, 'READ COMMITTED', (tx) => tx.query('SELECT 1 AS one')), [{ one: 1 }]);
      assert.match(await selectPgServerVersion(pgExecutorOf(killer)), /^\d+\.\d+/);
    } finally {
      await victim.end();
      await killer.end();
    }
  });
  test('poison: a message is copied as stored, and poisoning it again counts instead of failing', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgMessagesTable(db, 'x');
      assert.equal(await countPgPoisoned(db, 'x'), 0, 'no table yet: nothing poisoned');
      await createPgPoisonTable(db, 'x');
      await insertPgMessages(db, 'x', [{ uuid: randomUUID(), payload: { counter_uuid: 'c' }, metadata: { a: 'b' } }]);
      const [m] = await selectAllPgMessages(db, 'x');
      const entry = { offset: m?.offset as number, transactionId: m?.transactionId as string, error: 'boom', failedDeliveries: 3 };
      const origin = { topic: 'x', mode: 'offset' as const, consumerGroup: 'g' };
      assert.equal(await inPgTransaction(pool, 'READ COMMITTED', (tx) => poisonPgMessage(tx, origin, entry)), true);
      assert.equal(await inPgTransaction(pool, 'READ COMMITTED', (tx) => poisonPgMessage(tx, origin, { ...entry, error: 'again' })), true);
      const rows = await db.query<{ payload: string; times_poisoned: number; error: string }[]>('SELECT "payload", "times_poisoned", "error" FROM "eob_poison_x"');
      assert.deepEqual(rows, [{ payload: '{"counter_uuid":"c"}', times_poisoned: 2, error: 'again' }]);
      assert.equal(await countPgPoisoned(db, 'x'), 1);
      assert.equal(await inPgTransaction(pool, 'READ COMMITTED', (tx) => poisonPgMessage(tx, origin, { ...entry, offset: 999 })), false);
    }));

  test('the consume read ranges the primary key from the group\'s position (it does not scan from the start and filter)', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgMessagesTable(db, 'plan');
      await createPgOffsetsTable(db, 'plan');
      await ensurePgGroupRow(db, 'plan', 'g');
      await db.query(`INSERT INTO "watermill_plan" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, 50000)`);
      await db.query('ANALYZE "watermill_plan"');
      const mid = await db.query<{ t: string; o: string }[]>('SELECT "transaction_id"::text AS t, "offset" AS o FROM "watermill_plan" ORDER BY 1, 2 OFFSET 25000 LIMIT 1');
      await writePgPosition(db, 'plan', 'g', { transactionId: mid[0]!.t, offset: Number(mid[0]!.o) });
      const read = lockAndSelectPgMessagesStatement('plan', 'g', 100);
      const plan = await inPgTransaction(pool, 'READ COMMITTED', (tx) => tx.query<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (ANALYZE, FORMAT JSON) ${read.sql}`, read.values));
      const text = JSON.stringify(plan);
      assert.match(text, /"Index Cond":"\(\(ROW\(transaction_id, \\"offset\\"\) > ROW/, 'the position is an index condition');
      assert.doesNotMatch(text, /Rows Removed by (Join )?Filter":[1-9]/, 'no row before the position is read and thrown away');
    }));

  test('a poller\'s reading of a freshly filled topic scans the whole table until analyzePgTopic, then ranges the primary key', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgMessagesTable(db, 'fresh');
      await createPgOffsetsTable(db, 'fresh');
      await ensurePgGroupRow(db, 'fresh', 'g');
      // Autovacuum off for this table alone, so its statistics come from analyzePgTopic or from nothing.
      await db.query('ALTER TABLE "watermill_fresh" SET (autovacuum_enabled = false)');
      await db.query(`INSERT INTO "watermill_fresh" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, 50000)`);
      const reader = pgProgressReader({ mode: 'offset', topic: 'fresh', consumerGroup: 'g' });
      // The first reading counts every row once by design; what matters is every reading after it.
      assert.equal((await reader.read(db)).published, 50_000);
      // The reading's one statement, planned (EXPLAIN) on the statistics it would run with, then run.
      const plannedReading = async (): Promise<string> => {
        let plan = '';
        const explaining: SqlExecutor = {
          query: async <T>(sql: string, values?: unknown[]): Promise<T> => {
            plan += JSON.stringify(await db.query(`EXPLAIN (FORMAT JSON) ${sql}`, values));
            return db.query<T>(sql, values);
          },
        };
        await reader.read(explaining);
        return plan;
      };
      assert.match(await plannedReading(), /"Node Type":"Seq Scan"/, 'never analyzed: a count of the reading scans the table (the cause analyzePgTopic removes)');
      await analyzePgTopic(db, 'fresh');
      assert.doesNotMatch(await plannedReading(), /"Node Type":"Seq Scan"/, 'analyzed: every count of the reading is an index range');
      assert.equal((await reader.read(db)).published, 50_000);
    }));

  test('a poller\'s reading of a topic that fills while it is read (end to end) scans the table even after an ANALYZE of the empty table; primed, it ranges the primary key', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      // The plan of one reading taken after the topic grew as under load (many transactions) from empty, with
      // the poller started on the empty topic, as the end-to-end point's sampler is.
      const planAfterLoad = async (topic: string, prepare: () => Promise<void>): Promise<string> => {
        await createPgMessagesTable(db, topic);
        await createPgOffsetsTable(db, topic);
        await ensurePgGroupRow(db, topic, 'g');
        // Autovacuum off for this table alone, so its statistics come from the preparation or from nothing.
        await db.query(`ALTER TABLE "watermill_${topic}" SET (autovacuum_enabled = false)`);
        await prepare();
        const reader = pgProgressReader({ mode: 'offset', topic, consumerGroup: 'g' });
        assert.equal((await reader.read(db)).published, 0);
        const load = async (transactions: number) => {
          for (let i = 0; i < transactions; i += 1) {
            await db.query(`INSERT INTO "watermill_${topic}" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, 1000)`);
          }
        };
        await load(50);
        assert.equal((await reader.read(db)).published, 50_000);
        await load(2);
        let plan = '';
        const explaining: SqlExecutor = {
          query: async <T>(sql: string, values?: unknown[]): Promise<T> => {
            plan += JSON.stringify(await db.query(`EXPLAIN (FORMAT JSON) ${sql}`, values));
            return db.query<T>(sql, values);
          },
        };
        assert.equal((await reader.read(explaining)).published, 52_000);
        return plan;
      };
      assert.match(
        await planAfterLoad('grown', () => analyzePgTopic(db, 'grown')),
        /"Node Type":"Seq Scan"/,
        'analyzed while empty: no column statistics, a count of the reading scans the table',
      );
      assert.doesNotMatch(
        await planAfterLoad('primed', () => primePgTopicStatistics(db, 'primed')),
        /"Node Type":"Seq Scan"/,
        'primed: every count of the reading is an index range',
      );
    }));

  test('progress for a poller carries its counts and still equals the full reading: rows added, a late commit below the position, the position moved back', () =>
    withPool(async (pool) => {
      const db = pgExecutorOf(pool);
      await createPgMessagesTable(db, 'prog');
      await createPgOffsetsTable(db, 'prog');
      const target = { mode: 'offset' as const, topic: 'prog', consumerGroup: 'g' };
      const reader = pgProgressReader(target);
      const insert = (n: number) => db.query(`INSERT INTO "watermill_prog" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, ${n})`);
      const nth = async (k: number) => {
        const r = await db.query<{ t: string; o: string }[]>(`SELECT "transaction_id"::text AS t, "offset" AS o FROM "watermill_prog" ORDER BY "transaction_id", "offset" OFFSET ${k - 1} LIMIT 1`);
        return { transactionId: r[0]!.t, offset: Number(r[0]!.o) };
      };
      const same = async (expected: { progress: number; published: number }, what: string) => {
        const full = await selectPgProgress(db, target);
        const carried = await reader.read(db);
        assert.deepEqual({ progress: full.progress, published: full.published }, expected, `full reading, ${what}`);
        assert.deepEqual({ progress: carried.progress, published: carried.published }, expected, `carried reading, ${what}`);
      };
      await same({ progress: 0, published: 0 }, 'no group row, no rows');
      await ensurePgGroupRow(db, 'prog', 'g');
      await insert(100);
      // A writer that inserts first and commits last: its rows sort before everything inserted after it.
      const late = await pool.connect();
      try {
        await late.query('BEGIN');
        await late.query(`INSERT INTO "watermill_prog" ("uuid", "payload", "metadata") SELECT gen_random_uuid()::text, '{}', '{}' FROM generate_series(1, 7)`);
        await insert(50);
        await same({ progress: 0, published: 150 }, 'a writer still open');
        await writePgPosition(db, 'prog', 'g', await nth(60));
        await same({ progress: 60, published: 150 }, 'position inside the closed rows');
        // A position past the open writer's id (what the control reader does): rows at or before it are not closed.
        await writePgPosition(db, 'prog', 'g', await nth(140));
        await insert(10);
        await same({ progress: 140, published: 160 }, 'position past the open writer');
        await late.query('COMMIT');
      } finally {
        late.release();
      }
      await same({ progress: 147, published: 167 }, 'the late rows landed below the position');
      await insert(33);
      await writePgPosition(db, 'prog', 'g', await nth(200));
      await same({ progress: 200, published: 200 }, 'drained');
      await writePgPosition(db, 'prog', 'g', await nth(10));
      await same({ progress: 10, published: 200 }, 'position moved back');
    }));
});
