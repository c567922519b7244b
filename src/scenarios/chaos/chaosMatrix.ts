// The cases `make chaos` runs, per profile: the exactly-once configurations under every fault kind, and the
// controls, each with the violation it must be caught with.
import type { ServerFlags, WorkerFlags } from '../../harness/systemUnderTest.ts';
import { CLUSTER_FAULTS, FAULT_NAMES, REPLICATION_FAULTS, mulberry32, type FaultName } from './nemesis.ts';
import type { TopicMode } from '../../system/pubsub/types.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { ReplicationLevel } from '../../harness/replication/replicaPair.ts';
import { ANOMALY_KINDS, type AnomalyKind } from './checker.ts';

export const CHAOS_PROFILES = ['quick', 'standard', 'soak'] as const;
export type ChaosProfile = (typeof CHAOS_PROFILES)[number];

/**
 * What a case must show. `valid`: the checker's verdict is valid. A control names the anomaly kind (the
 * checker's taxonomy) it must be caught with: at least one of it. Either way no kind outside the case's
 * `tolerates` (and a control's own kind) may appear: those are the case's illegal kinds.
 */
export type Expectation = 'valid' | AnomalyKind;

/** What an exactly-once case without a retrying client tolerates: an answer that never came says nothing. */
export const EXACTLY_ONCE_TOLERATES: readonly AnomalyKind[] = ['unknown-outcome'];

/** The kinds a case does not allow: every kind it neither tolerates nor must show. */
export function illegalKinds(c: Pick<ChaosCase, 'expected' | 'tolerates'>): AnomalyKind[] {
  return ANOMALY_KINDS.filter((k) => k !== c.expected && !c.tolerates.includes(k));
}

export interface ChaosCase {
  name: string;
  description: string;
  mode: TopicMode;
  worker: WorkerFlags;
  /** Worker processes. */
  workers: number;
  server: ServerFlags;
  /** The retrying client resends until a definite answer. */
  retry: boolean;
  faults: readonly FaultName[];
  /** Injections of each fault kind. */
  perFault: number;
  requests: number;
  /** HTTP requests in flight at once. */
  concurrency: number;
  /** 0: spread the requests over the fault schedule; > 0: this offered rate. */
  ratePerSecond: number;
  /** 0: one counter per request (exact attribution). */
  counters: number;
  /** Raw SQL publishers beside the HTTP load (single-row autocommit INSERTs that bypass the server). */
  raw?: RawPublishers;
  /**
   * A cluster case (--topology galera): the node each HTTP server publishes through and each worker consumes
   * on (worker 1 through the workers' proxy), one entry per process. Raw publishers spread over every node.
   */
  nodes?: { servers: readonly number[]; workers: readonly number[] };
  /**
   * A primary/replica case (--topology primary-replica): the replication level, how long the replica is held
   * back before each primary-failover's kill (the asynchronous control), and MariaDB semi-sync's fallback timeout
   * (undefined: never falls back).
   */
  replication?: { level: ReplicationLevel; holdReplicaMs?: number; semiSyncTimeoutMs?: number };
  expected: Expectation;
  /** Anomaly kinds that may appear without failing the case; every other kind (but `expected`) is illegal. */
  tolerates: readonly AnomalyKind[];
  /** The seed of this case's fault schedule (soak cases); undefined: the run's --seed, or the fixed schedule. */
  seed?: number;
  /**
   * The Watermill example's own check: the counters' final sum must equal this, with the drain finished in time (a
   * timeout fails the case instead of passing it).
   */
  exactTotal?: number;
}

export interface RawPublishers {
  /** Connections, each with one INSERT at a time. */
  publishers: number;
  /** INSERTs over all of them, spread over the same schedule as the HTTP requests. */
  requests: number;
  /** Every holdEvery-th INSERT in a transaction held open holdMs before COMMIT (absent: all autocommit). */
  hold?: { every: number; ms: number };
}

