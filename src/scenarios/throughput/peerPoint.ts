// One peer point of the bench: a peer job queue (graphile-worker, pg-boss) drains a backlog the size of the
// default drain's over the same counters, on the bench's private PostgreSQL, for at most the peer window; its
// rate is read from the peer's tables as the drain's is from ours, its worker's CPU from its own process and the
// database's from the server's, and the counters are checked against the jobs it completed.
import { makeCounterIds } from '../../bench/load.ts';
import { cpuUsPerMessage, drainRate } from '../../bench/metrics.ts';
import { cpuDelta } from '../../harness/processCpu.ts';
import { peerGuarantee, peerSettingsText, peerTaskText, peerVersion } from '../../bench/peers/peerSpec.ts';
import type { PointResult, SweepContext } from './points.ts';
import { checkPeerDrain, peerQueueOf, peerWorkerChild, preparePeerBacklog, startPeerSampler, type PeerDrainTarget } from './peerDrain.ts';

/** What a peer row says about the peer besides its rates. */
export interface PeerFacts {
  version: string;
  /** The peer's settings, in its own option names. */
  settings: string;
  task: string;
  guarantee: string;
  /** Jobs the peer's tables say were completed when its worker had stopped. */
  jobsCompleted?: number;
  /** The no-op task: the sum of the counters, which must stay 0. */
  counterTotal?: number;
}

export async function runPeerPoint(ctx: SweepContext, result: PointResult): Promise<void> {
  const spec = result.point.peer;
  if (spec === undefined) throw new Error(`peer point without a peer: ${JSON.stringify(result.point)}`);
  const n = result.point.backlogMessages ?? ctx.options.backlogMessages;
  result.peer = { version: peerVersion(spec.peer), settings: peerSettingsText(spec), task: peerTaskText(spec), guarantee: peerGuarantee(spec.task) };
  const target: PeerDrainTarget = {
    spec,
    databaseUrl: ctx.sut.databaseUrl,
    db: ctx.sut.db,
    database: ctx.sut.database,
    sql: ctx.sut.sql,
    topic: ctx.options.topic,
    counters: makeCounterIds(ctx.options.counters),
    jobs: n,
  };
  const queue = peerQueueOf(target);
  const enqueued = await preparePeerBacklog(target);
  result.messagesPublished = n;
  const child = peerWorkerChild(target, { startTimeoutMs: ctx.sut.options.childStartTimeoutMs, stopTimeoutMs: ctx.sut.options.childStopTimeoutMs });
  // Awaited: the baseline reading (nothing completed) comes before the worker starts.
  const sampler = await startPeerSampler(target);
  try {
    try {
      await child.start();
      // The CPU window opens once the worker runs (its process's start, module loading included, is left out,
      // as a drain's worker start is) and the jobs counted against it are those completed inside it.
      const cpuWorkerBefore = child.cpuSeconds();
      const completedBefore = await sampler.countCompleted();
      const cpuDbBefore = ctx.sut.dbCpuSeconds();
      const cpuReadingsBefore = sampler.readingsCpuSeconds();
      const crashed = new Promise<string>((resolve) => {
        child.onExit((status, _expected, cause) => {
          if (cause !== 'stopped') resolve(`${child.name} exited (${status.signal ?? `code ${status.code}`}): ${child.outputTail(3).replace(/\n/g, ' | ')}`);
        });
      });
      const outcome = await Promise.race([
        sampler.waitFor((s) => s.progress >= n, ctx.options.peerWindowS * 1000, ctx.signal).then((done) => (done ? 'drained' : 'window')),
        crashed,
      ]);
      result.cpuWorkerS = cpuDelta(cpuWorkerBefore, child.cpuSeconds());
      // The database's CPU over the window but the sampler's own readings (on a backend of their own).
      const readings = cpuDelta(cpuReadingsBefore, sampler.readingsCpuSeconds());
      const db = cpuDelta(cpuDbBefore, ctx.sut.dbCpuSeconds());
      result.cpuDbS = db === undefined || readings === undefined ? undefined : Math.max(0, db - readings);
      const completedAfter = outcome === 'drained' ? n : await sampler.countCompleted();
      result.cpuUsPerMsg.worker = cpuUsPerMessage(result.cpuWorkerS, completedAfter - completedBefore);
      result.cpuUsPerMsg.db = cpuUsPerMessage(result.cpuDbS, completedAfter - completedBefore);
      result.drained = outcome === 'drained';
      if (outcome === 'window' && ctx.signal?.aborted !== true) {
        result.note = `window of ${ctx.options.peerWindowS} s ended at ${completedAfter.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} jobs: rate over those`;
      } else if (outcome !== 'drained' && outcome !== 'window') result.note = outcome;
    } finally {
      await sampler.stop();
      // The peer's graceful stop: jobs in hand finish and complete, jobs fetched ahead go back to the queue.
      await child.stop();
    }
    result.drainMsgsPerS = drainRate(sampler.samples, n).perSecond;
    const check = await checkPeerDrain(target, enqueued);
    result.peer.jobsCompleted = check.jobsCompleted;
    result.peer.counterTotal = check.counterTotal;
    result.messagesConsumed = check.jobsCompleted;
    result.check = check.counters;
    if (check.counters?.verdict === 'invalid') {
      result.note = `${result.note === '' ? '' : `${result.note}; `}counters against the completed jobs: lost ${check.counters.lost}, duplicated ${check.counters.duplicated}`;
    }
    if (spec.task === 'noop' && check.counterTotal !== 0) result.note = `${result.note === '' ? '' : `${result.note}; `}the no-op task left ${check.counterTotal} in the counters`;
  } finally {
    // The next points find no peer job in the database.
    await queue.clear(ctx.sut.databaseUrl, ctx.sut.db).catch((e: Error) => ctx.log(`peer ${spec.peer}: clearing its queue failed: ${e.message}`));
  }
}
