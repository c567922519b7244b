// Start-up under concurrent starters, with the overlap forced rather than hoped for: 8 real `eob server` and
// `eob worker` processes start against a new database or a new topic while this test holds the one lock their
// first statement needs; once all 8 are seen waiting on it, the test lets go, and all 8 must become ready.
//
// How each case holds them, and what the plain statements (without the schema lock) do when released together:
// - PostgreSQL, new topic: this test's own session runs BEGIN; CREATE TABLE for the topic's messages table and
//   keeps the transaction open (a creator that is not eob: a migration tool, psql, an older version). A plain
//   CREATE TABLE IF NOT EXISTS of that name waits on the catalog's unique index and fails with 23505 on
//   pg_type_typname_nsp_index when the holder commits.
// - PostgreSQL, new database: this session holds a lock on template1 (COMMENT ON DATABASE in an open
//   transaction), which every CREATE DATABASE waits for before its existence check; released, they all copy the
//   template and all but one fail with 23505 on pg_database_datname_index.
// - MariaDB Galera (3 nodes), new database and new topic, the 8 spread over two nodes: the third is stopped
//   (SIGSTOP), which holds the cluster's total order, so every DDL waits; it resumes and they run at once, in
//   total order (TOI); the group row's INSERT IGNOREs from two nodes may conflict at certification (1213).
// - MariaDB, new database and new topic: FLUSH TABLES WITH READ LOCK holds every DDL statement ("Waiting for
//   backup lock"); released, the 8 run CREATE DATABASE / CREATE TABLE IF NOT EXISTS at once, and each waits on
//   the name's metadata lock and then finds it made (this passed before the PostgreSQL fix too).
// Beside them, in-process: the PostgreSQL schema lock (creators behind it never meet the race, the plain
// statement does), and what start-up says: a race is retried within the start timeout, a SQL error fails at once
// naming the statement and SQLSTATE, "cannot reach" only for a connection failure.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { usePrivatePostgres } from './support/privatePostgres.ts';
import { usePrivateDatabase } from './support/privateDatabase.ts';
import { galeraMissing, useGaleraCluster } from './support/galeraCluster.ts';
import { ChildService } from '../src/harness/childService.ts';
import { childEnvironment } from '../src/config.ts';
import { projectRoot } from '../src/projectRoot.ts';
import { openDatabase } from '../src/system/db/openDatabase.ts';
import { waitForDatabase } from '../src/system/db/waitForDatabase.ts';
import { createPgMessagesTable } from '../src/system/sql/postgres/messagesTable.ts';
import { postgresEngine } from '../src/system/sql/postgres/engine.ts';
import { findFreePort } from '../src/harness/ports.ts';
import type { SqlExecutor } from '../src/system/pubsub/types.ts';
import type { SqlEngine } from '../src/system/sql/engine.ts';

const STARTERS = 8;
/** Node + tsx start in ~1 s here; 8 at once on a loaded 2-core machine take longer. */
const START_TIMEOUT_MS = 120_000;

/**
 * Half servers, half workers, all on `topic` in offset mode (so every one's first table is the messages table);
 * starter i uses databaseUrls[i % length] (a cluster's nodes in turn).
 */
function starters(databaseUrls: string | readonly string[], topic: string): ChildService[] {
  const eob = path.join(projectRoot(), 'bin', 'eob.js');
  const urls = typeof databaseUrls === 'string' ? [databaseUrls] : databaseUrls;
  return Array.from({ length: STARTERS }, (_, i) => {
    const databaseUrl = urls[i % urls.length]!;
    const server = i % 2 === 0;
    const args = server
      ? ['server', '--port', '0', '--topic', topic, ...(i % 4 === 0 ? ['--dedup'] : []), '--start-timeout-ms', '60000']
      : ['worker', '--topic', topic, '--start-timeout-ms', '60000'];
    return new ChildService({
      name: `${server ? 'server' : 'worker'} ${i + 1}`,
      command: process.execPath,
      args: [eob, ...args],
      env: childEnvironment({ DATABASE_URL: databaseUrl, MYSQL_URL: undefined, EOB_LOG: undefined, EOB_FAILPOINTS: undefined }),
      readiness: { kind: 'line', pattern: server ? /^server listening on / : /^worker started/ },
      startTimeoutMs: START_TIMEOUT_MS,
      stopTimeoutMs: 10_000,
    });
  });
}

