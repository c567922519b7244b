// The worker's process spec: the typed options a harness (or any parent process) gives a worker, the flags
// that carry each one on `eob worker`'s command line, and the settings the worker will resolve from them.
// Defaults live in DEFAULT_WORKER_OPTIONS (worker.ts) only: the CLI's yargs defaults and resolveWorkerSpec both
// read them, so a parent knows what a child runs with without asking it. The URL is not part of the spec: it
// travels in MYSQL_URL, because a command line is world-readable (ps, /proc/<pid>/cmdline) and the URL carries
// the password.
import { DEFAULT_WORKER_OPTIONS, resolveWorkerSettings, type ResolvedWorkerSettings, type WorkerOptions } from './worker.ts';

/** What a parent may set; undefined fields take the worker's defaults. */
export type WorkerSpec = Partial<Omit<WorkerOptions, 'databaseUrl' | 'log' | 'onGapPassed' | 'onConflictRetry' | 'startTimeoutMs'>> & {
  /** Failpoints to arm (`name=N`), e.g. to crash the worker at a chosen step. */
  failpoints?: readonly string[];
};

type FlagOf<K extends keyof WorkerSpec> = (value: NonNullable<WorkerSpec[K]>) => string[];

const valueFlag =
  (flag: string) =>
  (value: string | number): string[] => [flag, String(value)];

/**
 * Each field's flag on `eob worker`, in the order argv lists them. The worker's CLI defines the same flags
 * (test/processSpec.test.ts checks that every one here exists there).
 */
export const WORKER_FLAGS: { [K in keyof WorkerSpec]-?: FlagOf<K> } = {
  mode: valueFlag('--mode'),
  topic: valueFlag('--topic'),
  batchSize: valueFlag('--batch-size'),
  pollIntervalMs: valueFlag('--poll-interval-ms'),
  caughtUpPauseMs: valueFlag('--caught-up-pause-ms'),
  // The CLI accepts READ-COMMITTED as one word; a space would need quoting in every log of the command.
  isolation: (v) => ['--isolation', v.replace(/ /g, '-')],
  consumerGroup: valueFlag('--consumer-group'),
  ackMode: valueFlag('--ack-mode'),
  concurrency: valueFlag('--concurrency'),
  eventLog: valueFlag('--event-log'),
  handler: valueFlag('--handler'),
  gapHandling: valueFlag('--gap-handling'),
  poisonAfterFailures: valueFlag('--poison-after-failures'),
  gapProof: valueFlag('--gap-proof'),
  gapTimeoutMs: valueFlag('--gap-timeout-ms'),
  graceful: (v) => (v ? [] : ['--no-graceful']),
  // 0 is the default (off): said only when on, so a spec without prunes gives the same argv as before.
  pruneEveryS: (v) => (v > 0 ? ['--prune-every', String(v)] : []),
  pruneBatchSize: valueFlag('--prune-batch-size'),
  pruneDedupWindowS: valueFlag('--dedup-window-s'),
  metricsPort: valueFlag('--metrics-port'),
  // The worker takes one `name=N[,name=N]` value (the server takes the flag repeated).
  failpoints: (v) => (v.length > 0 ? ['--failpoint', v.join(',')] : []),
};

/** `eob worker` argv for `spec`: only the fields given, each through its flag. */
export function workerArgv(spec: WorkerSpec): string[] {
  const args = ['worker'];
  for (const key of Object.keys(WORKER_FLAGS) as (keyof WorkerSpec)[]) {
    const value = spec[key];
    if (value === undefined) continue;
    args.push(...(WORKER_FLAGS[key] as (v: unknown) => string[])(value));
  }
  return args;
}

/** The options a worker started with `spec` runs with: its defaults, then the spec, then the resolution rules. */
export function resolveWorkerSpec(spec: WorkerSpec): Omit<WorkerOptions, 'databaseUrl' | 'log' | 'onGapPassed'> & ResolvedWorkerSettings {
  const { failpoints: _failpoints, ...given } = spec;
  const { log: _log, onGapPassed: _onGapPassed, ...defaults } = DEFAULT_WORKER_OPTIONS;
  const options = { ...defaults, ...given };
  return { ...options, ...resolveWorkerSettings(options) };
}