/**
 * 16 raw publishers: with 16 raw `mariadb` clients x 150 single-row INSERTs and every 20th insert stalled
 * 300 ms after its offset was allocated, the INNODB_TRX-only gap rule lost 16-17 of 2,400 messages per run.
 * In the exactly-once cases every 50th raw INSERT is a transaction held open 100 ms (a slow publisher): the
 * worker must wait for it, never step over it.
 */
const RAW_PUBLISHERS = 16;

/** Every fault kind of a single server (the cluster's are galeraMatrix.ts's). */
const ALL_FAULTS: readonly FaultName[] = FAULT_NAMES.filter((f) => !CLUSTER_FAULTS.includes(f) && !REPLICATION_FAULTS.includes(f));

interface Sizes {
  requests: number;
  perFault: number;
  controlRequests: number;
  controlFaults: number;
  /** The controls with no fault: they run at full speed, so their size is about how often the race shows. */
  noFaultControlRequests: number;
  /** Raw SQL INSERTs beside the HTTP requests of each exactly-once case. */
  rawRequests: number;
  /** ctl-innodb-trx-only: db-stall-allocator injections, and the raw INSERTs spread over them. */
  stallControlInjections: number;
  stallControlRawRequests: number;
}

const SIZES: Record<ChaosProfile, Sizes> = {
  // quick: <= 3 minutes on this machine, the CI-sized check and the one the test suite runs. One injection
  // per control fault: the failpoint's first round is the ack controls' hazard, and with two the seven cases
  // took 155 s (ctl-after-commit alone 42 s) on this machine shared with five other engineers' work.
  quick: { requests: 1_500, perFault: 1, controlRequests: 1_500, controlFaults: 1, noFaultControlRequests: 1_500, rawRequests: 600, stallControlInjections: 2, stallControlRawRequests: 2_400 },
  // standard: the issue's `make chaos`: 10,000 requests per case, >= 5 injections of each kind.
  standard: { requests: 10_000, perFault: 5, controlRequests: 6_000, controlFaults: 5, noFaultControlRequests: 10_000, rawRequests: 2_400, stallControlInjections: 5, stallControlRawRequests: 6_000 },
  soak: { requests: 60_000, perFault: 25, controlRequests: 20_000, controlFaults: 10, noFaultControlRequests: 60_000, rawRequests: 12_000, stallControlInjections: 10, stallControlRawRequests: 12_000 },
};

/**
 * What the matrix leaves out on an engine, and why: shown with the run's results, so a case that did not run
 * is never mistaken for one that passed.
 */
export interface EngineSkip {
  /** A case name, or a fault name (left out of every case). */
  what: string;
  reason: string;
}

/**
 * db-stall-allocator stalls InnoDB's offset allocator with gdb attached to mariadbd, and ctl-innodb-trx-only is
 * the control of MariaDB's old gap rule under that stall. PostgreSQL's offset read needs neither: it reads only
 * below the snapshot's xmin, so no hole ever needs a gap proof to be passed.
 */
export function engineSkips(engine: EngineName): EngineSkip[] {
  if (engine === 'mariadb') return [];
  return [
    { what: 'db-stall-allocator', reason: 'MariaDB only: it stalls InnoDB\'s AUTO_INCREMENT allocator inside mariadbd (gdb); PostgreSQL\'s read takes only rows below xmin, so there is no gap proof to attack' },
    { what: 'ctl-innodb-trx-only', reason: 'MariaDB only: the control of the INNODB_TRX-only gap rule, which PostgreSQL\'s xmin read does not use' },
  ];
}

