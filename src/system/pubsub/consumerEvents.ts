// What a consumer tells an observer as it goes: each batch it read (its offsets), each commit of that batch
// (effects and ack together, or one of them in the control ack modes), each rollback, and each hole it passed
// with what allowed it. The worker writes them to its event log (--event-log) so a checker can say, for a
// message that went wrong, whether and when it was consumed and what stepped over it; a consumer without an
// observer pays nothing.
import type { GapPassReason } from './gapTracker.ts';

/** Inclusive offset ranges, ascending: a batch of 1,000 contiguous offsets is one pair. */
export type OffsetRanges = [number, number][];

export type ConsumerEvent =
  | { e: 'read'; batch: number; offsets: OffsetRanges }
  /** `what`: effects+ack (transactional), or ack / effects, the two commits of the control ack modes. */
  | { e: 'commit'; batch: number; what: 'effects+ack' | 'ack' | 'effects' }
  | { e: 'rollback'; batch: number }
  /** Offsets from..to passed as holes, by a proof or by the bound (`timeout`), after waiting waitedMs. */
  | { e: 'pass'; from: number; to: number; by: GapPassReason; waitedMs: number };

export type ConsumerEventSink = (event: ConsumerEvent) => void;

let lastBatch = 0;

/**
 * A batch's number, unique in this process: a worker runs several consumers (queue mode's --concurrency), and
 * an event log names a batch by (process, batch), so per-consumer numbers would let one consumer's rollback be
 * read as another's.
 */
export function nextBatchNumber(): number {
  lastBatch += 1;
  return lastBatch;
}

export function offsetRanges(offsets: readonly number[]): OffsetRanges {
  const sorted = [...offsets].sort((a, b) => a - b);
  const ranges: OffsetRanges = [];
  for (const o of sorted) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && o <= last[1] + 1) last[1] = Math.max(last[1], o);
    else ranges.push([o, o]);
  }
  return ranges;
}
