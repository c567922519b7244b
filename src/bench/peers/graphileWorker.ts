// graphile-worker as a peer: its migrations and its bulk addJobs fill the queue, its runner (run()) works it
// with the settings of its performance page (peerSpec.ts), and its jobs table is read to count what it
// completed. All SQL this project sends to graphile-worker's tables is here; graphile-worker deletes a job
// when it completes it, so "completed" is "enqueued and no longer in the table".
import { Logger, makeWorkerUtils, run, runMigrations, type Task } from 'graphile-worker';
import { GRAPHILE_WORKER_SETTINGS, type PeerTask } from './peerSpec.ts';
import { counterOf, counterUpsertFor, insertChunks, jobPayloadChunks, type PeerQueue, type RunningPeer } from './peerQueue.ts';

/** The task identifier every job is added under; the worker's process maps it to the task it was started with. */
const TASK_IDENTIFIER = 'eob_peer_job';

/** graphile-worker's jobs table (its default schema); private to it, read here only to count. */
const JOBS_TABLE = 'graphile_worker._private_jobs';

/** Jobs per addJobs call: one statement each, well under PostgreSQL's parameter limit (the payloads travel as one JSON array). */
const ENQUEUE_CHUNK = 5_000;

/** addJobs calls in flight at once while enqueueing. */
const ENQUEUE_PARALLEL = 3;

/** graphile-worker's log lines at warn and error only (its info lines would fill the child's output tail). */
function quietLogger(log: (line: string) => void): Logger {
  return new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') log(`graphile-worker ${level}: ${message}`);
  });
}

function taskFor(task: PeerTask): Task {
  switch (task) {
    case 'noop':
      return async () => undefined;
    case 'counter':
      // The job's effect on the worker's own pool, committed (autocommit) before graphile-worker completes the
      // job in a statement of its own, batched with others (completeJobBatchDelay): at-least-once.
      return async (payload, helpers) => {
        const { sql, values } = counterUpsertFor([payload]);
        await helpers.withPgClient((client) => client.query(sql, values));
      };
    case 'counter-in-completion':
      throw new Error('graphile-worker completes a job apart from its task: it has no counter-in-completion task');
  }
}

export const graphileWorkerQueue: PeerQueue = {
  name: 'graphile-worker',

  async prepare(databaseUrl) {
    await runMigrations({ connectionString: databaseUrl, logger: quietLogger(() => undefined) });
    const utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: quietLogger(() => undefined) });
    try {
      // Housekeeping between points, with no worker running: the queue starts empty.
      await utils.withPgClient((client) => client.query(`TRUNCATE ${JOBS_TABLE}`));
    } finally {
      await utils.release();
    }
  },

  async enqueue(databaseUrl, db, counters, n) {
    const utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: quietLogger(() => undefined) });
    try {
      await insertChunks(jobPayloadChunks(counters, n, ENQUEUE_CHUNK), ENQUEUE_PARALLEL, async (chunk) => {
        await utils.addJobs(chunk.map((payload) => ({ identifier: TASK_IDENTIFIER, payload })));
      });
    } finally {
      await utils.release();
    }
    // As for our backlog (publishBacklog): the worker's first fetches run on statistics, not on a table
    // autovacuum has not reached yet.
    await db.query(`ANALYZE ${JOBS_TABLE}`);
  },

  async startWorker(databaseUrl, task, log): Promise<RunningPeer> {
    const s = GRAPHILE_WORKER_SETTINGS;
    const runner = await run({
      noHandleSignals: true,
      logger: quietLogger(log),
      taskList: { [TASK_IDENTIFIER]: taskFor(task) },
      preset: {
        worker: {
          connectionString: databaseUrl,
          concurrentJobs: s.concurrentJobs,
          maxPoolSize: s.maxPoolSize,
          localQueue: { size: s.localQueueSize },
          completeJobBatchDelay: s.completeJobBatchDelayMs,
          failJobBatchDelay: s.failJobBatchDelayMs,
        },
      },
    });
    return { stop: () => runner.stop() };
  },

  async countCompleted(db, enqueued) {
    const rows = await db.query<{ n: string }[]>(`SELECT count(*) AS n FROM ${JOBS_TABLE}`);
    return enqueued - Number(rows[0]?.n ?? 0);
  },

  async completedPerCounter(db, enqueued) {
    const rows = await db.query<{ id: string | null; n: string }[]>(`SELECT payload->>'counter_uuid' AS id, count(*) AS n FROM ${JOBS_TABLE} GROUP BY 1`);
    const left = new Map(rows.map((r) => [counterOf({ counter_uuid: r.id }), Number(r.n)]));
    const out = new Map<string, number>();
    for (const [id, n] of enqueued) out.set(id, n - (left.get(id) ?? 0));
    // A job of a counter that was never enqueued (none should exist) shows as a negative count: not hidden.
    for (const [id, n] of left) if (!enqueued.has(id)) out.set(id, -n);
    return out;
  },

  async recoverAfterKill(databaseUrl, db) {
    // graphile-worker's documented recovery for a worker that "crashed or is otherwise terminated without
    // unlocking its jobs" (admin functions: force unlock workers); without it they stay locked for 4 hours.
    // No worker of this queue runs at this moment, so every lock held is a dead worker's.
    const rows = await db.query<{ locked_by: string; n: string }[]>(`SELECT locked_by, count(*) AS n FROM ${JOBS_TABLE} WHERE locked_by IS NOT NULL GROUP BY locked_by`);
    if (rows.length === 0) return 0;
    const utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: quietLogger(() => undefined) });
    try {
      await utils.forceUnlockWorkers(rows.map((r) => r.locked_by));
    } finally {
      await utils.release();
    }
    return rows.reduce((sum, r) => sum + Number(r.n), 0);
  },

  async clear(_databaseUrl, db) {
    await db.query(`TRUNCATE ${JOBS_TABLE}`);
  },
};
