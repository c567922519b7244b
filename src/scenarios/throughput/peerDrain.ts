// A peer job queue's drain of a backlog, the parts the bench's peer points and the chaos harness's worker-kill
// cases share: the backlog (the counter table emptied, the peer's queue filled with the peer's own API), the
// peer's worker as a child process (bench/peers/peerProcess.ts, so its CPU is read apart from the harness's and
// it can be SIGKILLed), a sampler of the jobs it completed read from the peer's tables, and the check of the
// counters against the jobs completed. Measurement comes from the database, never from the peer's report.
import { ChildService } from '../../harness/childService.ts';
import { processCpuSeconds } from '../../harness/processCpu.ts';
import { startReadingSampler, type Sampler } from '../../bench/sampler.ts';
import { checkCounters, type CounterCheck } from '../../bench/counterCheck.ts';
import { PEER_QUEUES } from '../../bench/peers/peers.ts';
import { peerCommand } from '../../bench/peers/peerCommand.ts';
import { enqueuedPerCounter, type PeerQueue, type PrepareOptions } from '../../bench/peers/peerQueue.ts';
import type { PeerSpec } from '../../bench/peers/peerSpec.ts';
import type { SqlExecutor } from '../../system/pubsub/types.ts';
import type { SqlEngine } from '../../system/sql/engine.ts';
import type { Database } from '../../system/db/database.ts';
import { selectPgBackendPid } from '../../system/sql/postgres/sessions.ts';

/**
 * How often the peer's completed jobs are read. One reading counts rows of the peer's job table (9 ms for
 * graphile-worker's, ~40 ms for pg-boss's at a 150,000-job backlog here); the rate is exact between the samples
 * it is read from, so coarse samples cost nothing but the start-up's granularity. Their database CPU is taken
 * out of the peer's (PeerSampler.readingsCpuSeconds).
 */
export const PEER_SAMPLE_MS = 500;

export interface PeerDrainTarget {
  spec: PeerSpec;
  databaseUrl: string;
  /** The harness's own connections: the counter table, the peer's tables. */
  db: SqlExecutor;
  /** The pool `db` runs on: the sampler takes a connection of its own from it. */
  database: Database;
  sql: SqlEngine;
  /** The topic whose tables (and `counter`) are emptied first: `counter` is the effect table ours and the peers' share. */
  topic: string;
  counters: readonly string[];
  jobs: number;
  prepare?: PrepareOptions;
}

/** The queue of the target's peer. */
export function peerQueueOf(t: PeerDrainTarget): PeerQueue {
  return PEER_QUEUES[t.spec.peer];
}

/**
 * Empties `counter` (and the topic's tables, as a bench point's reset does), installs the peer's schema with an
 * empty queue, and enqueues the backlog. Resolves with the jobs enqueued per counter.
 */
export async function preparePeerBacklog(t: PeerDrainTarget): Promise<Map<string, number>> {
  await t.sql.ensureSchema(t.db, { topic: t.topic, mode: 'offset', dedup: false });
  await t.sql.truncateTopic(t.db, { topic: t.topic });
  const queue = peerQueueOf(t);
  await queue.prepare(t.databaseUrl, t.prepare);
  await queue.enqueue(t.databaseUrl, t.db, t.counters, t.jobs);
  return enqueuedPerCounter(t.counters, t.jobs);
}

/** The peer's worker process, not started yet. */
export function peerWorkerChild(t: PeerDrainTarget, timeouts: { startTimeoutMs: number; stopTimeoutMs: number }, name = `peer ${t.spec.peer}`): ChildService {
  const c = peerCommand(t.spec, t.databaseUrl);
  return new ChildService({ name, command: c.command, args: c.args, env: c.env, readiness: { kind: 'line', pattern: c.readyPattern }, ...timeouts });
}

/** The sampler of a peer's drain, on a connection of its own. */
export interface PeerSampler extends Sampler {
  /** Jobs completed now, read on the sampler's connection (its CPU is counted with the readings'). */
  countCompleted(): Promise<number>;
  /**
   * CPU seconds of the server process behind the sampler's connection so far: the readings' own database time,
   * which a PostgreSQL backend spends in a process of its own (undefined with a database not on this machine).
   * A 400,000-job pg-boss table took ~100 ms a reading, half a core at 500 ms; the peer's database CPU is
   * taken without it. (Our drain's database CPU includes its sampler's, ~3 ms every 20 ms.)
   */
  readingsCpuSeconds(): number | undefined;
}

/** Samples the jobs completed (progress) against the backlog (published), every `intervalMs`, on a connection of its own. */
export async function startPeerSampler(t: PeerDrainTarget, intervalMs = PEER_SAMPLE_MS): Promise<PeerSampler> {
  const queue = peerQueueOf(t);
  const session = await t.database.session();
  try {
    const backendPid = await selectPgBackendPid(session);
    const sampler = await startReadingSampler(session, async (db, atMs) => ({ atMs, progress: await queue.countCompleted(db, t.jobs), published: t.jobs }), intervalMs);
    return {
      get samples() {
        return sampler.samples;
      },
      latest: () => sampler.latest(),
      waitFor: (predicate, timeoutMs, signal) => sampler.waitFor(predicate, timeoutMs, signal),
      countCompleted: () => queue.countCompleted(session, t.jobs),
      readingsCpuSeconds: () => processCpuSeconds(backendPid),
      async stop() {
        try {
          await sampler.stop();
        } finally {
          session.release();
        }
      },
    };
  } catch (error) {
    session.destroy();
    throw error;
  }
}

/** What a peer's drain left: jobs completed, and the counters against them. */
export interface PeerCheck {
  jobsCompleted: number;
  /** Counter tasks: every counter against the jobs of it completed (lost: completed without its effect; duplicated: effects beyond the completions). */
  counters: CounterCheck | undefined;
  /** The no-op task: the sum of every counter, which must stay 0. */
  counterTotal: number;
}

/**
 * After the peer's worker stopped: the jobs the peer's tables say it completed, per counter, against `counter`.
 * A counter task must have added exactly one per completed job; more is a job whose effect was applied twice (or
 * applied and not yet completed), less a job completed without its effect.
 */
export async function checkPeerDrain(t: PeerDrainTarget, enqueued: ReadonlyMap<string, number>): Promise<PeerCheck> {
  const completed = await peerQueueOf(t).completedPerCounter(t.db, enqueued);
  const actual = await t.sql.selectAllCounters(t.db);
  let jobsCompleted = 0;
  for (const n of completed.values()) jobsCompleted += n;
  let counterTotal = 0;
  for (const v of actual.values()) counterTotal += v;
  return { jobsCompleted, counters: t.spec.task === 'noop' ? undefined : checkCounters(completed, actual), counterTotal };
}
