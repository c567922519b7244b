// The fault registry (`make chaos FAULTS=worker-kill,db-kill` is a lookup here) and the nemesis: the loop
// that injects faults on its own timer, never tied to the request loop, and records for each one when it
// started, when healing began and when the system had recovered (ready, and the drain moving again).
import type { AckMode, SqlExecutor } from '../../system/pubsub/types.ts';
import type { FaultBackend } from '../../harness/faults/backend.ts';
import type { TcpProxy } from '../../harness/faults/tcpProxy.ts';
import { DEFAULT_SERVER_OPTIONS } from '../../system/server/options.ts';
import { sleep } from '../../system/waiting.ts';
import type { AllocatorStaller, AllocatorStallPlan } from '../../harness/faults/allocatorStallFault.ts';
import { killSession, selectSessionHosts } from '../../system/sql/mariadb/processlist.ts';
import { terminatePgSessions } from '../../system/sql/postgres/sessions.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { ClusterNodes } from '../../harness/faults/clusterNodes.ts';
import { failOver, type FailoverTarget } from '../../harness/faults/primaryFailover.ts';

export const FAULT_NAMES = [
  'worker-kill',
  'worker-stop',
  'worker-pause',
  'db-kill',
  'db-restart',
  'server-kill',
  'conn-kill',
  'net-delay',
  'net-reset',
  'failpoint',
  'db-stall-allocator',
  'node-kill',
  'node-pause',
  'node-isolate',
  'quorum-loss',
  'primary-failover',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

/** The faults that act on the nodes of a cluster (--topology galera); a single server has none of them. */
export const CLUSTER_FAULTS: readonly FaultName[] = ['node-kill', 'node-pause', 'node-isolate', 'quorum-loss'];

/** The faults that act on a primary/replica pair (--topology primary-replica); a single server has none of them. */
export const REPLICATION_FAULTS: readonly FaultName[] = ['primary-failover'];

/** What a fault needs beyond the backend; a case without it cannot run the fault. */
export type FaultRequirement = 'database-process' | 'proxy' | 'admin-session' | 'failpoints' | 'allocator-stall' | 'cluster' | 'replica-pair';

export interface FaultContext {
  backend: FaultBackend;
  /** The worker's connections to the database go through it (local backend). */
  proxy: TcpProxy | undefined;
  /** A session of the harness's own, for KILL CONNECTION (MariaDB) or pg_terminate_backend (PostgreSQL). */
  admin: SqlExecutor | undefined;
  /** The engine `admin` speaks (default MariaDB). */
  engine?: EngineName;
  /** Whether the database is a process the backend can kill (private database, or the docker service). */
  databaseProcess: boolean;
  /** Restart the worker armed with `point=N`, wait for it to die there, restart it unarmed (local backend). */
  crashWorkerAt: ((spec: string, timeoutMs: number) => Promise<{ fired: boolean }>) | undefined;
  ackMode: AckMode;
  /** How long pause / delay faults hold before healing (ms). */
  holdMs: number;
  /** How long worker-pause keeps the worker stopped (ms); default WORKER_PAUSE_MS. */
  workerPauseMs?: number;
  /** db-stall-allocator's debugger (local backend, private database); undefined elsewhere. */
  allocatorStaller?: AllocatorStaller | undefined;
  /** The nodes of a private cluster (the cluster faults); undefined on a single server. */
  cluster?: ClusterNodes | undefined;
  /** A primary/replica pair, its virtual address and the case's failover plan; undefined on the other topologies. */
  failover?: FailoverTarget | undefined;
}

/**
 * Longer than the server's publish timeout (10 s), so a consumer whose frozen transaction held publishers up
 * would show as publishes answered 503 (measured with a SERIALIZABLE worker frozen 12 s under ~170 req/s: 741
 * of ~2,100); with the default non-locking read every publish is still answered 204.
 */
export const WORKER_PAUSE_MS = DEFAULT_SERVER_OPTIONS.publishTimeoutMs + 2_000;

export interface FaultRun {
  /** What was done, e.g. "SIGKILL worker, restarted" or "killed 3 sessions". */
  detail: string;
  /** performance.now() when healing began (restart issued, SIGCONT, delay removed). */
  healStartedAt: number;
  /** db-stall-allocator: the stalls and how many were proven to sit in the allocator window. */
  proof?: { stalls: number; inWindow: number };
}

export interface FaultDefinition {
  name: FaultName;
  description: string;
  requires: readonly FaultRequirement[];
  /** `round` counts this fault's injections in the case from 0, so faults can vary what they do. */
  run(ctx: FaultContext, round: number): Promise<FaultRun>;
}

const now = (): number => performance.now();

/** Points in the consume loop each ack mode reaches; the failpoint fault cycles through them. */
export function failpointsFor(ackMode: AckMode): string[] {
  const common = ['consume-after-read', 'consume-after-effects', 'consume-before-commit', 'consume-after-commit'];
  if (ackMode === 'transactional') return [...common, 'consume-after-ack'];
  // The controls' hazard sits between their two commits: the crash there is what they must be caught by.
  return ['consume-between-commits', ...common];
}

/** The node a cluster fault's `round`-th injection acts on: each node in turn, node 1 (the worker's) first. */
export function clusterTarget(cluster: ClusterNodes, round: number): number {
  return (round % cluster.size) + 1;
}

/**
 * How long a cut-off node stays cut off (ms): the others notice it after evs.suspect_timeout (5 s by default)
 * and go on as a component of two; 8 s leaves a few seconds of that before it joins back.
 */
export const NODE_ISOLATE_MS = 8_000;

/** How long a cluster fault waits for the nodes to see a change (a node gone, back, synced) before failing (ms). */
const CLUSTER_CHANGE_TIMEOUT_MS = 60_000;

const FAULTS: Record<FaultName, FaultDefinition> = {
  'worker-kill': {
    name: 'worker-kill',
    description: 'SIGKILL every worker, then start them again',
    requires: [],
    async run(ctx) {
      await ctx.backend.kill('worker', 'SIGKILL');
      const healStartedAt = now();
      await ctx.backend.start('worker');
      return { detail: 'SIGKILL worker, restarted', healStartedAt };
    },
  },
  'worker-stop': {
    name: 'worker-stop',
    description: 'SIGTERM every worker (graceful: the batch in hand finishes), then start them again',
    requires: [],
    async run(ctx) {
      await ctx.backend.stop('worker');
      const healStartedAt = now();
      await ctx.backend.start('worker');
      return { detail: 'SIGTERM worker, restarted', healStartedAt };
    },
  },
  'worker-pause': {
    name: 'worker-pause',
    description: 'SIGSTOP every worker (it keeps its sessions and locks), wait, SIGCONT',
    requires: [],
    async run(ctx) {
      const pauseMs = ctx.workerPauseMs ?? WORKER_PAUSE_MS;
      await ctx.backend.pause('worker');
      await sleep(pauseMs);
      const healStartedAt = now();
      await ctx.backend.resume('worker');
      return { detail: `SIGSTOP worker for ${pauseMs} ms, SIGCONT`, healStartedAt };
    },
  },
  'db-kill': {
    name: 'db-kill',
    description: 'SIGKILL the database server, restart it on the same data directory (InnoDB crash recovery)',
    requires: ['database-process'],
    async run(ctx) {
      await ctx.backend.kill('db', 'SIGKILL');
      const healStartedAt = now();
      await ctx.backend.start('db');
      return { detail: 'SIGKILL database, restarted on the same data', healStartedAt };
    },
  },
  'db-restart': {
    name: 'db-restart',
    description: 'clean shutdown of the database server (SIGTERM), start it again',
    requires: ['database-process'],
    async run(ctx) {
      await ctx.backend.stop('db');
      const healStartedAt = now();
      await ctx.backend.start('db');
      return { detail: 'clean database shutdown, restarted', healStartedAt };
    },
  },
  'server-kill': {
    name: 'server-kill',
    description: 'SIGKILL the HTTP server (requests in flight get resets: unknown outcomes), start it again',
    requires: [],
    async run(ctx) {
      await ctx.backend.kill('server', 'SIGKILL');
      const healStartedAt = now();
      await ctx.backend.start('server');
      return { detail: 'SIGKILL server, restarted', healStartedAt };
    },
  },
  'conn-kill': {
    name: 'conn-kill',
    description: "KILL CONNECTION (PostgreSQL: pg_terminate_backend) every database session of the workers, from the harness's own session",
    requires: ['proxy', 'admin-session'],
    async run(ctx) {
      const proxy = required(ctx.proxy, 'conn-kill needs the TCP proxy');
      const admin = required(ctx.admin, 'conn-kill needs an admin session');
      if (ctx.engine === 'postgres') {
        const ended = await terminatePgSessions(admin, WORKER_APPLICATION_NAME);
        return { detail: `pg_terminate_backend ${ended} worker session(s)`, healStartedAt: now() };
      }
      const killed = await killWorkerSessions(admin, proxy);
      return { detail: `KILL CONNECTION ${killed.length} worker session(s): ${killed.join(', ') || 'none open'}`, healStartedAt: now() };
    },
  },
  'net-delay': {
    name: 'net-delay',
    description: 'add latency to every chunk between worker and database (TCP proxy), then remove it',
    requires: ['proxy'],
    async run(ctx, round) {
      const proxy = required(ctx.proxy, 'net-delay needs the TCP proxy');
      // 50, 100, 200 ms: from "slow network" to longer than a typical batch transaction here.
      const delay = [50, 100, 200][round % 3] ?? 100;
      proxy.setDelay(delay);
      await sleep(ctx.holdMs);
      const healStartedAt = now();
      proxy.setDelay(0);
      return { detail: `+${delay} ms per chunk for ${ctx.holdMs} ms`, healStartedAt };
    },
  },
  'net-reset': {
    name: 'net-reset',
    description: 'reset (RST) every connection between worker and database and refuse new ones briefly',
    requires: ['proxy'],
    async run(ctx) {
      const proxy = required(ctx.proxy, 'net-reset needs the TCP proxy');
      // 300 ms of refusal: long enough that the worker's reconnect hits a closed port at least once.
      const refuseMs = 300;
      const reset = proxy.resetAll(refuseMs);
      await sleep(refuseMs);
      return { detail: `reset ${reset} connection(s), refused new ones for ${refuseMs} ms`, healStartedAt: now() };
    },
  },
  failpoint: {
    name: 'failpoint',
    description: 'restart the worker with EOB_FAILPOINTS=<point>=<n>, so it dies (SIGKILL) exactly there, then restart it',
    requires: ['failpoints'],
    async run(ctx, round) {
      const crash = required(ctx.crashWorkerAt, 'failpoint needs the local backend');
      const points = failpointsFor(ctx.ackMode);
      const point = points[round % points.length] ?? 'consume-after-effects';
      const spec = `${point}=${1 + (round % 3)}`;
      // 15 s: the armed worker reaches a point within a few batches while requests flow.
      const { fired } = await crash(spec, 15_000);
      return { detail: fired ? `worker died at ${spec}, restarted` : `failpoint ${spec} not reached in 15 s, worker restarted`, healStartedAt: now() };
    },
  },
  'node-kill': {
    name: 'node-kill',
    description: 'SIGKILL one node of the cluster (each in turn), start it again: it rejoins with an incremental state transfer',
    requires: ['cluster'],
    async run(ctx, round) {
      const cluster = required(ctx.cluster, 'node-kill needs a private cluster');
      const node = clusterTarget(cluster, round);
      await cluster.kill(node);
      const healStartedAt = now();
      const ms = await cluster.start(node);
      return { detail: `SIGKILL node ${node}, rejoined (synced after ${ms} ms)`, healStartedAt };
    },
  },
  'node-pause': {
    name: 'node-pause',
    description: 'SIGSTOP one node of the cluster (each in turn): the group waits for it until it is suspected; SIGCONT after the hold',
    requires: ['cluster'],
    async run(ctx, round) {
      const cluster = required(ctx.cluster, 'node-pause needs a private cluster');
      const node = clusterTarget(cluster, round);
      cluster.pause(node);
      await sleep(ctx.holdMs);
      const healStartedAt = now();
      cluster.resume(node);
      await cluster.waitAllSynced(CLUSTER_CHANGE_TIMEOUT_MS);
      return { detail: `SIGSTOP node ${node} for ${ctx.holdMs} ms, SIGCONT`, healStartedAt };
    },
  },
  'node-isolate': {
    name: 'node-isolate',
    description: `cut one node (each in turn) off from the others' group communication for ${NODE_ISOLATE_MS / 1000} s (it leaves the primary component and refuses work), then join it back`,
    requires: ['cluster'],
    async run(ctx, round) {
      const cluster = required(ctx.cluster, 'node-isolate needs a private cluster');
      const node = clusterTarget(cluster, round);
      await cluster.isolate(node, true);
      await sleep(NODE_ISOLATE_MS);
      const healStartedAt = now();
      await cluster.isolate(node, false);
      await cluster.waitAllSynced(CLUSTER_CHANGE_TIMEOUT_MS);
      return { detail: `node ${node} cut off for ${NODE_ISOLATE_MS} ms, joined back`, healStartedAt };
    },
  },
  'quorum-loss': {
    name: 'quorum-loss',
    description: 'SIGKILL two nodes of three: the survivor loses quorum and refuses work; start both again, the cluster forms anew',
    requires: ['cluster'],
    async run(ctx, round) {
      const cluster = required(ctx.cluster, 'quorum-loss needs a private cluster');
      const survivor = clusterTarget(cluster, round);
      const victims = Array.from({ length: cluster.size }, (_, i) => i + 1).filter((n) => n !== survivor).slice(0, Math.ceil(cluster.size / 2));
      await Promise.all(victims.map((n) => cluster.kill(n)));
      await sleep(ctx.holdMs);
      const healStartedAt = now();
      // Together: the survivor and one restarted node are no majority of the last primary component, so a node
      // started alone waits (without answering) until the other is back too.
      await Promise.all(victims.map((n) => cluster.start(n)));
      await cluster.waitAllSynced(CLUSTER_CHANGE_TIMEOUT_MS);
      return { detail: `SIGKILL nodes ${victims.join(' and ')} (node ${survivor} without quorum for ${ctx.holdMs} ms), both rejoined`, healStartedAt };
    },
  },
  'primary-failover': {
    name: 'primary-failover',
    description:
      'SIGKILL the primary under load (optionally after holding the replica back), promote the replica once it has applied what it received, point the virtual address at it, rebuild a fresh replica; the old primary never comes back',
    requires: ['replica-pair'],
    async run(ctx) {
      const target = required(ctx.failover, 'primary-failover needs a primary/replica pair');
      const result = await failOver(target);
      return { detail: result.detail, healStartedAt: result.healStartedAt };
    },
  },
  'db-stall-allocator': {
    name: 'db-stall-allocator',
    description:
      'stall every 20th InnoDB insert 500 ms right after its offset is allocated, before its transaction is listed in INNODB_TRX (gdb on the private database), for 3 s',
    requires: ['allocator-stall'],
    async run(ctx) {
      const staller = required(ctx.allocatorStaller, 'db-stall-allocator needs a debugger on the private database');
      // An injection none of whose checked stalls was proven is still recorded, with its counts: the case
      // says so beside its verdict (see chaos.ts), since a stall that proves nothing proves less.
      const proof = await staller.stall(ALLOCATOR_STALL_PLAN);
      return { detail: proof.detail, healStartedAt: now(), proof: { stalls: proof.stalls, inWindow: proof.inWindow } };
    },
  },
};

/**
 * Every 20th insert for 500 ms. With 16 raw publishers x 150 single-row INSERTs and 300 ms stalls the
 * INNODB_TRX-only gap rule lost 16-17 of 2,400 messages in each of 4 runs (50 ms stalls: 1); in the chaos
 * load (HTTP beside the raw INSERTs) 300 ms stalls lost nothing in 3 of 12 ctl-innodb-trx-only runs (the
 * worker then passed no hole at all; not pinned down, but the worker lagged the head by up to 300+ messages
 * in some runs, and a hole that fills before the reader gets there is never passed). 500 ms: 34, 51 and 49
 * lost in 3 of 3. 3 s per injection keeps the other faults of a case in rotation.
 */
export const ALLOCATOR_STALL_PLAN: AllocatorStallPlan = { every: 20, stallMs: 500, forMs: 3_000 };

/** The registry: every fault by name. */
export function faultRegistry(): readonly FaultDefinition[] {
  return FAULT_NAMES.map((n) => FAULTS[n]);
}

/** Looks faults up by name (`worker-kill,db-kill` or a list); an unknown name is an error listing the valid ones. */
export function resolveFaults(names: string | readonly string[]): FaultDefinition[] {
  const list = (typeof names === 'string' ? names.split(',') : [...names]).map((n) => n.trim()).filter((n) => n !== '');
  const unknown = list.filter((n) => !(FAULT_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(`unknown fault${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; valid faults: ${FAULT_NAMES.join(', ')}`);
  }
  return [...new Set(list)].map((n) => FAULTS[n as FaultName]);
}

/** Which requirements of `fault` the context cannot meet (empty: it can run). */
export function missingRequirements(fault: FaultDefinition, ctx: FaultContext): FaultRequirement[] {
  return fault.requires.filter((r) => {
    if (r === 'database-process') return !ctx.databaseProcess;
    if (r === 'proxy') return ctx.proxy === undefined;
    if (r === 'admin-session') return ctx.admin === undefined;
    if (r === 'allocator-stall') return ctx.allocatorStaller === undefined || ctx.allocatorStaller.unavailable !== undefined;
    if (r === 'cluster') return ctx.cluster === undefined;
    if (r === 'replica-pair') return ctx.failover === undefined;
    return ctx.crashWorkerAt === undefined;
  });
}

/** Why `fault` cannot run in `ctx`, in words a user can act on; undefined when it can. */
export function skipReason(fault: FaultDefinition, ctx: FaultContext): string | undefined {
  const missing = missingRequirements(fault, ctx);
  if (missing.length === 0) return undefined;
  if (missing.includes('cluster')) return 'needs a private cluster (--topology galera)';
  if (missing.includes('replica-pair')) return 'needs a primary/replica pair (--topology primary-replica)';
  if (missing.includes('allocator-stall')) {
    return ctx.allocatorStaller?.unavailable ?? 'needs gdb attached to a private database this harness started (local backend, no MYSQL_URL)';
  }
  return `needs ${missing.join(', ')}`;
}

/**
 * On PostgreSQL the worker's sessions are those its pools name `eob-worker` (application_name): the server's
 * and the harness's pools carry other names, so no other process loses a session.
 */
export const WORKER_APPLICATION_NAME = 'eob-worker';

/**
 * KILL CONNECTION for every session the database sees coming from the proxy's upstream ports: exactly the
 * worker's sessions (the server and the harness connect directly), whatever user or program they run as.
 */
export async function killWorkerSessions(admin: SqlExecutor, proxy: TcpProxy): Promise<number[]> {
  const ports = new Set(proxy.upstreamLocalPorts());
  if (ports.size === 0) return [];
  const ids = (await selectSessionHosts(admin))
    .filter((r) => ports.has(Number(/:(\d+)$/.exec(r.host)?.[1])))
    .map((r) => r.id);
  const killed: number[] = [];
  // A session that ended between the read and the kill is simply not counted.
  for (const id of ids) if (await killSession(admin, id)) killed.push(id);
  return killed;
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// The nemesis loop

export interface FaultEvent {
  fault: FaultName;
  round: number;
  /** Case-clock milliseconds. */
  startMs: number;
  healStartMs: number;
  /** When the system was ready and the drain moving again; undefined if it did not recover within the limit. */
  recoveredMs: number | undefined;
  /** recoveredMs - healStartMs */
  recoveryMs: number | undefined;
  detail: string;
  /** db-stall-allocator: stalls, and how many were proven to sit in the allocator window. */
  proof?: { stalls: number; inWindow: number };
  error?: string;
  /** A seeded schedule: the target drawn for this injection (the `round` its run() got). */
  variant?: number;
  /** A seeded schedule: the drawn pause before it (the initial delay for the first, else after the previous recovery). */
  pauseBeforeMs?: number;
}

/** One injection of a schedule: which fault, its variant (the `round` its run() gets), and the pause before it. */
export interface ScheduleStep {
  fault: FaultName;
  /** This fault's injections before this one, from 0. */
  round: number;
  /** What the fault's run() is given as its round: it picks the failpoint, the delay, the node. */
  variant: number;
  /** Pause before the injection, after the previous one recovered (ms). */
  gapMs: number;
}

/**
 * A fault schedule: the order of injections, each one's variant (its target: which failpoint, which delay, which
 * node) and the pauses between them. Without a seed it is the fixed round-robin (worker-kill, db-kill,
 * worker-kill, ...; variant = round; pauses of intervalMs). With a seed every choice is drawn from a PRNG seeded
 * with it: the planned injections shuffled, pauses between a quarter and 1.75 times intervalMs, variants and the
 * initial delay drawn too; injections past the planned ones (the load outlasted the schedule) continue the same
 * stream. The same seed and faults always give the same schedule.
 */
export class FaultSchedule {
  readonly initialDelayMs: number;
  private readonly steps: ScheduleStep[] = [];
  private readonly random: (() => number) | undefined;
  private readonly rounds = new Map<FaultName, number>();

  constructor(
    readonly faults: readonly FaultName[],
    readonly perFault: number,
    private readonly intervalMs: number,
    readonly seed: number | undefined,
    initialDelayMs: number,
    /** false: variants stay the round (a control's failpoint must hit its hazard first); order and pauses are still drawn. */
    private readonly drawVariants = true,
  ) {
    if (seed === undefined) {
      this.initialDelayMs = initialDelayMs;
      return;
    }
    const random = mulberry32(seed);
    this.random = random;
    this.initialDelayMs = Math.round(initialDelayMs * (0.5 + random()));
    const planned = faults.flatMap((f) => Array.from({ length: perFault }, () => f));
    for (let i = planned.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [planned[i], planned[j]] = [planned[j]!, planned[i]!];
    }
    for (const f of planned) this.steps.push(this.draw(f));
  }

  /** How many injections the plan holds (more follow while the load lasts). */
  get planned(): number {
    return this.faults.length * this.perFault;
  }

  /** The i-th injection (0-based); past the plan, the stream goes on (round-robin, or drawn from the seed). */
  step(i: number): ScheduleStep {
    if (this.faults.length === 0) throw new Error('fault schedule: no faults to schedule');
    if (this.random === undefined) {
      const round = Math.floor(i / this.faults.length);
      return { fault: this.faults[i % this.faults.length]!, round, variant: round, gapMs: this.intervalMs };
    }
    while (this.steps.length <= i) this.steps.push(this.draw(this.faults[Math.floor(this.random() * this.faults.length)]!));
    return this.steps[i]!;
  }

  private draw(fault: FaultName): ScheduleStep {
    const random = this.random!;
    const round = this.rounds.get(fault) ?? 0;
    this.rounds.set(fault, round + 1);
    const variant = Math.floor(random() * 1_000);
    return { fault, round, variant: this.drawVariants ? variant : round, gapMs: Math.round(this.intervalMs * (0.25 + 1.5 * random())) };
  }
}

/** A small, fast, well-mixed 32-bit PRNG: the same seed gives the same stream on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface NemesisOptions {
  faults: readonly FaultDefinition[];
  /** Draws the schedule from this seed (FaultSchedule); undefined: the fixed round-robin. */
  seed?: number | undefined;
  /** With a seed: draw each injection's target too (default), or keep it the round (controls). */
  drawVariants?: boolean;
  /** Injections of each fault. */
  perFault: number;
  /** Time between the end of one fault's recovery and the next injection (ms). */
  intervalMs: number;
  /** Wait before the first fault, so the load is under way (ms). */
  initialDelayMs: number;
  /** How long a fault may take to recover before the nemesis moves on and records it as not recovered (ms). */
  recoveryTimeoutMs: number;
  /** Resolves when the system is ready and the drain is moving (or there is nothing to drain). */
  recovered: (since: number, signal: AbortSignal) => Promise<void>;
  /** Case clock: performance.now() of the case start. */
  t0: number;
  log: (line: string) => void;
  /**
   * After the planned `perFault` rounds, keep injecting (same round-robin) while this returns true: the load
   * outlasted the planned schedule, and a load with no faults in its second half proves less.
   */
  continueWhile?: () => boolean;
}

/**
 * Runs the schedule (faults interleaved round-robin: worker-kill, db-kill, worker-kill, db-kill...) on its own
 * timer until done or `signal` aborts. One fault at a time: each is injected, healed, and its recovery measured
 * before the next, so recovery times are not mixed up.
 */
export async function runNemesis(ctx: FaultContext, o: NemesisOptions, signal: AbortSignal): Promise<FaultEvent[]> {
  const events: FaultEvent[] = [];
  const byName = new Map(o.faults.map((f) => [f.name, f]));
  const schedule = new FaultSchedule(o.faults.map((f) => f.name), o.perFault, o.intervalMs, o.seed, o.initialDelayMs, o.drawVariants ?? true);
  const planned = schedule.planned;
  const at = (t: number) => Math.round(t - o.t0);
  await abortableSleep(schedule.initialDelayMs, signal);
  for (let i = 0; o.faults.length > 0; i++) {
    if (signal.aborted) break;
    if (i >= planned && o.continueWhile?.() !== true) break;
    const step = schedule.step(i);
    // The first injection follows the initial delay; each later one its own pause after the previous recovery.
    if (i > 0) await abortableSleep(step.gapMs, signal);
    if (signal.aborted) break;
    const fault = byName.get(step.fault)!;
    const round = step.round;
    const start = now();
    let run: FaultRun | undefined;
    let error: string | undefined;
    try {
      run = await fault.run(ctx, step.variant);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      o.log(`fault ${fault.name} #${round + 1} failed: ${error}`);
    }
    const healStart = run?.healStartedAt ?? now();
    let recoveredAt: number | undefined;
    // A referenced timer (AbortSignal.timeout is unreferenced): the wait itself keeps the process alive.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('recovery timeout')), o.recoveryTimeoutMs);
    try {
      await o.recovered(healStart, AbortSignal.any([signal, deadline.signal]));
      recoveredAt = now();
    } catch {
      o.log(`fault ${fault.name} #${round + 1}: no recovery within ${o.recoveryTimeoutMs} ms`);
    } finally {
      clearTimeout(timer);
    }
    const event: FaultEvent = {
      fault: fault.name,
      round,
      startMs: at(start),
      healStartMs: at(healStart),
      recoveredMs: recoveredAt === undefined ? undefined : at(recoveredAt),
      recoveryMs: recoveredAt === undefined ? undefined : Math.round(recoveredAt - healStart),
      detail: run?.detail ?? 'failed',
      ...(o.seed === undefined ? {} : { variant: step.variant, pauseBeforeMs: i === 0 ? schedule.initialDelayMs : step.gapMs }),
      ...(run?.proof === undefined ? {} : { proof: run.proof }),
      ...(error === undefined ? {} : { error }),
    };
    events.push(event);
    o.log(`fault ${fault.name} #${round + 1} at ${event.startMs} ms: ${event.detail}; recovery ${event.recoveryMs ?? 'none'} ms`);
  }
  return events;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
