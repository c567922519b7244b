// Runs one drain-kill case (drainKill.ts) on a private PostgreSQL of its own: the backlog, the drainer's worker
// (ours through the system under test, a peer's in its own process), a SIGKILL each time the backlog reaches one
// of the case's fractions, the drainer's recovery (ours: start again; a peer: what its documentation says, then
// start again), the drain to its end, and the count: every counter against the jobs (messages) completed.
import { randomUUID } from 'node:crypto';
import { SystemUnderTest } from '../../harness/systemUnderTest.ts';
import type { ChildService } from '../../harness/childService.ts';
import { startSampler, type Sampler } from '../../bench/sampler.ts';
import { checkConsumption } from '../../bench/tableReads.ts';
import { makeCounterIds } from '../../bench/load.ts';
import { peerGuarantee, peerVersion } from '../../bench/peers/peerSpec.ts';
import { analyzePgTopic } from '../../system/sql/postgres/observation.ts';
import type { OutgoingMessage } from '../../system/pubsub/types.ts';
import { checkPeerDrain, peerQueueOf, peerWorkerChild, preparePeerBacklog, startPeerSampler, type PeerDrainTarget } from '../throughput/peerDrain.ts';
import { drainKillMet, PEER_CLAIM_TIMEOUT_S, type DrainKill, type DrainKillCase, type DrainKillResult } from './drainKill.ts';
import { DEFAULT_CHAOS_RUN_OPTIONS, type ChaosRunOptions, GROUP, TOPIC } from './options.ts';

/** Progress readings while a kill is awaited: at our drain's ~50,000 msgs/s a 20 ms sample lands within ~1,000 messages of the fraction. */
const OURS_SAMPLE_MS = 20;
const PEER_SAMPLE_MS = 100;

/**
 * How long the drain may take after its last kill: a minute, plus 2 ms a job (a floor of 500 jobs/s, a third of
 * the slowest peer measured here), plus a peer's claim timeout per kill.
 */
function drainBoundMs(c: DrainKillCase): number {
  return 60_000 + c.jobs * 2 + (c.drainer.kind === 'peer' ? c.killAt.length * PEER_CLAIM_TIMEOUT_S * 1000 : 0);
}

/**
 * The plan's estimate of a case's seconds, for the time left on the progress bar: the private server's start
 * and the backlog (~5 s), the drain at the rates measured here (ours ~40,000 msgs/s, graphile-worker's counter
 * task ~1,500 jobs/s, pg-boss ~10,000), and each kill's restart (~1.5 s) with pg-boss's claim timeout before its
 * jobs are handed out again.
 */
export function estimateDrainKillSeconds(c: DrainKillCase): number {
  const rate = c.drainer.kind === 'ours' ? 40_000 : c.drainer.spec.peer === 'graphile-worker' ? 1_500 : 10_000;
  const perKill = 1.5 + (c.drainer.kind === 'peer' && c.drainer.spec.peer === 'pg-boss' ? PEER_CLAIM_TIMEOUT_S + 1 : 0);
  return 5 + c.jobs / 25_000 + c.jobs / rate + c.killAt.length * perKill;
}

/** Our backlog: `n` messages round-robin over `counters`, in multi-row INSERTs, then analyzed (as the bench's). */
async function writeOurBacklog(sut: SystemUnderTest, n: number, counters: readonly string[]): Promise<void> {
  const engine = sut.sql;
  await engine.ensureSchema(sut.db, { topic: TOPIC, mode: 'offset', dedup: false });
  await engine.ensureGroup(sut.db, { topic: TOPIC, consumerGroup: GROUP });
  await engine.truncateTopic(sut.db, { topic: TOPIC });
  for (let start = 0; start < n; start += 1_000) {
    const messages: OutgoingMessage[] = [];
    for (let i = start; i < Math.min(n, start + 1_000); i += 1) messages.push({ uuid: randomUUID(), payload: { counter_uuid: counters[i % counters.length] }, metadata: {} });
    await engine.publish(sut.db, { topic: TOPIC, mode: 'offset', messages });
  }
  await analyzePgTopic(sut.db, TOPIC);
}

/** Kills the worker each time the drain reaches the next fraction, recovering and restarting it after each. */
async function killAlong(c: DrainKillCase, sampler: Sampler, worker: ChildService, recover: () => Promise<number | undefined>, signal: AbortSignal | undefined): Promise<DrainKill[]> {
  const kills: DrainKill[] = [];
  for (const fraction of c.killAt) {
    const at = Math.ceil(fraction * c.jobs);
    const reached = await sampler.waitFor((s) => s.progress >= at, drainBoundMs(c), signal);
    if (!reached || signal?.aborted === true) break;
    await worker.kill('SIGKILL');
    const atJobs = (await sampler.latest()).progress;
    if (atJobs >= c.jobs) break; // done before the kill landed: it killed an idle worker
    const freedJobs = await recover();
    kills.push({ atJobs, freedJobs });
    await worker.start();
  }
  return kills;
}