export function chaosMatrix(profile: ChaosProfile, only?: readonly FaultName[], engine: EngineName = 'mariadb'): ChaosCase[] {
  const skipped = new Set(engineSkips(engine).map((s) => s.what));
  const s = SIZES[profile];
  const faults = (list: readonly FaultName[]) => list.filter((f) => (only === undefined || only.includes(f)) && !skipped.has(f));
  const exactlyOnce = (mode: TopicMode, batchSize: number, kinds: readonly FaultName[]): ChaosCase => ({
    name: `eo-${mode}-b${batchSize}`,
    description: `${mode} mode, batch ${batchSize}, transactional acks, HTTP and raw SQL publishers: must stay valid under every fault`,
    mode,
    worker: mode === 'queue' ? { mode, batchSize, concurrency: 2 } : { mode, batchSize },
    workers: mode === 'queue' ? 2 : 1,
    server: { topicSchema: mode },
    retry: false,
    faults: faults(kinds),
    perFault: s.perFault,
    requests: s.requests,
    concurrency: 16,
    ratePerSecond: 0,
    counters: 0,
    raw: { publishers: RAW_PUBLISHERS, requests: s.rawRequests, hold: { every: 50, ms: 100 } },
    expected: 'valid',
    tolerates: EXACTLY_ONCE_TOLERATES,
  });
  const ackControl = (ackMode: 'after-commit' | 'before-commit'): ChaosCase => ({
    name: `ctl-${ackMode}`,
    description: `${ackMode} acks under worker kills (a failpoint lands one between the two commits): must show ${ackMode === 'after-commit' ? 'duplicates' : 'losses'}`,
    mode: 'offset',
    worker: { mode: 'offset', batchSize: 100, ackMode },
    workers: 1,
    server: {},
    retry: false,
    faults: ['failpoint', 'worker-kill'],
    perFault: s.controlFaults,
    requests: s.controlRequests,
    concurrency: 16,
    ratePerSecond: 0,
    counters: 0,
    // before-commit acks a batch, then dies before its effects commit: read, acknowledged, never counted.
    expected: ackMode === 'after-commit' ? 'counted-twice' : 'never-counted',
    tolerates: EXACTLY_ONCE_TOLERATES,
  });

  const controls: ChaosCase[] = [
    ackControl('after-commit'),
    ackControl('before-commit'),
    {
      name: 'ctl-nonlocking-read',
      description: 'offset mode, REPEATABLE READ plain read, no gap handling, 32 concurrent one-row HTTP publishers and raw SQL publishers holding some transactions open: must show skipped messages',
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 100, isolation: 'REPEATABLE READ', gapHandling: 'none' },
      workers: 1,
      // One INSERT per request: concurrent single-row transactions are what commits out of offset order.
      server: { coalesce: false, poolSize: 32 },
      retry: false,
      faults: [],
      perFault: 0,
      requests: s.noFaultControlRequests,
      concurrency: 32,
      ratePerSecond: 0,
      counters: 0,
      // HTTP publishers alone commit out of order rarely here (1 and 14 skipped of 10,000 in two runs, 1 of
      // 3,050 in a third). Raw publishers holding some transactions open make it show every time: 8 x 600
      // INSERTs with every 20th held 50 ms skipped 11 and 47; with every 10th held 100 ms, 56, 59 and 60.
      raw: { publishers: 8, requests: s.rawRequests, hold: { every: 10, ms: 100 } },
      expected: 'skipped',
      tolerates: EXACTLY_ONCE_TOLERATES,
    },
    engine === 'postgres' ? {
      // watermill-sql's PostgreSQL subscriber reads only transaction ids below the snapshot's xmin, the rule
      // this tool's PostgreSQL reader uses too: it is the baseline there, not a control, and must stay valid.
      name: 'wm-postgres',
      description: "the watermill handler as watermill-sql's PostgreSQL subscriber runs it (xmin rule), 32 concurrent publishers, no faults: must stay valid",
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 100, handler: 'watermill' },
      workers: 1,
      server: { coalesce: false, poolSize: 32 },
      retry: false,
      faults: [],
      perFault: 0,
      requests: s.noFaultControlRequests,
      concurrency: 32,
      ratePerSecond: 0,
      counters: 0,
      expected: 'valid',
      tolerates: EXACTLY_ONCE_TOLERATES,
    } : {
      name: 'ctl-watermill',
      description:
        'the watermill handler (SERIALIZABLE, FOR UPDATE offsets, plain read), 32 concurrent HTTP publishers and raw SQL ones, InnoDB allocator stalls: must show skipped offsets',
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 100, handler: 'watermill' },
      workers: 1,
      server: { coalesce: false, poolSize: 32 },
      retry: false,
      // The watermill read skips an offset only when it runs while that offset's publisher is inside InnoDB's
      // allocator window (allocated, no row yet, so no lock to wait on). Left to chance, that window is hit
      // rarely on a quiet machine: 3, 5 and 0 skipped of 1,550 requests in three quick runs here, 57 on a busy
      // one. db-stall-allocator holds publishers in that window (as ctl-innodb-trx-only does), so the control
      // shows its bug on every run instead of when the machine is busy.
      faults: ['db-stall-allocator'],
      perFault: s.stallControlInjections,
      requests: s.noFaultControlRequests,
      concurrency: 32,
      ratePerSecond: 0,
      counters: 0,
      raw: { publishers: RAW_PUBLISHERS, requests: s.stallControlRawRequests },
      expected: 'skipped',
      tolerates: EXACTLY_ONCE_TOLERATES,
    },
    {
      name: 'ctl-innodb-trx-only',
      description:
        'offset mode with the old gap rule (a hole passes once the writers of a fresh INNODB_TRX read have ended) under db-stall-allocator, raw SQL publishers beside the HTTP load: must show skipped messages',
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 1000, gapProof: 'innodb-trx' },
      workers: 1,
      server: {},
      retry: false,
      faults: ['db-stall-allocator'],
      perFault: s.stallControlInjections,
      requests: s.controlRequests,
      concurrency: 16,
      ratePerSecond: 0,
      counters: 0,
      // The stall only matters for publishers that do not wait for the worker: single-row INSERTs, ~185 a
      // second over the schedule, so each 3 s injection stops ~50 of them in the window.
      raw: { publishers: RAW_PUBLISHERS, requests: s.stallControlRawRequests },
      expected: 'skipped',
      tolerates: EXACTLY_ONCE_TOLERATES,
    },
    {
      name: 'ctl-no-retry-no-dedup',
      description: 'non-retrying client, no publish de-duplication, server kills: unknown outcomes reported, publish duplicates (if any) attributed to publishing',
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 1000 },
      workers: 1,
      server: {},
      retry: false,
      faults: ['server-kill'],
      perFault: s.controlFaults,
      requests: s.controlRequests,
      concurrency: 16,
      ratePerSecond: 0,
      counters: 0,
      // Without de-duplication or retries a request cut off by the kill may still have published: a duplicate
      // there belongs to publishing, and is tolerated; a worker-side loss or duplicate is not.
      expected: 'unknown-outcome',
      tolerates: ['published-twice'],
    },
  ];

  // Every control runs in every profile: a profile that leaves one out would not show that the checker still
  // catches what it must.
  const kept = (cases: ChaosCase[]) => cases.filter((c) => !skipped.has(c.name));
  if (profile === 'quick') {
    return kept([
      // On PostgreSQL db-stall-allocator is left out; db-restart takes its place, so the case still meets a
      // second kind of database fault.
      exactlyOnce('offset', 1000, engine === 'mariadb' ? ['worker-kill', 'db-kill', 'db-stall-allocator'] : ['worker-kill', 'db-kill', 'db-restart']),
      { ...exactlyOnce('queue', 100, ['worker-kill', 'conn-kill', 'net-reset']), requests: 1_000 },
      ...controls,
    ]);
  }

  // The worker's default batch (1000) and the fastest in the bench (5000: docs/bench.md), per mode.
  return kept([
    exactlyOnce('offset', 1000, ALL_FAULTS),
    exactlyOnce('offset', 5000, ALL_FAULTS),
    exactlyOnce('queue', 1000, ALL_FAULTS),
    exactlyOnce('queue', 5000, ALL_FAULTS),
    {
      name: 'e2e-dedup-retry',
      description: 'publish de-duplication and a retrying client under server, database and worker kills: total == distinct request ids',
      mode: 'offset',
      worker: { mode: 'offset', batchSize: 1000 },
      workers: 1,
      server: { dedup: true },
      retry: true,
      faults: faults(['server-kill', 'db-kill', 'worker-kill', 'net-reset']),
      perFault: s.perFault,
      requests: s.requests,
      concurrency: 16,
      ratePerSecond: 0,
      counters: 0,
      // The retrying client resends an unknown outcome until it is definite; one left after 30 attempts says
      // nothing about exactly-once, and the end-to-end count then makes the verdict unknown, not valid.
      expected: 'valid',
      tolerates: EXACTLY_ONCE_TOLERATES,
    },
    ...controls,
  ]);
}

