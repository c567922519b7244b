// The peers the bench measures beside the PostgreSQL drain: which job queues (graphile-worker, pg-boss, both
// from npm as development dependencies of the bench), which tasks they run, the settings each runs with (its
// own documentation's advice for throughput, with where it says so), the guarantee each task gives, and the
// version installed. A peer is another project's queue used as its users would use it, not a system of ours.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { OptionsError, oneOf } from '../../validate.ts';

export const PEER_NAMES = ['graphile-worker', 'pg-boss'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/**
 * What a job does. noop: nothing (the queue's own cost). counter: the counter upsert our worker sends, in a
 * transaction of its own before the job's completion (at-least-once). counter-in-completion: the same upsert in
 * the transaction that completes the job (pg-boss's `transactional` worker; graphile-worker has no such mode).
 */
export const PEER_TASKS = ['noop', 'counter', 'counter-in-completion'] as const;
export type PeerTask = (typeof PEER_TASKS)[number];

/** One peer configuration the bench runs: the peer and its task. */
export interface PeerSpec {
  peer: PeerName;
  task: PeerTask;
}

/**
 * graphile-worker's settings: the configuration of its documentation's performance page (website/docs/
 * performance.md, "Quick stats": 24 concurrent jobs on a pool of 25 connections, the local queue of 500 jobs
 * fetched in one batch, completions and failures batched with a delay of 0 ms), which its batching section
 * recommends for "a high throughput job queue". One worker process: the page's 4 were on a 24-core machine,
 * and this one has 2 cores, as our drain's one worker does.
 */
export const GRAPHILE_WORKER_SETTINGS = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueueSize: 500,
  completeJobBatchDelayMs: 0,
  failJobBatchDelayMs: 0,
} as const;

/**
 * pg-boss's settings: batch fetch (its workers' `batchSize`, the handler gets the batch), the batch the size of
 * our drain's (1000), fetched back to back while batches come back full (`burstWhenBatchFull`, its docs'
 * option for a backlog), at the shortest poll its docs allow (0.5 s) for the first one. `localConcurrency`
 * (workers polling in parallel in the one process) was chosen here by measurement, 50,000 jobs with the
 * counter task on the private PostgreSQL 15 at a load average of 7-10: 1 worker 5,720 jobs/s, 2 10,407 and
 * 13,542, 4 14,435 and 14,574, 8 12,690. Everything else is pg-boss's default.
 */
export const PG_BOSS_SETTINGS = {
  batchSize: 1000,
  localConcurrency: 4,
  burstWhenBatchFull: true,
  pollingIntervalSeconds: 0.5,
} as const;

/** The settings of a peer as one CSV cell: `name=value` pairs, space-separated, in the peer's own option names. */
export function peerSettingsText(spec: PeerSpec): string {
  if (spec.peer === 'graphile-worker') {
    const s = GRAPHILE_WORKER_SETTINGS;
    return `concurrentJobs=${s.concurrentJobs} maxPoolSize=${s.maxPoolSize} localQueue.size=${s.localQueueSize} completeJobBatchDelay=${s.completeJobBatchDelayMs} failJobBatchDelay=${s.failJobBatchDelayMs}`;
  }
  const s = PG_BOSS_SETTINGS;
  const base = `batchSize=${s.batchSize} localConcurrency=${s.localConcurrency} burstWhenBatchFull=${s.burstWhenBatchFull} pollingIntervalSeconds=${s.pollingIntervalSeconds}`;
  return spec.task === 'counter-in-completion' ? `${base} transactional=true` : base;
}

/** How the task's effect commits relative to the job's completion, as a CSV cell. */
export function peerGuarantee(task: PeerTask): string {
  switch (task) {
    case 'noop':
      return 'no effect (the queue alone)';
    case 'counter':
      return 'at-least-once: the effect commits before and apart from the completion';
    case 'counter-in-completion':
      return 'effect and completion in one transaction';
  }
}

/** How the task's effect is applied, as a CSV cell: one upsert per job (graphile-worker) or per fetched batch (pg-boss). */
export function peerTaskText(spec: PeerSpec): string {
  if (spec.task === 'noop') return 'noop';
  const per = spec.peer === 'graphile-worker' ? 'per job' : 'per fetched batch';
  return `${spec.task}, one counter upsert ${per}`;
}

/** A spec checked field by field: a peer the bench knows, a task it knows, and a task the peer can run. */
export function validatePeerSpec(component: string, spec: { peer: unknown; task: unknown }): PeerSpec {
  const peer = oneOf(component, 'peer', spec.peer, PEER_NAMES);
  const task = oneOf(component, 'task', spec.task, PEER_TASKS);
  if (task === 'counter-in-completion' && peer !== 'pg-boss') {
    throw new OptionsError(`${component}: task counter-in-completion needs a peer that completes a job in the handler's transaction (pg-boss's transactional worker); ${peer} has none: use counter or noop`);
  }
  return { peer, task };
}

/** `graphile-worker counter`, the peer's part of a point's label. */
export function peerSpecLabel(spec: PeerSpec): string {
  return `${spec.peer} ${spec.task}`;
}

/** `graphile-worker:counter` and `pg-boss:noop` as given on a command line. */
export function parsePeerSpecs(component: string, text: string): PeerSpec[] {
  const specs = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const [peer, task, extra] = s.split(':');
      if (extra !== undefined || task === undefined) throw new OptionsError(`${component}: peers must be peer:task pairs like graphile-worker:counter (got "${s}")`);
      return validatePeerSpec(component, { peer, task });
    });
  if (specs.length === 0) throw new OptionsError(`${component}: peers must list at least one peer:task pair`);
  return specs;
}

const requireHere = createRequire(import.meta.url);

/** The version of the peer's package as installed (its package.json), for every row it is measured in. */
export function peerVersion(peer: PeerName): string {
  // The packages' exports maps do not expose package.json; its path is found beside the resolved entry.
  let dir = path.dirname(requireHere.resolve(peer));
  for (let i = 0; i < 5; i += 1) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === peer && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: one folder up
    }
    dir = path.dirname(dir);
  }
  throw new Error(`peer ${peer}: cannot find its package.json above ${requireHere.resolve(peer)} (npm ci installs it)`);
}
