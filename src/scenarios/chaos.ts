// The chaos scenario (DESIGN 5, issue 4): for each case of the matrix, a fresh system (private database,
// server, workers behind a TCP proxy), a load that records every request's outcome, faults on their own timer,
// then heal, wait until ready, quiesce, snapshot, check. The verdicts decide the exit code.
import type { GapCounts } from '../system/workerGapLine.ts';
import { createPool, executorOf, parseMysqlUrl } from '../system/db/pool.ts';
import { selectAllMessages, selectMaxOffset } from '../system/sql/messagesTable.ts';
import { selectAckedOffset } from '../system/sql/offsetsTable.ts';
import { countQueue, selectAckedQueueOffsets, selectAllQueueMessages } from '../system/sql/queueTable.ts';
import { countPoisoned } from '../system/sql/poisonTable.ts';
import { selectAllCounters, sumCounters } from '../system/sql/counterTable.ts';
import type { Message, SqlExecutor } from '../system/pubsub/types.ts';
import { SystemUnderTest } from './systemUnderTest.ts';
import { httpStatus } from './childService.ts';
import type { ChildService } from './childService.ts';
import { TcpProxy } from './faults/tcpProxy.ts';
import { LocalBackend } from './faults/localBackend.ts';
import { DockerBackend } from './faults/dockerBackend.ts';
import { localAllocatorStaller, unavailableStaller } from './faults/allocatorStallFault.ts';
import { resolveFaults, runNemesis, skipReason, type FaultContext, type FaultEvent } from './nemesis.ts';
import { runHistoryLoad } from './historyLoad.ts';
import { runRawPublishLoad } from './rawPublishLoad.ts';
import type { RequestAttempt } from './history.ts';
import { check, type DbSnapshot, type SnapshotMessage, type Verdict } from './checker.ts';
import { PhaseClock, type PhaseTiming } from './phases.ts';
import { FAULT_SECONDS, type ChaosCase, type Expectation } from './chaosMatrix.ts';

export interface ChaosRunOptions {
  mysqlUrl: string | undefined;
  mariadbBinDir: string | undefined;
  searchPath: readonly string[];
  /** How long pause and delay faults hold (ms). */
  holdMs: number;
  /** Pause between one fault's recovery and the next injection (ms). */
  intervalMs: number;
  /** Requests before the measured load, so start-up is not what the faults hit first. */
  warmupRequests: number;
  /** Counters must stay unchanged this long, with nothing pending, for the run to count as quiesced (ms). */
  quiesceStableMs: number;
  /** After this the case is checked anyway; its messages still pending make the verdict unknown (ms). */
  quiesceTimeoutMs: number;
  recoveryTimeoutMs: number;
  /** Database sampling period for the timeline and the drain rates (ms). */
  sampleMs: number;
  log: (line: string) => void;
  signal: AbortSignal | undefined;
  /** Run against a Docker Compose deployment instead of local children (BACKEND=docker). */
  docker: DockerTarget | undefined;
}

export interface DockerTarget {
  /** The Compose project (docker-compose.yml's `name:`). */
  project: string;
  /** Engine API socket. */
  socketPath: string;
  /** Where the Compose server is published on this machine. */
  serverUrl: string;
}

export const DEFAULT_CHAOS_RUN_OPTIONS: ChaosRunOptions = {
  mysqlUrl: undefined,
  mariadbBinDir: undefined,
  searchPath: [],
  // 1 s: longer than a batch transaction here (a few ms to ~100 ms), so the fault is felt mid-batch.
  holdMs: 1_000,
  intervalMs: 500,
  warmupRequests: 50,
  // 2 s: ten times the worker's slowest idle poll plus a batch; a moving drain changes the sum well within it.
  quiesceStableMs: 2_000,
  quiesceTimeoutMs: 120_000,
  // 20 s: the slowest recovery seen in the standard run was ~3 s (worker restart under load).
  recoveryTimeoutMs: 20_000,
  sampleMs: 250,
  log: () => undefined,
  signal: undefined,
  docker: undefined,
};