/** Rough seconds one injection takes here (inject + heal + recovery), to spread the load over the schedule. */
export const FAULT_SECONDS: Record<FaultName, number> = {
  'worker-kill': 1.5,
  'worker-stop': 2,
  'worker-pause': 13, // WORKER_PAUSE_MS (12 s) and the catch-up
  'db-kill': 1,
  'db-restart': 2,
  'server-kill': 1.5,
  'conn-kill': 0.5,
  'net-delay': 1.5,
  'net-reset': 0.8,
  failpoint: 4,
  // Two attaches (the proven sample, then 3 s of stalls), ~6.5 s an injection in the measured runs.
  'db-stall-allocator': 6.5,
  // Rejoin with IST and resync, measured on the 3-node loopback cluster: ~3-5 s.
  'node-kill': 5,
  // The hold (1 s) and the resync.
  'node-pause': 3,
  // NODE_ISOLATE_MS, then ~5-8 s for the node to be seen back and synced.
  'node-isolate': 15,
  // Two nodes killed, the hold, both restarted with IST: ~6-10 s.
  'quorum-loss': 10,
  // The hold (if any), the promotion (~0.1 s) and a fresh replica catching up from the binary log: ~2-5 s here.
  'primary-failover': 5,
};

/** The faults a container backend can inject (conn-kill, network faults and failpoints need the local backend). */
export const DOCKER_FAULTS: readonly FaultName[] = ['worker-kill', 'worker-stop', 'worker-pause', 'db-kill', 'db-restart', 'server-kill'];

