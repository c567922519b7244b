// pg-boss as a peer: its own migrations (start()), createQueue and bulk insert() fill the queue, its work()
// with batch fetch (peerSpec.ts) works it, and its job table is read to count what it completed. All SQL this
// project sends to pg-boss's tables is here; pg-boss keeps a completed job as a row in state 'completed'.
import { PgBoss, type ConstructorOptions, type Job, type WorkOptions } from 'pg-boss';
import { PG_BOSS_SETTINGS, type PeerTask } from './peerSpec.ts';
import { counterOf, counterUpsertFor, insertChunks, jobPayloadChunks, type PeerQueue, type PrepareOptions, type RunningPeer } from './peerQueue.ts';

/** The queue every job goes to. */
const QUEUE = 'eob_peer';

/** pg-boss's job table (its default schema), read here only to count. */
const JOB_TABLE = 'pgboss.job';

/** Jobs per insert() call: one statement each (the jobs travel as one JSON array). */
const ENQUEUE_CHUNK = 5_000;

/** insert() calls in flight at once while enqueueing (the harness's instance has a connection for each). */
const ENQUEUE_PARALLEL = 3;

/**
 * An instance for the harness's own calls (schema, queue, inserts, recovery): no background supervision or
 * cron of its own, so nothing of it runs while the peer's worker is measured.
 */
function harnessBoss(databaseUrl: string, extra: Partial<ConstructorOptions> = {}): PgBoss {
  const boss = new PgBoss({ connectionString: databaseUrl, supervise: false, schedule: false, max: ENQUEUE_PARALLEL + 1, ...extra });
  boss.on('error', () => undefined);
  return boss;
}

async function withBoss<T>(boss: PgBoss, use: (boss: PgBoss) => Promise<T>): Promise<T> {
  await boss.start();
  try {
    return await use(boss);
  } finally {
    await boss.stop({ graceful: false });
  }
}

type Handler = (jobs: Job<object>[], tx?: { executeSql(text: string, values?: unknown[]): Promise<unknown> }) => Promise<void>;

function handlerFor(task: PeerTask, boss: PgBoss): Handler {
  switch (task) {
    case 'noop':
      return async () => undefined;
    case 'counter':
      // One upsert for the fetched batch on pg-boss's pool, committed (autocommit) before pg-boss completes the
      // batch in a statement of its own: at-least-once.
      return async (jobs) => {
        const { sql, values } = counterUpsertFor(jobs.map((j) => j.data));
        await boss.getDb().executeSql(sql, values);
      };
    case 'counter-in-completion':
      // pg-boss's transactional worker: the handler writes through the transaction that completes the batch.
      return async (jobs, tx) => {
        if (tx === undefined) throw new Error('pg-boss handed no transaction to a transactional handler');
        const { sql, values } = counterUpsertFor(jobs.map((j) => j.data));
        await tx.executeSql(sql, values);
      };
  }
}

export const pgBossQueue: PeerQueue = {
  name: 'pg-boss',

  async prepare(databaseUrl, o: PrepareOptions = {}) {
    await withBoss(harnessBoss(databaseUrl), async (boss) => {
      await boss.deleteQueue(QUEUE);
      await boss.createQueue(QUEUE, o.claimTimeoutS === undefined ? {} : { expireInSeconds: o.claimTimeoutS });
    });
  },

  async enqueue(databaseUrl, db, counters, n) {
    await withBoss(harnessBoss(databaseUrl), async (boss) => {
      await insertChunks(jobPayloadChunks(counters, n, ENQUEUE_CHUNK), ENQUEUE_PARALLEL, async (chunk) => {
        await boss.insert(QUEUE, chunk.map((data) => ({ data })));
      });
    });
    // As for our backlog (publishBacklog): the worker's first fetches run on statistics.
    await db.query(`ANALYZE ${JOB_TABLE}`);
  },

  async startWorker(databaseUrl, task, log): Promise<RunningPeer> {
    // pg-boss's defaults but for the worker options of peerSpec.ts (its supervisor and cron run as a user's would).
    const boss = new PgBoss({ connectionString: databaseUrl });
    boss.on('error', (error: Error) => log(`pg-boss error: ${error.message}`));
    await boss.start();
    const options: WorkOptions = { ...PG_BOSS_SETTINGS, ...(task === 'counter-in-completion' ? { transactional: true } : {}) };
    await boss.work(QUEUE, options, handlerFor(task, boss) as never);
    return { stop: () => boss.stop({ graceful: true }) };
  },

  async countCompleted(db) {
    const rows = await db.query<{ n: string }[]>(`SELECT count(*) AS n FROM ${JOB_TABLE} WHERE name = $1 AND state = 'completed'`, [QUEUE]);
    return Number(rows[0]?.n ?? 0);
  },

  async completedPerCounter(db) {
    const rows = await db.query<{ id: string | null; n: string }[]>(
      `SELECT data->>'counter_uuid' AS id, count(*) AS n FROM ${JOB_TABLE} WHERE name = $1 AND state = 'completed' GROUP BY 1`,
      [QUEUE],
    );
    return new Map(rows.map((r) => [counterOf({ counter_uuid: r.id }), Number(r.n)]));
  },

  async recoverAfterKill(databaseUrl, db, o: PrepareOptions = {}) {
    // pg-boss's own recovery: a job left active past its queue's expireInSeconds is failed by the supervisor and
    // retried (retryLimit 2 by default). supervise() runs that pass on demand; at most once a monitor interval,
    // so this instance's is 1 s, the shortest pg-boss takes.
    const active = async () => {
      const rows = await db.query<{ n: string }[]>(`SELECT count(*) AS n FROM ${JOB_TABLE} WHERE name = $1 AND state = 'active'`, [QUEUE]);
      return Number(rows[0]?.n ?? 0);
    };
    const held = await active();
    if (held === 0) return 0;
    const deadline = Date.now() + ((o.claimTimeoutS ?? 900) + 30) * 1000;
    await withBoss(harnessBoss(databaseUrl, { monitorIntervalSeconds: 1 }), async (boss) => {
      while ((await active()) > 0) {
        if (Date.now() > deadline) throw new Error(`pg-boss: ${await active()} job(s) still active ${(o.claimTimeoutS ?? 900) + 30} s after the kill`);
        await boss.supervise(QUEUE);
        await new Promise((r) => setTimeout(r, 1_100));
      }
    });
    return held;
  },

  async clear(databaseUrl) {
    await withBoss(harnessBoss(databaseUrl), (boss) => boss.deleteQueue(QUEUE));
  },
};
