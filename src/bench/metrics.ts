// Pure arithmetic of the bench: rates from database samples, percentiles, ratios. No I/O, so every figure the
// bench reports can be checked against literal fixtures.

/** One reading of the database by the sampler. */
export interface ProgressSample {
  /** Milliseconds on this process's monotonic clock. */
  atMs: number;
  /** Messages done so far: the acked offset (offset mode) or SUM(counter.value) (queue mode). */
  progress: number;
  /** Messages in the topic: the max offset (offset mode) or the row count (queue mode). */
  published: number;
  /** Now minus created_at of the last acked message, ms (0 when nothing waits); undefined if unknown. */
  lagMs?: number;
}

export interface RateWindow {
  /** Messages per second over the window, or undefined when fewer than two samples carry progress. */
  perSecond: number | undefined;
  startMs: number | undefined;
  endMs: number | undefined;
  messages: number;
}

/**
 * Drain rate over the part of the run where the worker was working: from the first sample at which progress
 * had begun (start-up of the worker and its first poll excluded) to the first sample at which `target` was
 * reached, or the last sample if it never was. Starting at the first moved sample rather than the last still
 * one loses up to one sampling interval of work but never counts start-up time as slow draining.
 */
export function drainRate(samples: readonly ProgressSample[], target?: number): RateWindow {
  const empty: RateWindow = { perSecond: undefined, startMs: undefined, endMs: undefined, messages: 0 };
  const first = samples[0];
  if (first === undefined) return empty;
  const startIndex = samples.findIndex((s) => s.progress > first.progress);
  if (startIndex < 0) return empty;
  let endIndex = target === undefined ? -1 : samples.findIndex((s, i) => i >= startIndex && s.progress >= target);
  if (endIndex < 0) endIndex = samples.length - 1;
  const start = samples[startIndex]!;
  const end = samples[endIndex]!;
  const messages = end.progress - start.progress;
  const seconds = (end.atMs - start.atMs) / 1000;
  return {
    perSecond: seconds > 0 ? messages / seconds : undefined,
    startMs: start.atMs,
    endMs: end.atMs,
    messages,
  };
}

/** Change of `field` per second between two samples (publish rate over a load window, for example). */
export function rateBetween(from: ProgressSample, to: ProgressSample, field: 'progress' | 'published'): number | undefined {
  const seconds = (to.atMs - from.atMs) / 1000;
  return seconds > 0 ? (to[field] - from[field]) / seconds : undefined;
}

/**
 * Percentile by linear interpolation between closest ranks (the same as numpy's default), so p50 of [1, 2] is
 * 1.5 and p100 is the maximum. Undefined for no values.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be from 0 to 100 (got ${p})`);
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sorted[lower]!;
  const high = sorted[upper]!;
  return low + (high - low) * (rank - lower);
}

/** value / reference, or undefined when either is missing or the reference is not positive. */
export function ratio(value: number | undefined, reference: number | undefined): number | undefined {
  if (value === undefined || reference === undefined || !Number.isFinite(value) || !(reference > 0)) return undefined;
  return value / reference;
}

/** The lag percentiles of the samples taken inside [fromMs, toMs]. */
export function lagPercentiles(
  samples: readonly ProgressSample[],
  fromMs = -Infinity,
  toMs = Infinity,
): { p50: number | undefined; p99: number | undefined } {
  const lags = samples
    .filter((s) => s.atMs >= fromMs && s.atMs <= toMs && s.lagMs !== undefined)
    .map((s) => s.lagMs as number);
  return { p50: percentile(lags, 50), p99: percentile(lags, 99) };
}

/** Rounds for presentation (CSV, terminal); undefined stays undefined so empty cells stay empty. */
export function round(value: number | undefined, digits: number): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A drain reading on a case clock (the chaos timeline): ms since the case began and messages acked by then. */
export interface DrainSample {
  tMs: number;
  acked: number;
}

/** A fault's window on the same clock: injected at startMs, healed at healStartMs, recovered (when it did). */
export interface FaultWindow {
  startMs: number;
  healStartMs: number;
  recoveredMs?: number;
}

/** Acked messages per second between two case times, from the samples nearest outside the window. */
export function rateOver(samples: readonly DrainSample[], fromMs: number, toMs: number): number | undefined {
  const before = [...samples].reverse().find((s) => s.tMs <= fromMs) ?? samples[0];
  const after = samples.find((s) => s.tMs >= toMs) ?? samples[samples.length - 1];
  if (before === undefined || after === undefined || after.tMs <= before.tMs) return undefined;
  return ((after.acked - before.acked) * 1000) / (after.tMs - before.tMs);
}

/** Acked messages per second summed over every fault window (injection to recovery) / their total length. */
export function drainDuringFaults(samples: readonly DrainSample[], faults: readonly FaultWindow[]): number | undefined {
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
 * CPU microseconds per message: CPU seconds a process used over a window divided by the messages that went
 * through it in the same window. Undefined when either is unknown or no message went through.
 */
export function cpuUsPerMessage(cpuSeconds: number | undefined, messages: number | undefined): number | undefined {
  if (cpuSeconds === undefined || messages === undefined || !(messages > 0)) return undefined;
  return (cpuSeconds * 1e6) / messages;
}