const DOCKER_NO_FAULT_CONTROL_REQUESTS = 30_000;

/** The Watermill example's own check, as its program runs it against `docker-compose up`. */
export const SEED_CHECK_REQUESTS = 10_000;

/**
 * The docker backend's cases: the profile's exactly-once cases under every container fault (or `only` of
 * them), the controls whose faults a container backend can inject (the ack and INNODB_TRX controls need a
 * failpoint or the debugger, so they stay with the local backend), and the Watermill example's check: 10,000
 * requests to one counter while the worker and database containers are restarted three times each; the count
 * must be exactly 10,000.
 */
export function dockerMatrix(profile: ChaosProfile, only?: readonly FaultName[]): ChaosCase[] {
  const dockerFaults = only === undefined ? DOCKER_FAULTS : DOCKER_FAULTS.filter((f) => only.includes(f));
  const cases = chaosMatrix(profile).flatMap((matrixCase): ChaosCase[] => {
    // No debugger in a container: the watermill control runs there as it did before the allocator stall, on the
    // HTTP publishers alone, and catches the race by volume (below).
    const c: ChaosCase =
      matrixCase.name === 'ctl-watermill'
        ? { ...matrixCase, faults: [], perFault: 0, raw: undefined, description: 'the watermill handler (SERIALIZABLE, FOR UPDATE offsets, plain read), 32 concurrent publishers, no faults: must show skipped offsets' }
        : matrixCase;
    if (c.expected === 'valid') return [{ ...c, faults: dockerFaults }];
    if (!c.faults.every((f) => DOCKER_FAULTS.includes(f))) return [];
    // On containers the watermill race showed less often: 0 skipped of 1,550 requests in three runs (86 on
    // local children in the same hour), 69 of 10,050. At 10,050 a later day's quiet machine gave 0, 35, 16 and
    // 1 in four runs: the race needs a reader to land in the InnoDB allocator window, so a run can miss it.
    // The no-fault controls get at least 30,000 (~30 s) to make a clean run of the control unlikely, not
    // impossible: a clean control fails the run, it never passes a broken consumer.
    return c.faults.length === 0 ? [{ ...c, requests: Math.max(c.requests, DOCKER_NO_FAULT_CONTROL_REQUESTS) }] : [c];
  });
  const restarts: readonly FaultName[] = ['worker-stop', 'db-restart'];
  const seedCheck: ChaosCase = {
    name: 'seed-check',
    description: `the Watermill example's check: ${SEED_CHECK_REQUESTS} requests to one counter while the worker and database containers restart; the count must equal ${SEED_CHECK_REQUESTS}`,
    mode: 'offset',
    worker: { mode: 'offset', batchSize: 1000 },
    workers: 1,
    // A request the restarts leave without an answer is sent again; de-duplication makes the resend safe.
    server: { dedup: true },
    retry: true,
    faults: only === undefined ? restarts : restarts.filter((f) => only.includes(f)),
    perFault: 3,
    requests: SEED_CHECK_REQUESTS,
    concurrency: 16,
    ratePerSecond: 0,
    counters: 1,
    expected: 'valid',
    tolerates: EXACTLY_ONCE_TOLERATES,
    exactTotal: SEED_CHECK_REQUESTS,
  };
  return [...cases, seedCheck];
}

