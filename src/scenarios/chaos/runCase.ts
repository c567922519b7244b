// Runs one chaos case on a fresh system, phase by phase (phases.ts): start the system (assembly.ts), the load
// that records every attempt's outcome and the nemesis on its own timer, heal, wait until recovered,
// quiesce, snapshot, check. A failure of the system is a result; only a bug throws.
import { countPoisonedMessages, takeSnapshot } from '../../bench/tableReads.ts';
import { drainDuringFaults, rateOver } from '../../bench/metrics.ts';
import { httpStatus } from '../../harness/childService.ts';
import { resolveFaults, runNemesis, skipReason, type FaultContext, type FaultEvent } from './nemesis.ts';
import { counterUuidFor, runHistoryLoad } from './historyLoad.ts';
import { runRawPublishLoad } from './rawPublishLoad.ts';
import type { RequestAttempt } from './history.ts';
import { check, type Verdict } from './checker.ts';
import { PhaseClock } from './phases.ts';
import { FAULT_SECONDS, type ChaosCase } from './chaosMatrix.ts';
import { sleep, withTimeout } from '../../system/waiting.ts';
import { DEFAULT_CHAOS_RUN_OPTIONS, type ChaosRunOptions, GROUP, TOPIC } from './options.ts';
import { type CaseFacts, type CaseResult, type TimelineSample, consumerDescription, judgeCase } from './caseResult.ts';
import { buildWitnesses } from './witnesses.ts';
import type { DbSnapshot } from '../../bench/tableReads.ts';
import { PROBE_TIMEOUT_MS, quiesce, readProgress, waitRecovered } from './measure.ts';
import { type CaseSystem, startDockerSystem, startLocalSystem } from './assembly.ts';
import { startGaleraSystem } from './galeraAssembly.ts';
import { startReplicationSystem } from './replicationAssembly.ts';
import { gapHandlingFor } from '../../system/worker.ts';
import { readCounterTotal } from './measure.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readEventLog, type EventLogLine } from './consumerEventLog.ts';
import { checkOptionsFor } from './caseRecord.ts';

/**
 * The plan's estimate of a case's seconds, for the time left on the progress bar: the fault schedule as the
 * load phase computes it (plus its second on either side), a case without faults at ~1,000 requests/s, and
 * ~8 s of setup, warm-up, heal, quiesce (2 s stable) and check, as measured in the quick profile here.
 */
export function estimateCaseSeconds(c: ChaosCase, options: Partial<ChaosRunOptions> = {}): number {
  const o: ChaosRunOptions = { ...DEFAULT_CHAOS_RUN_OPTIONS, ...options };
  const faults = resolveFaults(c.faults);
  const scheduleS = faults.reduce((sum, f) => sum + c.perFault * (FAULT_SECONDS[f.name] + o.intervalMs / 1000), 0);
  const loadS = c.ratePerSecond > 0 ? c.requests / c.ratePerSecond : faults.length === 0 ? c.requests / 1_000 : scheduleS + 3;
  return 8 + loadS;
}

/**
 * The counter total is read with one drain-position sample in 4 (every second at the 250 ms default). With a
 * read every sample, ctl-innodb-trx-only came out clean (no loss caught) in 2 of 5 quick runs on this 2-core
 * machine under a load average of ~15, against 0 of 4 without the read; the control's catch is a race it wins
 * by a few messages there (2-43 lost), and the harness should not tilt it.
 */
const COUNTER_TOTAL_EVERY = 4;