export interface TimelineSample {
  tMs: number;
  published: number;
  acked: number;
  requestsOk: number;
}

export interface CaseResult {
  case: ChaosCase;
  verdict: Verdict | undefined;
  expected: Expectation;
  /** The case shows what it must: valid for exactly-once cases, the violation for controls. */
  passed: boolean;
  why: string;
  faults: FaultEvent[];
  skippedFaults: string[];
  history: RequestAttempt[];
  timeline: TimelineSample[];
  phases: PhaseTiming[];
  quiesced: boolean;
  drainMsgsPerS: number | undefined;
  drainDuringFaultsMsgsPerS: number | undefined;
  durationMs: number;
  databaseVersion: string | undefined;
  /** Rows in eob_poison_<topic> at the snapshot: messages the workers set aside (0 unless a payload was rejected; on the docker backend, whose database is shared by the cases, the run so far). */
  poisoned: number | undefined;
  /** Offset mode: offsets the workers passed as holes, and of those, by the gap timeout (a bound) alone. */
  gapsPassed: number | undefined;
  gapsPassedByTimeout: number | undefined;
  error: string | undefined;
}

export function expectationMet(expected: Expectation, v: Verdict): { passed: boolean; why: string } {
  switch (expected) {
    case 'valid':
      return { passed: v.verdict === 'valid', why: v.verdict === 'valid' ? 'valid' : `${v.verdict}: ${v.reasons.join('; ')}` };
    case 'duplicated':
      return { passed: v.duplicated > 0, why: v.duplicated > 0 ? `detected ${v.duplicated} duplicated` : 'control came out clean: no duplicate detected' };
    case 'lost':
      return { passed: v.lost > 0, why: v.lost > 0 ? `detected ${v.lost} lost` : 'control came out clean: no loss detected' };
    case 'unknown-outcomes': {
      const workerClean = v.lost === 0 && v.duplicated === 0;
      if (v.requests.unknown === 0) return { passed: false, why: 'control came out clean: no unknown outcome' };
      return {
        passed: workerClean,
        why: workerClean
          ? `${v.requests.unknown} unknown outcome(s) reported; publish_duplicated ${v.publishDuplicated}, attributed to publishing`
          : `worker-side violation: lost ${v.lost}, duplicated ${v.duplicated}`,
      };
    }
  }
}

const TOPIC = 'counter';
const GROUP = 'counter';

