// The worker-kill drain cases of `make chaos` on PostgreSQL: a backlog of counter jobs drained while the
// worker is SIGKILLed in the middle of it, by our worker and by each peer job queue with the counter task, so
// one table shows what exactly-once buys: our duplicates (0) beside the peers'. A peer whose effect commits
// apart from the job's completion (at-least-once) may apply a job twice when killed between the two; that is
// its documented guarantee, so its duplicates are reported, not failed. A lost job fails any case.
import type { PeerSpec } from '../../bench/peers/peerSpec.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { ChaosProfile } from './chaosMatrix.ts';
import type { FaultName } from './nemesis.ts';

/**
 * What a drain-kill case must show. exactly-once: every job's effect applied once. at-least-once: none lost, the
 * duplicates counted and reported, any number allowed.
 */
export type DrainKillExpectation = 'exactly-once' | 'at-least-once';

export type Drainer = { kind: 'ours'; batchSize: number } | { kind: 'peer'; spec: PeerSpec };

export interface DrainKillCase {
  name: string;
  description: string;
  drainer: Drainer;
  /** Jobs (messages, for ours) in the backlog, round-robin over `counters` counters. */
  jobs: number;
  counters: number;
  /** The fractions of the backlog done at which the worker is SIGKILLed, one kill each, in order. */
  killAt: number[];
  expected: DrainKillExpectation;
}

/** The fault these cases inject: `--faults` without it leaves them out. */
export const DRAIN_KILL_FAULT: FaultName = 'worker-kill';

/**
 * A peer's claim timeout in these cases: pg-boss hands out a dead worker's jobs again only once they have been
 * active this long (its queue option expireInSeconds, 15 minutes by default). 10 s is far above a batch here
 * (a fetched batch of 1000 with its upsert takes ~0.1 s) and keeps each recovery short.
 */
export const PEER_CLAIM_TIMEOUT_S = 10;

const SIZES: Record<ChaosProfile, { jobs: number; killAt: number[] }> = {
  quick: { jobs: 20_000, killAt: [0.3] },
  standard: { jobs: 50_000, killAt: [0.25, 0.5, 0.75] },
  soak: { jobs: 200_000, killAt: [0.1, 0.3, 0.5, 0.7, 0.9] },
};

/** 100 counters: each gets hundreds of jobs, and a kill's duplicates spread over many of them. */
const COUNTERS = 100;

/** The cases of a profile on `engine` (PostgreSQL only: the peers are PostgreSQL job queues); none without worker-kill in `only`. */
export function drainKillCases(profile: ChaosProfile, engine: EngineName, only?: readonly FaultName[]): DrainKillCase[] {
  if (engine !== 'postgres' || (only !== undefined && !only.includes(DRAIN_KILL_FAULT))) return [];
  const { jobs, killAt } = SIZES[profile];
  const kills = `SIGKILLed at ${killAt.map((f) => `${Math.round(f * 100)} %`).join(', ')} of the backlog`;
  const base = { jobs, counters: COUNTERS, killAt };
  return [
    {
      ...base,
      name: 'kill-drain-ours',
      description: `our worker (offset mode, batch 1000) draining ${jobs} messages, ${kills}, restarted each time: every effect exactly once`,
      drainer: { kind: 'ours', batchSize: 1000 },
      expected: 'exactly-once',
    },
    {
      ...base,
      name: 'kill-drain-graphile-worker',
      description: `graphile-worker with the counter task draining ${jobs} jobs, ${kills}, its jobs force-unlocked (its recovery for a dead worker) and a worker started again: at-least-once, duplicates reported`,
      drainer: { kind: 'peer', spec: { peer: 'graphile-worker', task: 'counter' } },
      expected: 'at-least-once',
    },
    {
      ...base,
      name: 'kill-drain-pg-boss',
      description: `pg-boss with the counter task draining ${jobs} jobs, ${kills}, its active jobs retried once expired (${PEER_CLAIM_TIMEOUT_S} s) and a worker started again: at-least-once, duplicates reported`,
      drainer: { kind: 'peer', spec: { peer: 'pg-boss', task: 'counter' } },
      expected: 'at-least-once',
    },
    {
      ...base,
      name: 'kill-drain-pg-boss-in-completion',
      description: `pg-boss's transactional worker (the counter upsert in the transaction that completes the batch) draining ${jobs} jobs, ${kills}: every effect exactly once`,
      drainer: { kind: 'peer', spec: { peer: 'pg-boss', task: 'counter-in-completion' } },
      expected: 'exactly-once',
    },
  ];
}