export async function runDrainKillCase(c: DrainKillCase, options: Partial<ChaosRunOptions> = {}): Promise<DrainKillResult> {
  const o: ChaosRunOptions = { ...DEFAULT_CHAOS_RUN_OPTIONS, ...options };
  const started = performance.now();
  const peer = c.drainer.kind === 'peer' ? c.drainer.spec : undefined;
  const result: DrainKillResult = {
    case: c,
    engine: 'postgres',
    version: peer === undefined ? 'this commit' : peerVersion(peer.peer),
    guarantee: peer === undefined ? 'exactly-once: the effect and the ack commit in one transaction' : peerGuarantee(peer.task),
    kills: [],
    drained: false,
    jobsCompleted: undefined,
    counterTotal: undefined,
    lost: undefined,
    duplicated: undefined,
    passed: false,
    why: '',
    durationMs: 0,
    databaseVersion: undefined,
    error: undefined,
    interrupted: false,
  };
  let sut: SystemUnderTest | undefined;
  try {
    sut = await SystemUnderTest.start({ engine: 'postgres', databaseUrl: o.databaseUrl, postgresBinDir: o.postgresBinDir, handleSignals: false, log: (line) => o.log(`${c.name}: ${line}`) });
    const s = sut;
    result.databaseVersion = (await s.serverFacts()).version;
    const counters = makeCounterIds(c.counters);
    if (c.drainer.kind === 'ours') {
      o.onPhase?.(c.name, 'backlog');
      await writeOurBacklog(s, c.jobs, counters);
      const sampler = await startSampler(s.db, { engine: s.sql, mode: 'offset', topic: TOPIC, consumerGroup: GROUP, intervalMs: OURS_SAMPLE_MS });
      try {
        o.onPhase?.(c.name, 'drain with kills');
        const worker = await s.startWorker({ mode: 'offset', topic: TOPIC, consumerGroup: GROUP, batchSize: c.drainer.batchSize });
        // Ours needs nothing but a new worker: the dead one's transaction rolled back with its connection.
        result.kills = await killAlong(c, sampler, worker, async () => undefined, o.signal);
        result.drained = await sampler.waitFor((x) => x.progress >= c.jobs, drainBoundMs(c), o.signal);
        await s.stopService(worker);
      } finally {
        await sampler.stop();
      }
      const { consumption, check } = await checkConsumption(s.db, s.sql, { mode: 'offset', topic: TOPIC, consumerGroup: GROUP });
      result.drained = result.drained && consumption.drained;
      result.jobsCompleted = check.expectedTotal;
      result.counterTotal = check.countedTotal;
      result.lost = check.lost;
      result.duplicated = check.duplicated;
    } else {
      const target: PeerDrainTarget = {
        spec: c.drainer.spec,
        databaseUrl: s.databaseUrl,
        db: s.db,
        database: s.database,
        sql: s.sql,
        topic: TOPIC,
        counters,
        jobs: c.jobs,
        prepare: { claimTimeoutS: PEER_CLAIM_TIMEOUT_S },
      };
      o.onPhase?.(c.name, 'backlog');
      const enqueued = await preparePeerBacklog(target);
      const queue = peerQueueOf(target);
      const sampler = await startPeerSampler(target, PEER_SAMPLE_MS);
      const worker = peerWorkerChild(target, { startTimeoutMs: s.options.childStartTimeoutMs, stopTimeoutMs: s.options.childStopTimeoutMs });
      try {
        o.onPhase?.(c.name, 'drain with kills');
        await worker.start();
        result.kills = await killAlong(c, sampler, worker, () => queue.recoverAfterKill(s.databaseUrl, s.db, target.prepare), o.signal);
        result.drained = await sampler.waitFor((x) => x.progress >= c.jobs, drainBoundMs(c), o.signal);
      } finally {
        await sampler.stop();
        await worker.stop();
      }
      const check = await checkPeerDrain(target, enqueued);
      result.jobsCompleted = check.jobsCompleted;
      result.counterTotal = check.counterTotal;
      result.lost = check.counters?.lost;
      result.duplicated = check.counters?.duplicated;
    }
    const met = drainKillMet(c, result);
    result.passed = met.passed;
    result.why = met.why;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    result.why = `error: ${result.error}`;
    o.log(`${c.name}: ${result.error}`);
  } finally {
    await sut?.close().catch((e: Error) => o.log(`${c.name}: close failed: ${e.message}`));
  }
  result.interrupted = o.signal?.aborted === true;
  if (result.interrupted) result.passed = false;
  result.durationMs = performance.now() - started;
  return result;
}