/** Runs one case on a fresh system; never throws for a failure of the system (that is a result), only for bugs. */
export async function runCase(c: ChaosCase, options: Partial<ChaosRunOptions> = {}): Promise<CaseResult> {
  const o: ChaosRunOptions = { ...DEFAULT_CHAOS_RUN_OPTIONS, ...options };
  const seed = c.seed ?? o.seed;
  const clock = new PhaseClock((phase) => (o.onPhase === undefined ? o.log(`${c.name}: ${phase}`) : o.onPhase(c.name, phase)));
  const history: RequestAttempt[] = [];
  const timeline: TimelineSample[] = [];
  let faults: FaultEvent[] = [];
  const skippedFaults: string[] = [];
  let verdict: Verdict | undefined;
  let quiesced = false;
  let error: string | undefined;
  let databaseVersion: string | undefined;
  let poisoned: number | undefined;
  let exactCount: number | undefined;
  let system: CaseSystem | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  // The workers' event log (local children only: a container writes inside itself): what they read and when,
  // and the holes they passed, for the checker to tell a skip from a message read and not counted.
  const eventDir = o.docker === undefined ? mkdtempSync(path.join(os.tmpdir(), 'eob-events-')) : undefined;
  const eventLog = eventDir === undefined ? undefined : path.join(eventDir, 'events.jsonl');
  const withLog: ChaosCase = eventLog === undefined ? c : { ...c, worker: { ...c.worker, eventLog } };
  let consumerEvents: EventLogLine[] | undefined;
  let snapshot: DbSnapshot | undefined;
  // The case clock in wall-clock time: the event log's times are Date.now() of the worker processes.
  const startedAtMs = Math.round(Date.now() - (performance.now() - clock.t0));
  try {
    const setup = await clock.run('setup', async () => {
      system =
        o.docker !== undefined
          ? await startDockerSystem(c, o, o.docker)
          : o.topology === 'galera'
            ? await startGaleraSystem(withLog, o)
            : o.topology === 'primary-replica'
              ? await startReplicationSystem(withLog, o)
              : await startLocalSystem(withLog, o);
      return system;
    });
    databaseVersion = setup.databaseVersion;
    const db = setup.db;
    const progress = () => withTimeout(readProgress(db, setup.sql, c.mode), PROBE_TIMEOUT_MS, 'progress read');
    let requestsOk = 0;

    sampler = (async () => {
      let samples = 0;
      while (sampling) {
        try {
          const p = await progress();
          // The applied effects beside the acked messages: a control's lost or duplicated ones show as the gap.
          // Only every COUNTER_TOTAL_EVERY-th sample: the sum is a harness read the system under test shares
          // the database with, and reads every 250 ms went with ctl-innodb-trx-only coming out clean.
          const counterTotal = samples++ % COUNTER_TOTAL_EVERY === 0 ? await readCounterTotal(db, setup.sql).catch(() => undefined) : undefined;
          timeline.push({ tMs: clock.now(), published: p.published, acked: p.acked, requestsOk, counterTotal });
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
          seed,
          // A control's failpoint must reach its hazard first: only order and pauses are drawn for it.
          drawVariants: c.expected === 'valid',
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
            alsoUrls: setup.rawDatabaseUrls?.filter((u) => u !== setup.databaseUrl),
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
        alsoBaseUrls: setup.serverBaseUrls?.filter((u) => u !== setup.serverBaseUrl),
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

    quiesced = await clock.run('quiesce', () => quiesce(db, setup.sql, c.mode, o));
    if (!quiesced) o.log(`${c.name}: not quiesced within ${o.quiesceTimeoutMs} ms (a finding: the drain did not finish)`);
    sampling = false;
    await sampler;

    snapshot = await clock.run('snapshot', () => takeSnapshot(db, setup.sql, { mode: c.mode, topic: TOPIC, consumerGroup: GROUP }));
    poisoned = await countPoisonedMessages(db, setup.sql, TOPIC);
    // The load's requests all go to counter 0 of the case (counters: 1); the warmup's have counters of their own.
    if (c.exactTotal !== undefined) exactCount = snapshot.counters.get(counterUuidFor(c.name, 0)) ?? 0;
    consumerEvents = eventLog === undefined ? undefined : readEventLog(eventLog);
    const taken = snapshot;
    verdict = await clock.run('check', async () => check(history, taken, checkOptionsFor(c, consumerEvents)));
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    o.log(`${c.name}: ${error}`);
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await (system as CaseSystem | undefined)?.close().catch((e: Error) => o.log(`${c.name}: close failed: ${e.message}`));
    if (eventDir !== undefined) rmSync(eventDir, { recursive: true, force: true });
  }
  // Only a worker that handles gaps passes them; the others step over holes without counting them.
  const handlesGaps = o.engine === 'mariadb' && gapHandlingFor(c.mode, c.worker.handler ?? 'batched', c.worker.gapHandling, o.engine) === 'contiguous';
  const gaps = handlesGaps ? (system as CaseSystem | undefined)?.gapCounts() : undefined;
  const interrupted = o.signal?.aborted === true;
  const facts: CaseFacts = {
    error,
    interrupted,
    quiesced,
    quiesceTimeoutMs: o.quiesceTimeoutMs,
    recoveryTimeoutMs: o.recoveryTimeoutMs,
    faults,
    ...(exactCount === undefined ? {} : { exactCount }),
  };
  const judged = judgeCase(c, verdict, facts);
  const witnesses =
    verdict === undefined || snapshot === undefined
      ? []
      : buildWitnesses({ findings: verdict.findings, history, messages: snapshot.messages, events: consumerEvents, startedAtMs, faults, consumer: consumerDescription(c, o.engine) });
  const loadPhase = clock.timings.find((t) => t.phase === 'load');
  return {
    case: c,
    engine: o.engine,
    verdict,
    expected: c.expected,
    passed: judged.passed,
    why: judged.why,
    interrupted,
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
    conflictRetries: (system as CaseSystem | undefined)?.gapCounts()?.conflictRetries,
    topology: o.docker !== undefined ? 'single (docker)' : o.topology === 'primary-replica' ? `primary-replica (${c.replication?.level ?? '?'})` : o.topology,
    error,
    startedAtMs,
    consumerEvents,
    snapshot,
    facts,
    witnesses,
    seed,
  };
}