/**
 * What a soak schedule may draw from: every single-server fault but worker-pause, whose 12 s hold alone is
 * longer than a soak schedule (the standard profile runs it), and those the engine leaves out.
 */
export function soakFaults(engine: EngineName): FaultName[] {
  const skipped = new Set(engineSkips(engine).map((s) => s.what));
  return ALL_FAULTS.filter((f) => f !== 'worker-pause' && !skipped.has(f));
}

/** HTTP requests and raw INSERTs of one soak schedule: a few seconds of load around one to three injections. */
export const SOAK_REQUESTS = 300;
export const SOAK_RAW_REQUESTS = 100;

/**
 * `runs` random schedules (`make chaos PROFILE=soak RUNS=N`): run i draws, from seed baseSeed + i, its mode,
 * batch size, one to three fault kinds of soakFaults and, in the nemesis, their order, pauses and targets. Each
 * is an exactly-once case and must stay valid; a failing one is reproduced with `--seed <its seed> --runs 1`.
 */
export function soakCases(engine: EngineName, runs: number, baseSeed: number): ChaosCase[] {
  const allowed = soakFaults(engine);
  return Array.from({ length: runs }, (_, i): ChaosCase => {
    const seed = (baseSeed + i) >>> 0;
    const random = mulberry32(seed ^ 0x5eed);
    const mode: TopicMode = random() < 0.5 ? 'offset' : 'queue';
    const batchSize = [100, 1000][Math.floor(random() * 2)]!;
    const pool = [...allowed];
    const kinds: FaultName[] = [];
    const n = 1 + Math.floor(random() * Math.min(3, pool.length));
    while (kinds.length < n) kinds.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
    // In registry order, so the same draw always lists the same way (the nemesis shuffles them anyway).
    kinds.sort((a, b) => FAULT_NAMES.indexOf(a) - FAULT_NAMES.indexOf(b));
    return {
      name: `soak-${seed}`,
      description: `seed ${seed}: ${mode} mode, batch ${batchSize}, faults ${kinds.join(', ')} in a drawn order and timing; must stay valid`,
      mode,
      worker: mode === 'queue' ? { mode, batchSize, concurrency: 2 } : { mode, batchSize },
      workers: mode === 'queue' ? 2 : 1,
      server: { topicSchema: mode },
      retry: false,
      faults: kinds,
      perFault: 1,
      requests: SOAK_REQUESTS,
      concurrency: 16,
      ratePerSecond: 0,
      counters: 0,
      raw: { publishers: 8, requests: SOAK_RAW_REQUESTS, hold: { every: 50, ms: 100 } },
      expected: 'valid',
      tolerates: EXACTLY_ONCE_TOLERATES,
      seed,
    };
  });
}