/**
 * Starts the 8, waits until `waiting()` counts all of them held, runs `release`, and asserts every one became
 * ready. A starter that died before or after the release fails the test with its last output.
 */
async function forceOverlap(children: ChildService[], waiting: () => Promise<number>, release: () => Promise<void>): Promise<void> {
  const started = children.map((c) => c.start().then(() => undefined, (error: unknown) => error as Error));
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (let held = 0; held < STARTERS; held = await waiting()) {
      const dead = children.filter((c) => c.exitStatus !== undefined);
      if (dead.length > 0) {
        await release();
        assert.fail(`${dead.length} starter(s) exited before all ${STARTERS} were held:\n${dead.map((c) => `${c.name}: ${c.outputTail(5)}`).join('\n')}`);
      }
      if (Date.now() > deadline) {
        await release();
        assert.fail(`only ${held} of ${STARTERS} starters were held after ${START_TIMEOUT_MS} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await release();
    const failures = (await Promise.all(started)).flatMap((error, i) => (error === undefined ? [] : [`${children[i]!.name}: ${error.message}`]));
    assert.deepEqual(failures, [], `starters failed after the overlap:\n${failures.join('\n')}`);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

/** The URL with another database name. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function assertTablesExist(databaseUrl: string, topic: string): Promise<void> {
  const db = openDatabase({ url: databaseUrl, connectionLimit: 1, connectTimeoutMs: 5_000 });
  try {
    assert.equal(await db.engine.selectAckedOffset(db.executor(), { topic, consumerGroup: 'counter' }), 0);
    assert.equal(await db.engine.countPoisoned(db.executor(), { topic }), 0);
    assert.equal(await db.engine.deleteDedupRowsOlderThan(db.executor(), { topic, windowS: 1, limit: 1 }), 0);
  } finally {
    await db.end();
  }
}

/** A creator's statement without the schema lock (what eob ran before it): the one that loses the race. */
const PLAIN_CREATE = (topic: string): string => `CREATE TABLE IF NOT EXISTS "watermill_${topic}" ("offset" BIGSERIAL, PRIMARY KEY ("offset"))`;

/** SQL in, rows out, on one client's connection (its open transaction, if any). */
function clientExecutor(client: pg.Client): SqlExecutor {
  return {
    async query<T>(sql: string, values?: unknown[]): Promise<T> {
      return (await client.query(sql, values)).rows as T;
    },
  };
}

/** An executor on its own connection that keeps the SQLSTATE of every statement the server refused. */
async function recordingClient(url: string): Promise<{ db: SqlExecutor; refused: string[]; end(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const refused: string[] = [];
  const plain = clientExecutor(client);
  return {
    refused,
    db: {
      async query<T>(sql: string, values?: unknown[]): Promise<T> {
        try {
          return await plain.query<T>(sql, values);
        } catch (error) {
          refused.push(String((error as { code?: unknown }).code));
          throw error;
        }
      },
    },
    end: () => client.end(),
  };
}

async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

describe('start-up with the overlap forced, PostgreSQL', () => {
  const server = usePrivatePostgres();

  async function withClient<T>(database: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: withDatabase(server().url, database) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  test(`${STARTERS} servers and workers, a new topic whose table another session is creating`, async () => {
    const database = `race_${randomUUID().slice(0, 8)}`;
    await withClient('postgres', (c) => c.query(`CREATE DATABASE ${database}`));
    const topic = `race_${randomUUID().slice(0, 8)}`;
    const holder = new pg.Client({ connectionString: withDatabase(server().url, database) });
    await holder.connect();
    const holderPid = await backendPid(holder);
    try {
      await holder.query('BEGIN');
      // Not eob's own statement: any creator of that name, holding its transaction open.
      await holder.query(`CREATE TABLE "watermill_${topic}" ("offset" BIGSERIAL, "uuid" VARCHAR(36) NOT NULL, "created_at" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "payload" JSON DEFAULT NULL, "metadata" JSON DEFAULT NULL, "transaction_id" xid8 NOT NULL DEFAULT pg_current_xact_id(), PRIMARY KEY ("transaction_id", "offset"))`);
      const waiting = async (): Promise<number> => {
        const rows = await withClient(database, (c) =>
          c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> $2`, [database, holderPid]),
        );
        return Number(rows.rows[0]?.n ?? 0);
      };
      await forceOverlap(starters(withDatabase(server().url, database), topic), waiting, async () => {
        await holder.query('COMMIT').catch(() => undefined);
      });
      await assertTablesExist(withDatabase(server().url, database), topic);
    } finally {
      await holder.end();
    }
  });

  test(`${STARTERS} servers and workers, a new database`, async () => {
    const database = `race_${randomUUID().slice(0, 8)}`;
    const topic = 'counter';
    const holder = new pg.Client({ connectionString: withDatabase(server().url, 'postgres') });
    await holder.connect();
    const holderPid = await backendPid(holder);
    try {
      await holder.query('BEGIN');
      // COMMENT ON DATABASE takes a ShareUpdateExclusive lock on template1 until COMMIT or ROLLBACK; CREATE
      // DATABASE needs a Share lock on its template before it checks whether the name exists.
      await holder.query(`COMMENT ON DATABASE template1 IS 'held by a start-up race test'`);
      const waiting = async (): Promise<number> => {
        const rows = await withClient('postgres', (c) =>
          c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1`, [holderPid]),
        );
        return Number(rows.rows[0]?.n ?? 0);
      };
      await forceOverlap(starters(withDatabase(server().url, database), topic), waiting, async () => {
        await holder.query('ROLLBACK').catch(() => undefined);
      });
      await assertTablesExist(withDatabase(server().url, database), topic);
    } finally {
      await holder.end();
    }
  });

  /** Sessions of `database` waiting on a lock (a table lock, an advisory lock, another transaction's row). */
  async function lockWaiters(database: string, except: number): Promise<number> {
    const rows = await withClient(database, (c) =>
      c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> $2`, [database, except]),
    );
    return Number(rows.rows[0]?.n ?? 0);
  }

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test('the schema lock: 8 eob creators wait for the one holding its transaction open, and none of their statements fails; a plain CREATE IF NOT EXISTS beside them fails with 23505', async () => {
    const url = server().url;
    const topic = `lock_${randomUUID().slice(0, 8)}`;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const holderPid = await backendPid(holder);
    const creators = await Promise.all(Array.from({ length: STARTERS }, () => recordingClient(url)));
    const plain = new pg.Client({ connectionString: url });
    await plain.connect();
    try {
      // An eob creator slowed down before its commit (a synchronous standby slows every commit).
      await holder.query('BEGIN');
      await createPgMessagesTable(clientExecutor(holder), topic);
      const control = plain.query(PLAIN_CREATE(topic)).then(() => undefined, (error: unknown) => error as { code?: string; constraint?: string });
      const created = creators.map((c) => createPgMessagesTable(c.db, topic).then(() => undefined, (error: unknown) => error));
      await until(`${STARTERS + 1} sessions waiting`, async () => (await lockWaiters('eob', holderPid)) === STARTERS + 1);
      await holder.query('COMMIT');
      const lost = await control;
      assert.equal(lost?.code, '23505', 'the plain CREATE TABLE IF NOT EXISTS loses the race');
      assert.match(String(lost?.constraint), /^pg_/);
      assert.deepEqual(await Promise.all(created), Array(STARTERS).fill(undefined));
      assert.deepEqual(creators.flatMap((c) => c.refused), [], 'behind the lock no creator even meets the catalog race');
    } finally {
      await Promise.all([holder.end(), plain.end(), ...creators.map((c) => c.end())]);
    }
  });

  test('a creator that is not eob holds the table open: the one eob creator that met it looks again, and none fails', async () => {
    const url = server().url;
    const topic = `foreign_${randomUUID().slice(0, 8)}`;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const holderPid = await backendPid(holder);
    const creators = await Promise.all(Array.from({ length: STARTERS }, () => recordingClient(url)));
    try {
      await holder.query('BEGIN');
      await holder.query(PLAIN_CREATE(topic));
      const created = creators.map((c) => createPgMessagesTable(c.db, topic).then(() => undefined, (error: unknown) => error));
      await until(`${STARTERS} sessions waiting`, async () => (await lockWaiters('eob', holderPid)) === STARTERS);
      await holder.query('COMMIT');
      assert.deepEqual(await Promise.all(created), Array(STARTERS).fill(undefined));
      // The lock let one creator in; it met the holder's row and failed once, then found the table.
      assert.deepEqual(creators.flatMap((c) => c.refused), ['23505']);
    } finally {
      await Promise.all([holder.end(), ...creators.map((c) => c.end())]);
    }
  });

  test('start-up retries a race within its timeout, naming the statement and SQLSTATE; with no time left the race is the error', async () => {
    const url = server().url;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const holderPid = await backendPid(holder);
    try {
      for (const timeoutMs of [60_000, 0]) {
        const topic = `retry_${randomUUID().slice(0, 8)}`;
        await holder.query('BEGIN');
        await holder.query(PLAIN_CREATE(topic));
        const log: string[] = [];
        // The set-up as it was before the schema lock, so the race reaches start-up.
        const started = waitForDatabase(url, timeoutMs, (line) => log.push(line), { role: 'test', create: (db) => db.query(PLAIN_CREATE(topic)) }).then(
          () => undefined,
          (error: unknown) => error as Error,
        );
        await until('the set-up to wait', async () => (await lockWaiters('eob', holderPid)) === 1);
        await holder.query('COMMIT');
        const error = await started;
        const named = `\`CREATE TABLE IF NOT EXISTS "watermill_${topic}"\``;
        if (timeoutMs > 0) {
          assert.equal(error, undefined);
          assert.equal(log.length, 1, log.join('\n'));
          assert.ok(log[0]!.startsWith(`database set-up met another process setting up the same objects (${named}: SQLSTATE 23505: duplicate key`), log[0]);
        } else {
          assert.ok(error !== undefined, 'no time left: the race is the error');
          assert.match(error.message, /^setting up the database at postgres:\/\/postgres:\*\*\*@.* kept meeting other processes setting up the same objects \(still failing after 0 ms: /);
          assert.ok(error.message.includes(`${named} failed with SQLSTATE 23505: duplicate key value violates unique constraint`), error.message);
          assert.doesNotMatch(error.message, /cannot reach|password/);
        }
      }
    } finally {
      await holder.end();
    }
  });

  test('a lock held longer than the start-up timeout ends the wait: the race is the error, not a hang', { timeout: 60_000 }, async () => {
    const url = server().url;
    const topic = `held_${randomUUID().slice(0, 8)}`;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      // An eob creator that never commits (a process stopped mid-creation, SIGSTOP): it keeps the schema lock.
      await holder.query('BEGIN');
      await createPgMessagesTable(clientExecutor(holder), topic);
      const create = { role: 'test', create: (db: SqlExecutor) => postgresEngine.ensureSchema(db, { topic, mode: 'offset', dedup: false }) };
      await assert.rejects(waitForDatabase(url, 1_500, () => undefined, create), (error: Error) => {
        assert.match(error.message, /kept meeting other processes setting up the same objects \(still failing after 1500 ms: `SELECT pg_advisory_xact_lock\(\d+, -?\d+\)` failed with SQLSTATE 55P03: canceling statement due to lock timeout\)$/);
        return true;
      });
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  test('a SQL error at start-up fails at once, naming the statement and SQLSTATE; a refused login is not "cannot reach"', async () => {
    const role = `limited_${randomUUID().slice(0, 8)}`;
    await withClient('eob', (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'secret'`));
    const limited = new URL(server().url);
    limited.username = role;
    limited.password = 'secret';
    const topic = `denied_${randomUUID().slice(0, 8)}`;
    const log: string[] = [];
    const create = { role: 'test', create: (db: SqlExecutor) => postgresEngine.ensureSchema(db, { topic, mode: 'offset', dedup: false }) };
    // PostgreSQL 15 and later: only the database owner may create in schema public.
    await assert.rejects(waitForDatabase(limited.toString(), 60_000, (line) => log.push(line), create), (error: Error) => {
      assert.equal(
        error.message,
        `SQL error at start-up on the database at postgres://${role}:***@127.0.0.1:${limited.port}/eob: \`CREATE TABLE IF NOT EXISTS "watermill_${topic}"\` failed with SQLSTATE 42501: permission denied for schema public; check the user, password and privileges in the URL`,
      );
      return true;
    });
    limited.password = 'wrong';
    await assert.rejects(waitForDatabase(limited.toString(), 60_000, (line) => log.push(line), create), (error: Error) => {
      assert.match(error.message, /^SQL error at start-up on the database at .*: connecting failed with SQLSTATE 28P01: password authentication failed for user ".*"; check the user, password and privileges in the URL$/);
      return true;
    });
    assert.deepEqual(log, [], 'neither is retried');
  });

  test('a connection failure is "cannot reach", after retries for the start-up timeout', async () => {
    const url = `postgres://postgres:secret@127.0.0.1:${await findFreePort()}/eob`;
    const log: string[] = [];
    await assert.rejects(waitForDatabase(url, 300, (line) => log.push(line)), (error: Error) => {
      assert.match(error.message, /^cannot reach the database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/eob: ECONNREFUSED: .*\(still failing after 300 ms: is the server running\? start one with `eob db start`/);
      return true;
    });
    assert.ok(log.length > 0 && log.every((line) => line.startsWith('database not reachable yet (ECONNREFUSED')), log.join('\n'));
  });
});

describe('start-up with the overlap forced, MariaDB', () => {
  const server = usePrivateDatabase();

  for (const fresh of ['database', 'topic'] as const) {
    test(`${STARTERS} servers and workers, a new ${fresh}, released together from FLUSH TABLES WITH READ LOCK`, async () => {
      const database = fresh === 'database' ? `race_${randomUUID().slice(0, 8)}` : 'eob';
      const topic = `race_${randomUUID().slice(0, 8)}`;
      const holder = await mysql.createConnection({ uri: server().url });
      try {
        // Every DDL statement (CREATE DATABASE and CREATE TABLE alike) waits for the backup lock this holds.
        await holder.query('FLUSH TABLES WITH READ LOCK');
        const waiting = async (): Promise<number> => {
          const [rows] = await holder.query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for backup lock'`);
          return Number((rows as { n: number }[])[0]?.n ?? 0);
        };
        await forceOverlap(starters(withDatabase(server().url, database), topic), waiting, async () => {
          await holder.query('UNLOCK TABLES').catch(() => undefined);
        });
        await assertTablesExist(withDatabase(server().url, database), topic);
      } finally {
        await holder.end();
      }
    });
  }

  test('a SQL error at start-up fails at once, naming the statement and SQLSTATE; a refused login is not "cannot reach"', async () => {
    const user = `limited_${randomUUID().slice(0, 8)}`;
    const admin = await mysql.createConnection({ uri: server().url });
    try {
      await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'secret'`);
      await admin.query(`GRANT SELECT ON \`eob\`.* TO '${user}'@'%'`);
    } finally {
      await admin.end();
    }
    const limited = new URL(server().url);
    limited.username = user;
    limited.password = 'secret';
    const topic = `denied_${randomUUID().slice(0, 8)}`;
    const log: string[] = [];
    const create = { role: 'test', create: (db: SqlExecutor, engine: SqlEngine) => engine.ensureSchema(db, { topic, mode: 'offset', dedup: false }) };
    await assert.rejects(waitForDatabase(limited.toString(), 60_000, (line) => log.push(line), create), (error: Error) => {
      assert.match(
        error.message,
        // A user without CREATE on the database cannot run CREATE DATABASE IF NOT EXISTS, even when it exists.
        new RegExp(`^SQL error at start-up on the database at mysql://${user}:\\*\\*\\*@127\\.0\\.0\\.1:${limited.port}/eob: \`CREATE DATABASE IF NOT EXISTS \`eob\`\` failed with SQLSTATE 42000 \\(ER_DBACCESS_DENIED_ERROR 1044\\): Access denied for user .*; check the user, password and privileges in the URL$`),
      );
      return true;
    });
    limited.password = 'wrong';
    await assert.rejects(waitForDatabase(limited.toString(), 60_000, (line) => log.push(line), create), (error: Error) => {
      assert.match(error.message, /^SQL error at start-up on the database at .*: connecting failed with SQLSTATE 28000 \(ER_ACCESS_DENIED_ERROR 1045\): Access denied for user .*; check the user, password and privileges in the URL$/);
      return true;
    });
    assert.deepEqual(log, [], 'neither is retried');
  });
});

const galera = await galeraMissing();

/**
 * How long the cluster waits for a silent member before it suspects and drops it (5 s by default): longer than
 * this test holds node 3 stopped, so the node stays a member and the others wait for it.
 */
const SUSPECT_TIMEOUT = ['evs.suspect_timeout=PT90S', 'evs.inactive_timeout=PT120S'];

describe('start-up with the overlap forced, MariaDB Galera', { skip: galera }, () => {
  const cluster = useGaleraCluster(3, SUSPECT_TIMEOUT);

  test(`${STARTERS} servers and workers on 2 of 3 nodes, a new database and topic, released together when the stopped third node resumes`, async () => {
    const database = `race_${randomUUID().slice(0, 8)}`;
    const topic = `race_${randomUUID().slice(0, 8)}`;
    // FLUSH TABLES WITH READ LOCK cannot hold them here: a Galera node under it refuses DDL at once (1047,
    // "Aborting TOI: Replication paused on node for FTWRL"). A stopped member holds the cluster's total order
    // instead: every DDL (TOI) waits to be ordered until it answers again.
    const watchers = await Promise.all([1, 2].map((n) => mysql.createConnection({ uri: cluster().urlOf(n) })));
    const third = cluster().node(3).server;
    third.pause();
    try {
      const waiting = async (): Promise<number> => {
        let n = 0;
        for (const w of watchers) {
          const [rows] = await w.query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'CREATE DATABASE%' AND ID <> CONNECTION_ID()`);
          n += Number((rows as { n: number }[])[0]?.n ?? 0);
        }
        return n;
      };
      const urls = [1, 2].map((n) => withDatabase(cluster().urlOf(n), database));
      await forceOverlap(starters(urls, topic), waiting, async () => third.resume());
      for (const n of [1, 2, 3]) await assertTablesExist(withDatabase(cluster().urlOf(n), database), topic);
    } finally {
      third.resume();
      await Promise.all(watchers.map((w) => w.end()));
    }
  });
});