/** Runs one case on a fresh system; never throws for a failure of the system (that is a result), only for bugs. */
export async function runCase(c: ChaosCase, options: Partial<ChaosRunOptions> = {}): Promise<CaseResult> {
  const o: ChaosRunOptions = { ...DEFAULT_CHAOS_RUN_OPTIONS, ...options };
  const clock = new PhaseClock((phase) => o.log(`${c.name}: ${phase}`));
  const history: RequestAttempt[] = [];
  const timeline: TimelineSample[] = [];
  let faults: FaultEvent[] = [];
  const skippedFaults: string[] = [];
  let verdict: Verdict | undefined;
  let quiesced = false;
  let error: string | undefined;
  let databaseVersion: string | undefined;
  let poisoned: number | undefined;
  let system: CaseSystem | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    const setup = await clock.run('setup', async () => {
      system = o.docker === undefined ? await startLocalSystem(c, o) : await startDockerSystem(c, o, o.docker);
      return system;
    });
    databaseVersion = setup.databaseVersion;
    const db = setup.db;
    const progress = () => withTimeout(readProgress(db, c.mode), PROBE_TIMEOUT_MS, 'progress read');
    let requestsOk = 0;

    sampler = (async () => {
      while (sampling) {
        try {
          const p = await progress();
          timeline.push({ tMs: clock.now(), published: p.published, acked: p.acked, requestsOk });
        } catch {
          // the database is down (a fault): no sample
        }
        await sleep(o.sampleMs);
      }
    })();

    await clock.run('warmup', async () => {
      const warm = await runHistoryLoad({
        baseUrl: setup.serverBaseUrl,
        caseName: `${c.name}-warmup`,
        requests: o.warmupRequests,
        concurrency: Math.min(4, c.concurrency),
        ratePerSecond: 0,
        counters: c.counters,
        retry: c.retry,
        maxAttempts: 30,
        retryBackoffMs: 100,
        requestTimeoutMs: 10_000,
        phase: 'warmup',
        t0: clock.t0,
      });
      history.push(...warm.attempts);
    });

    const ctx: FaultContext = { ...setup.faults, ackMode: c.worker.ackMode ?? 'transactional', holdMs: o.holdMs };
    const definitions = resolveFaults(c.faults).filter((f) => {
      const reason = skipReason(f, ctx);
      if (reason !== undefined) skippedFaults.push(`${f.name} (${reason})`);
      return reason === undefined;
    });
    for (const s of skippedFaults) o.log(`${c.name}: skipping fault ${s}`);

    await clock.run('load', async () => {
      const initialDelayMs = 1_000;
      const scheduleS = definitions.reduce((sum, f) => sum + c.perFault * (FAULT_SECONDS[f.name] + o.intervalMs / 1000), 0);
      // Spread the requests over the fault schedule (plus a second on either side), so faults hit a system
      // under load; with no faults the load goes as fast as it can.
      const rate = c.ratePerSecond > 0 ? c.ratePerSecond : definitions.length === 0 ? 0 : c.requests / (scheduleS + 2 + initialDelayMs / 1000);
      const stopOn = o.signal ?? new AbortController().signal;
      let loading = true;
      const nemesis = runNemesis(
        ctx,
        {
          faults: definitions,
          perFault: c.perFault,
          intervalMs: o.intervalMs,
          initialDelayMs,
          recoveryTimeoutMs: o.recoveryTimeoutMs,
          recovered: (_since, signal) => waitRecovered(setup.serverBaseUrl, progress, signal),
          t0: clock.t0,
          log: (line) => o.log(`${c.name}: ${line}`),
          continueWhile: () => loading,
        },
        stopOn,
      );
      const raw = c.raw === undefined
        ? undefined
        : runRawPublishLoad({
            mysqlUrl: setup.databaseUrl,
            mode: c.mode,
            topic: TOPIC,
            caseName: c.name,
            requests: c.raw.requests,
            publishers: c.raw.publishers,
            ratePerSecond: rate === 0 ? 0 : (rate * c.raw.requests) / Math.max(1, c.requests),
            counters: c.counters,
            holdEvery: c.raw.hold?.every ?? 0,
            holdMs: c.raw.hold?.ms ?? 0,
            queryTimeoutMs: 10_000,
            connectTimeoutMs: 5_000,
            phase: 'load',
            t0: clock.t0,
            onAttempt: (a) => {
              if (a.outcome === 'ok') requestsOk += 1;
            },
            ...(o.signal === undefined ? {} : { signal: o.signal }),
          });
      const http = runHistoryLoad({
        baseUrl: setup.serverBaseUrl,
        caseName: c.name,
        requests: c.requests,
        concurrency: c.concurrency,
        ratePerSecond: rate,
        counters: c.counters,
        retry: c.retry,
        maxAttempts: 30,
        retryBackoffMs: 100,
        requestTimeoutMs: 10_000,
        phase: 'load',
        t0: clock.t0,
        onAttempt: (a) => {
          if (a.outcome === 'ok') requestsOk += 1;
        },
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
      // Both loads settle before the history is kept, so a failing one does not leave the other running.
      const [httpLoad, rawLoad] = await Promise.allSettled([http, raw]).finally(() => {
        loading = false; // also when a load fails: the nemesis must not outlive it
      });
      if (httpLoad.status === 'fulfilled') history.push(...httpLoad.value.attempts);
      if (rawLoad.status === 'fulfilled' && rawLoad.value !== undefined) history.push(...rawLoad.value.attempts);
      if (httpLoad.status === 'rejected') throw httpLoad.reason;
      if (rawLoad.status === 'rejected') throw rawLoad.reason;
      // The schedule runs to its end even if the load finished first: every planned fault is injected. If the
      // load lasts longer, faults go on until it ends.
      faults = await nemesis;
    });

    await clock.run('heal', () => setup.heal());

    await clock.run('ready', async () => {
      const deadline = Date.now() + 60_000;
      while ((await httpStatus(`${setup.serverBaseUrl}/healthz`, 1_000)) !== 200) {
        if (Date.now() > deadline) throw new Error('server /healthz did not answer 200 within 60 s after healing');
        await sleep(100);
      }
    });

    quiesced = await clock.run('quiesce', () => quiesce(db, c.mode, o));
    if (!quiesced) o.log(`${c.name}: not quiesced within ${o.quiesceTimeoutMs} ms (a finding: the drain did not finish)`);
    sampling = false;
    await sampler;

    const snapshot = await clock.run('snapshot', async () => {
      const full = await takeSnapshot(db, c.mode);
      return setup.scopeToHistory ? scopeSnapshot(full, history) : full;
    });
    poisoned = await countPoisoned(db, TOPIC);
    verdict = await clock.run('check', async () => check(history, snapshot, { endToEnd: c.retry && c.server.dedup === true }));
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    o.log(`${c.name}: ${error}`);
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await (system as CaseSystem | undefined)?.close().catch((e: Error) => o.log(`${c.name}: close failed: ${e.message}`));
  }
  // Only a worker that handles gaps passes them; the others step over holes without counting them.
  const handlesGaps = c.mode === 'offset' && (c.worker.gapHandling ?? (c.worker.profile === 'watermill' ? 'none' : 'contiguous')) === 'contiguous';
  const gaps = handlesGaps ? (system as CaseSystem | undefined)?.gapCounts() : undefined;
  const met = verdict === undefined ? { passed: false, why: `no verdict: ${error ?? 'unknown error'}` } : expectationMet(c.expected, verdict);
  const notRecovered = faults.filter((f) => f.recoveryMs === undefined).length;
  if (notRecovered > 0) met.why += `; ${notRecovered} fault(s) did not recover within ${o.recoveryTimeoutMs} ms`;
  if (!quiesced && verdict !== undefined) met.why += `; not quiesced within ${o.quiesceTimeoutMs} ms`;
  const stallProofs = faults.flatMap((f) => (f.proof === undefined ? [] : [f.proof]));
  const stalls = stallProofs.reduce((n, p) => n + p.stalls, 0);
  if (stalls > 0) {
    const inWindow = stallProofs.reduce((n, p) => n + p.inWindow, 0);
    met.why += inWindow > 0
      ? `; db-stall-allocator: ${stalls} stalls, ${inWindow} checked and proven in the allocator window`
      : `; db-stall-allocator: ${stalls} stalls, none proven in the allocator window (the checks found no fresh INNODB_TRX read)`;
  }
  const loadPhase = clock.timings.find((t) => t.phase === 'load');
  return {
    case: c,
    verdict,
    expected: c.expected,
    passed: met.passed && error === undefined,
    why: error === undefined ? met.why : `error: ${error}`,
    faults,
    skippedFaults,
    history,
    timeline,
    phases: clock.timings,
    quiesced,
    drainMsgsPerS: loadPhase === undefined ? undefined : rateOver(timeline, loadPhase.startMs, loadPhase.endMs),
    drainDuringFaultsMsgsPerS: drainDuringFaults(timeline, faults),
    durationMs: clock.now(),
    databaseVersion,
    poisoned,
    gapsPassed: gaps?.gapsPassed,
    gapsPassedByTimeout: gaps?.gapsPassedByTimeout,
    error,
  };
}

interface Progress {
  published: number;
  acked: number;
}

/** Offset mode: max offset and the group's acked offset; queue mode: rows and acked rows. */
async function readProgress(db: SqlExecutor, mode: 'offset' | 'queue'): Promise<Progress> {
  if (mode === 'queue') {
    const q = await countQueue(db, TOPIC);
    return { published: q.total, acked: q.acked };
  }
  const [published, acked] = await Promise.all([selectMaxOffset(db, TOPIC), selectAckedOffset(db, TOPIC, GROUP)]);
  return { published, acked };
}

/**
 * Recovered = the server answers /healthz and the drain moves again: the acked position passes where it was
 * when the first reading after healing succeeded, or nothing is left to drain.
 */
async function waitRecovered(serverBaseUrl: string, progress: () => Promise<Progress>, signal: AbortSignal): Promise<void> {
  let baseline: number | undefined;
  while (!signal.aborted) {
    const healthy = (await httpStatus(`${serverBaseUrl}/healthz`, 1_000)) === 200;
    let p: Progress | undefined;
    try {
      p = await progress();
    } catch {
      p = undefined;
    }
    if (p !== undefined) {
      if (healthy && (p.acked >= p.published || (baseline !== undefined && p.acked > baseline))) return;
      baseline ??= p.acked;
    }
    await sleep(50);
  }
  throw new Error('not recovered');
}

async function quiesce(db: SqlExecutor, mode: 'offset' | 'queue', o: ChaosRunOptions): Promise<boolean> {
  const deadline = Date.now() + o.quiesceTimeoutMs;
  let stableSince: number | undefined;
  let lastTotal: number | undefined;
  while (Date.now() < deadline) {
    try {
      const p = await withTimeout(readProgress(db, mode), PROBE_TIMEOUT_MS, 'progress read');
      const total = await withTimeout(sumCounters(db), PROBE_TIMEOUT_MS, 'counter sum');
      if (p.acked >= p.published && total === lastTotal) {
        stableSince ??= Date.now();
        if (Date.now() - stableSince >= o.quiesceStableMs) return true;
      } else {
        stableSince = undefined;
      }
      lastTotal = total;
    } catch {
      stableSince = undefined;
    }
    await sleep(200);
  }
  return false;
}

export async function takeSnapshot(db: SqlExecutor, mode: 'offset' | 'queue'): Promise<DbSnapshot> {
  const counters = await selectAllCounters(db);
  if (mode === 'queue') {
    const [messages, acked] = await Promise.all([selectAllQueueMessages(db, TOPIC), selectAckedQueueOffsets(db, TOPIC)]);
    return { messages: messages.map((m) => toSnapshotMessage(m, acked.has(m.offset))), counters };
  }
  const [messages, ackedOffset] = await Promise.all([selectAllMessages(db, TOPIC), selectAckedOffset(db, TOPIC, GROUP)]);
  return { messages: messages.map((m) => toSnapshotMessage(m, m.offset <= ackedOffset)), counters, ackedOffset };
}

function toSnapshotMessage(m: Message, acked: boolean): SnapshotMessage {
  const payload = m.payload as { counter_uuid?: unknown } | null;
  const requestId = m.metadata.request_id;
  return {
    offset: m.offset,
    requestId: typeof requestId === 'string' ? requestId : undefined,
    counterUuid: payload !== null && typeof payload === 'object' && typeof payload.counter_uuid === 'string' ? payload.counter_uuid : undefined,
    acked,
  };
}

/** Acked messages per second between two case times, from the samples nearest outside the window. */
export function rateOver(samples: readonly TimelineSample[], fromMs: number, toMs: number): number | undefined {
  const before = [...samples].reverse().find((s) => s.tMs <= fromMs) ?? samples[0];
  const after = samples.find((s) => s.tMs >= toMs) ?? samples[samples.length - 1];
  if (before === undefined || after === undefined || after.tMs <= before.tMs) return undefined;
  return ((after.acked - before.acked) * 1000) / (after.tMs - before.tMs);
}

/** Acked messages per second summed over every fault window (injection to recovery) / their total length. */
export function drainDuringFaults(samples: readonly TimelineSample[], faults: readonly FaultEvent[]): number | undefined {
  let messages = 0;
  let ms = 0;
  for (const f of faults) {
    const end = f.recoveredMs ?? f.healStartMs;
    const before = [...samples].reverse().find((s) => s.tMs <= f.startMs);
    const after = samples.find((s) => s.tMs >= end);
    if (before === undefined || after === undefined || after.tMs <= before.tMs) continue;
    messages += after.acked - before.acked;
    ms += after.tMs - before.tMs;
  }
  return ms > 0 ? (messages * 1000) / ms : undefined;
}

/**
 * A read of the harness's own that hangs (a connection to a server that died mid-query without a reset) must
 * not hang the case: 5 s is ~100 times a progress read here, and the loops that use it simply try again.
 */
const PROBE_TIMEOUT_MS = 5_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface ChaosSuiteOptions extends ChaosRunOptions {
  cases: readonly ChaosCase[];
  /** Called before each case (progress bar). */
  onCase: (index: number, c: ChaosCase) => void;
}

/** Runs the cases one after another (each on a fresh system); stops early only when `signal` aborts. */
export async function runChaosCases(o: ChaosSuiteOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const [i, c] of o.cases.entries()) {
    if (o.signal?.aborted === true) break;
    o.onCase(i, c);
    const r = await runCase(c, o);
    o.log(`${c.name}: ${r.passed ? 'PASS' : 'FAIL'} (expected ${r.expected}; ${r.why})`);
    results.push(r);
  }
  return results;
}