/** One kill: how far the drain was when it landed, and the jobs the peer's recovery handed out again. */
export interface DrainKill {
  atJobs: number;
  freedJobs: number | undefined;
}

export interface DrainKillResult {
  case: DrainKillCase;
  engine: EngineName;
  /** The drainer's version: the peer's package, or ours (this commit). */
  version: string;
  guarantee: string;
  kills: DrainKill[];
  /** The backlog was done (every job completed, every message acked) within the bound. */
  drained: boolean;
  jobsCompleted: number | undefined;
  counterTotal: number | undefined;
  lost: number | undefined;
  duplicated: number | undefined;
  passed: boolean;
  why: string;
  durationMs: number;
  databaseVersion: string | undefined;
  error: string | undefined;
  interrupted: boolean;
}

/** Whether a finished drain showed what its case must: nothing lost, and for exactly-once nothing doubled. */
export function drainKillMet(c: Pick<DrainKillCase, 'expected' | 'killAt'>, r: Pick<DrainKillResult, 'drained' | 'lost' | 'duplicated' | 'kills'>): { passed: boolean; why: string } {
  if (r.lost === undefined || r.duplicated === undefined) return { passed: false, why: 'not checked' };
  const counts = `lost ${r.lost}, duplicated ${r.duplicated} after ${r.kills.length} kill(s)`;
  if (r.kills.length < c.killAt.length) return { passed: false, why: `${counts}: only ${r.kills.length} of ${c.killAt.length} kills landed before the drain ended` };
  if (!r.drained) return { passed: false, why: `${counts}: the backlog was not done within the bound` };
  if (r.lost > 0) return { passed: false, why: `${counts}: a job completed without its effect` };
  if (c.expected === 'exactly-once') return r.duplicated === 0 ? { passed: true, why: `${counts}: exactly once` } : { passed: false, why: `${counts}: its guarantee says none` };
  return { passed: true, why: `${counts}: at-least-once allows duplicates, ${r.duplicated === 0 ? 'none this time' : 'reported'}` };
}

export const DRAIN_KILL_CSV_COLUMNS: readonly string[] = [
  'case', 'drainer', 'version', 'guarantee', 'jobs', 'counters', 'kills', 'killed_at_jobs', 'jobs_freed_by_recovery',
  'drained', 'jobs_completed', 'counter_total', 'lost', 'duplicated', 'expected', 'passed', 'why', 'case_duration_s', 'engine', 'server_version',
];

function drainerName(d: Drainer): string {
  return d.kind === 'ours' ? `ours (offset, batch ${d.batchSize})` : `${d.spec.peer} ${d.spec.task}`;
}

export function drainKillCsvRow(r: DrainKillResult): Record<string, string | number | boolean | undefined> {
  const freed = r.kills.map((k) => k.freedJobs).filter((n): n is number => n !== undefined);
  return {
    case: r.case.name,
    drainer: drainerName(r.case.drainer),
    version: r.version,
    guarantee: r.guarantee,
    jobs: r.case.jobs,
    counters: r.case.counters,
    kills: r.kills.length,
    killed_at_jobs: r.kills.map((k) => k.atJobs).join(' '),
    jobs_freed_by_recovery: freed.length === 0 ? undefined : freed.join(' '),
    drained: r.drained,
    jobs_completed: r.jobsCompleted,
    counter_total: r.counterTotal,
    lost: r.lost,
    duplicated: r.duplicated,
    expected: r.case.expected,
    passed: r.passed,
    why: r.interrupted ? `interrupted: ${r.why}` : r.why,
    case_duration_s: r.durationMs / 1000,
    engine: r.engine,
    server_version: r.databaseVersion,
  };
}

/** The comparison in one table: each drainer's duplicates and losses under the same kills, ours first. */
export function drainKillTable(results: readonly DrainKillResult[]): string {
  const header = ['drainer', 'guarantee', 'jobs', 'kills', 'completed', 'counter total', 'lost', 'duplicated', 'expected', 'result'];
  const rows = results.map((r) => [
    `${drainerName(r.case.drainer)} ${r.version}`,
    r.guarantee,
    String(r.case.jobs),
    String(r.kills.length),
    String(r.jobsCompleted ?? '-'),
    String(r.counterTotal ?? '-'),
    String(r.lost ?? '-'),
    String(r.duplicated ?? '-'),
    r.case.expected,
    r.passed ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
