// Polls the database while a point runs: how far consumption got, how much was published, and the lag.
// Measurement comes from the database, never from the worker's own report.
import type { SqlExecutor } from '../system/pubsub/types.ts';
import { messagesTable, offsetsTable, queueTable } from '../system/sql/mariadb/identifiers.ts';
import type { ProgressSample } from './metrics.ts';
import type { TopicMode } from '../system/pubsub/types.ts';

export interface SamplerOptions {
  mode: TopicMode;
  topic: string;
  consumerGroup: string;
  /**
   * Poll interval. 250 ms keeps the sampler's own load on the database negligible (4 small queries a
   * second); drain points use 100 ms so a backlog that drains in 2 s still gets ~20 samples.
   */
  intervalMs: number;
}

/**
 * One reading. Offset mode: progress = the group's acked offset, published = MAX(offset), lag = now minus
 * created_at of the last acked message (0 when nothing waits). Queue mode has no high-water mark: progress =
 * SUM(counter.value) (the effects), published = the row count, lag = the age of the oldest unacked message.
 * Ages are computed by the database (NOW(6) against created_at) so no clock skew enters.
 */
export async function readSample(db: SqlExecutor, o: SamplerOptions, atMs: number): Promise<ProgressSample> {
  if (o.mode === 'offset') {
    const rows = await db.query<{ acked: number | null; max_offset: number | null; lag_us: number | null }[]>(
      `SELECT a.acked, (SELECT MAX(\`offset\`) FROM ${messagesTable(o.topic)}) AS max_offset,
        (SELECT TIMESTAMPDIFF(MICROSECOND, m.created_at, NOW(6)) FROM ${messagesTable(o.topic)} m WHERE m.\`offset\` = a.acked) AS lag_us
       FROM (SELECT COALESCE((SELECT \`offset_acked\` FROM ${offsetsTable(o.topic)} WHERE \`consumer_group\` = ?), 0) AS acked) a`,
      [o.consumerGroup],
    );
    const r = rows[0];
    const acked = Number(r?.acked ?? 0);
    const published = Number(r?.max_offset ?? 0);
    const lagMs = acked >= published ? 0 : r?.lag_us === null || r?.lag_us === undefined ? undefined : Number(r.lag_us) / 1000;
    return { atMs, progress: acked, published, ...(lagMs === undefined ? {} : { lagMs }) };
  }
  const rows = await db.query<{ done: number | null; published: number | null; lag_us: number | null }[]>(
    `SELECT (SELECT SUM(\`value\`) FROM \`counter\`) AS done,
      (SELECT MAX(\`offset\`) FROM ${queueTable(o.topic)}) AS published,
      (SELECT TIMESTAMPDIFF(MICROSECOND, created_at, NOW(6)) FROM ${queueTable(o.topic)} WHERE \`acked\` = 0 ORDER BY \`offset\` LIMIT 1) AS lag_us`,
  );
  const r = rows[0];
  return {
    atMs,
    progress: Number(r?.done ?? 0),
    published: Number(r?.published ?? 0),
    lagMs: r?.lag_us === null || r?.lag_us === undefined ? 0 : Number(r.lag_us) / 1000,
  };
}

export interface Sampler {
  readonly samples: readonly ProgressSample[];
  /** The latest sample (taken now if none yet). */
  latest(): Promise<ProgressSample>;
  /** Resolves when `predicate` holds for a sample, or false at the deadline / abort. */
  waitFor(predicate: (s: ProgressSample) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts polling at once; errors of one poll (a restarting database) are counted and polling goes on. */
export function startSampler(db: SqlExecutor, options: SamplerOptions, now: () => number = () => performance.now()): Sampler {
  const samples: ProgressSample[] = [];
  const listeners = new Set<(s: ProgressSample) => void>();
  let stopped = false;
  let errors = 0;
  const loop = (async () => {
    while (!stopped) {
      const started = now();
      try {
        const s = await readSample(db, options, started);
        samples.push(s);
        for (const l of listeners) l(s);
      } catch {
        errors += 1;
      }
      const wait = Math.max(0, options.intervalMs - (now() - started));
      if (!stopped) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    samples,
    async latest() {
      const last = samples[samples.length - 1];
      return last ?? readSample(db, options, now());
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