/** What a case runs against: local children (the default) or a Docker Compose deployment. */
interface CaseSystem {
  /** The harness's own session: sampler, recovery probe, conn-kill, snapshot. */
  db: SqlExecutor;
  /** The database itself, for the raw SQL publishers (never through the workers' proxy). */
  databaseUrl: string;
  serverBaseUrl: string;
  faults: Omit<FaultContext, 'ackMode' | 'holdMs'>;
  databaseVersion: string | undefined;
  /** Everything running again, network faults removed. */
  heal(): Promise<void>;
  close(): Promise<void>;
  /** The database may hold earlier runs' rows (docker): check only this run's requests and counters. */
  scopeToHistory: boolean;
  /** Offsets the workers passed as holes (and by the bound alone); undefined where their output is not read. */
  gapCounts(): GapCounts | undefined;
}

async function startLocalSystem(c: ChaosCase, o: ChaosRunOptions): Promise<CaseSystem> {
  const sut = await SystemUnderTest.start({
    mysqlUrl: o.mysqlUrl,
    mariadbBinDir: o.mariadbBinDir,
    searchPath: o.searchPath,
    handleSignals: false,
    log: o.log,
  });
  let proxy: TcpProxy | undefined;
  try {
    const dbUrl = parseMysqlUrl(sut.mysqlUrl);
    const tcp = await TcpProxy.start({ targetHost: dbUrl.host, targetPort: dbUrl.port });
    proxy = tcp;
    // The workers reach the database only through the proxy: network faults and conn-kill act on them alone.
    const credentials = `${encodeURIComponent(dbUrl.user)}${dbUrl.password === '' ? '' : `:${encodeURIComponent(dbUrl.password)}`}`;
    const workerUrl = `mysql://${credentials}@127.0.0.1:${tcp.port}/${dbUrl.database}`;
    const server = await sut.startServer(c.server);
    const workers: ChildService[] = [];
    for (let i = 0; i < c.workers; i++) workers.push(await sut.startWorker(c.worker, `worker ${i + 1}`, workerUrl));
    const backend = new LocalBackend(sut, server, workers, { workerFlags: c.worker, workerMysqlUrl: workerUrl });
    const rows = await sut.db.query<{ v: string }[]>('SELECT VERSION() AS v');
    // Only cases that inject it pay for the debugger's first attach.
    const allocatorStaller = !c.faults.includes('db-stall-allocator')
      ? undefined
      : sut.managedDatabase === undefined
        ? unavailableStaller('MYSQL_URL names a database this harness did not start; gdb attaches only to a private one (unset MYSQL_URL)')
        : await localAllocatorStaller({ serverPid: () => sut.managedDatabase?.pid, mysqlUrl: sut.mysqlUrl, log: o.log });
    return {
      db: sut.db,
      databaseUrl: sut.mysqlUrl,
      serverBaseUrl: server.baseUrl,
      faults: {
        backend,
        proxy: tcp,
        admin: sut.db,
        databaseProcess: sut.managedDatabase !== undefined,
        crashWorkerAt: (spec, timeoutMs) => backend.crashWorkerAt(spec, timeoutMs),
        allocatorStaller,
      },
      databaseVersion: rows[0]?.v,
      scopeToHistory: false,
      gapCounts: () => sut.workerGaps.totals(),
      async heal() {
        tcp.setDelay(0);
        const managed = sut.managedDatabase;
        if (managed !== undefined) {
          if (managed.isPaused) managed.resume();
          if (!managed.running) await managed.start();
        }
        for (const child of [server.service, ...backend.workers]) {
          child.resume();
          if (!child.running) await child.start();
        }
      },
      async close() {
        await tcp.close();
        await sut.close();
      },
    };
  } catch (error) {
    await proxy?.close().catch(() => undefined);
    await sut.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Docker Compose: faults act on the containers through dockerode; the harness reads the database at
 * MYSQL_URL (the mysql service must be published to this machine). No proxy and no failpoint restarts: those
 * faults are skipped and listed as such. The case's configuration is the Compose file's, not the matrix's.
 */
async function startDockerSystem(c: ChaosCase, o: ChaosRunOptions, target: DockerTarget): Promise<CaseSystem> {
  if (o.mysqlUrl === undefined) {
    throw new Error(
      'chaos with the docker backend reads the Compose database directly: publish the mysql service port and set ' +
        'MYSQL_URL (e.g. mysql://root:eob@127.0.0.1:3306/eob)',
    );
  }
  const pool = createPool({ url: o.mysqlUrl, connectionLimit: 4, connectTimeoutMs: 5_000, role: 'chaos' });
  const db = executorOf(pool);
  const backend = new DockerBackend({ project: target.project, socketPath: target.socketPath });
  await backend.containers('worker');
  const rows = await db.query<{ v: string }[]>('SELECT VERSION() AS v');
  o.log(`${c.name}: docker backend, project ${target.project}; the Compose services' own configuration is what is tested`);
  return {
    db,
    databaseUrl: o.mysqlUrl,
    serverBaseUrl: target.serverUrl.replace(/\/$/, ''),
    faults: {
      backend,
      proxy: undefined,
      admin: db,
      databaseProcess: true,
      crashWorkerAt: undefined,
      allocatorStaller: unavailableStaller('the docker backend: gdb would have to attach to mariadbd inside its container'),
    },
    databaseVersion: rows[0]?.v,
    scopeToHistory: true,
    gapCounts: () => undefined,
    async heal() {
      for (const role of ['db', 'server', 'worker'] as const) {
        const containers = await backend.containers(role);
        if (containers.some((x) => x.State === 'paused')) await backend.resume(role);
        if (containers.some((x) => x.State !== 'running' && x.State !== 'paused')) await backend.start(role);
      }
    },
    async close() {
      await pool.end();
    },
  };
}

/** Keeps the messages and counters of this run's requests only (a shared database holds earlier runs). */
export function scopeSnapshot(snapshot: DbSnapshot, history: readonly RequestAttempt[]): DbSnapshot {
  const ids = new Set(history.map((a) => a.requestId));
  const counters = new Set(history.map((a) => a.counterUuid));
  return {
    ...snapshot,
    messages: snapshot.messages.filter((m) => (m.requestId !== undefined && ids.has(m.requestId)) || (m.counterUuid !== undefined && counters.has(m.counterUuid))),
    counters: new Map([...snapshot.counters].filter(([id]) => counters.has(id))),
  };
}
