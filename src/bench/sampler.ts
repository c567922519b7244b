// Polls the database while a point runs: how far consumption got, how much was published, and the lag.
// Measurement comes from the database, never from the worker's own report.
import type { SqlExecutor } from '../system/pubsub/types.ts';
import type { SqlEngine } from '../system/sql/engine.ts';
import type { ProgressSample } from './metrics.ts';
import type { TopicMode } from '../system/pubsub/types.ts';

export interface SamplerOptions {
  /** The engine whose tables are read (selectProgress). */
  engine: Pick<SqlEngine, 'name' | 'selectProgress' | 'progressReader'>;
  mode: TopicMode;
  topic: string;
  consumerGroup: string;
  /**
   * Poll interval. 250 ms keeps the sampler's own load on the database negligible (4 small queries a
   * second); drain points use 100 ms so a backlog that drains in 2 s still gets ~20 samples.
   */
  intervalMs: number;
}

type ReadProgress = (db: SqlExecutor) => ReturnType<SqlEngine['selectProgress']>;

/**
 * How one poller reads progress: the engine's progressReader. On PostgreSQL selectProgress counts the topic's
 * rows (offsets are not in delivery order there), so its poller carries the counts from reading to reading
 * (the same figures; 15-21 ms per reading at a 150,000-row backlog became ~3 ms for 20,000 rows consumed since
 * the last one).
 */
export function progressReaderFor(o: SamplerOptions): ReadProgress {
  return o.engine.progressReader(o);
}

/** One reading of progress, published and lag (what each means per mode: selectProgress). */
export async function readSample(db: SqlExecutor, o: SamplerOptions, atMs: number, read: ReadProgress = (d) => o.engine.selectProgress(d, o)): Promise<ProgressSample> {
  const r = await read(db);
  return { atMs, progress: r.progress, published: r.published, ...(r.lagMs === undefined ? {} : { lagMs: r.lagMs }) };
}

export interface Sampler {
  readonly samples: readonly ProgressSample[];
  /** The latest sample (taken now if none yet). */
  latest(): Promise<ProgressSample>;
  /** Resolves when `predicate` holds for a sample, or false at the deadline / abort. */
  waitFor(predicate: (s: ProgressSample) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Starts polling; resolves once the first reading, the baseline every later one is set against, has been
 * taken. That reading is the costly one: on PostgreSQL it counts every row of the topic (pgProgressReader;
 * 73-120 ms at 400,000 rows), where each later one counts what changed since. A point opens its timed window
 * (its CPU readings, its consumers, its load) only after this resolves, so the window measures the system and
 * not the baseline. Errors of one poll (a restarting database) are counted and polling goes on; a first poll
 * that fails resolves this too, and the next reading is the baseline.
 */
export async function startSampler(db: SqlExecutor, options: SamplerOptions, now: () => number = () => performance.now()): Promise<Sampler> {
  const read = progressReaderFor(options);
  return startReadingSampler(db, (d, atMs) => readSample(d, options, atMs, read), options.intervalMs, now);
}

/**
 * The same polling over any reading of progress (a peer job queue's own tables, bench/peers/): `read` takes
 * one sample at `atMs`; the first is the baseline, as for startSampler.
 */
export async function startReadingSampler(
  db: SqlExecutor,
  read: (db: SqlExecutor, atMs: number) => Promise<ProgressSample>,
  intervalMs: number,
  now: () => number = () => performance.now(),
): Promise<Sampler> {
  const samples: ProgressSample[] = [];
  const listeners = new Set<(s: ProgressSample) => void>();
  let stopped = false;
  let errors = 0;
  let baselineTaken: () => void = () => undefined;
  const baseline = new Promise<void>((resolve) => {
    baselineTaken = resolve;
  });
  const loop = (async () => {
    while (!stopped) {
      const started = now();
      try {
        const s = await read(db, started);
        samples.push(s);
        for (const l of listeners) l(s);
      } catch {
        errors += 1;
      }
      baselineTaken();
      const wait = Math.max(0, intervalMs - (now() - started));
      if (!stopped) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  await baseline;
  return {
    samples,
    async latest() {
      const last = samples[samples.length - 1];
      return last ?? read(db, now());
    },
    waitFor(predicate, timeoutMs, signal) {
      const last = samples[samples.length - 1];
      if (last !== undefined && predicate(last)) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = (result: boolean) => {
          listeners.delete(listener);
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        };
        const listener = (s: ProgressSample) => {
          if (predicate(s)) done(true);
        };
        const onAbort = () => done(false);
        const timer = setTimeout(() => done(false), timeoutMs);
        listeners.add(listener);
        signal?.addEventListener('abort', onAbort);
      });
    },
    async stop() {
      stopped = true;
      await loop;
      if (errors > 0 && samples.length === 0) throw new Error(`sampler: every poll failed (${errors} errors)`);
    },
  };
}
