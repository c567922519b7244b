// Decides when a hole in the offsets may be stepped over (DESIGN 4.1, the contiguity approach).
//
// Offsets are allocated at INSERT and become visible at COMMIT, in any order. When the reader sees offset h but
// not g < h, g was allocated before h (the counter only grows), so the transaction that allocated g had begun
// before h was seen. If every transaction open at that moment has since ended, g's allocator has either
// committed (and g is visible now) or rolled back (and g will never exist): only then is the gap permanent.
// This holds whoever publishes, including a Watermill publisher or raw INSERTs from another program.
import { INNODB_TRX_CACHE_MS } from '../sql/innodbTrx.ts';

export interface GapTrackerOptions {
  /** Used when INNODB_TRX cannot be read (no PROCESS privilege): a gap older than this is passed (ms). */
  fallbackTimeoutMs: number;
  now?: () => number;
}

/** What the reader should do about a hole that starts at `expected`. */
export type GapDecision = { kind: 'wait' } | { kind: 'skip'; from: number; to: number; waitedMs: number; proof: 'innodb-trx' | 'timeout' };

interface PendingGap {
  offset: number;
  firstSeenMs: number;
  /** Transactions open when the gap was seen; null until a snapshot taken late enough has been read. */
  suspects: Set<string> | null;
}

export class GapTracker {
  private pending: PendingGap | undefined;
  private innodbTrxReadable = true;
  private readonly now: () => number;

  constructor(private readonly options: GapTrackerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Called with the offset the reader needs next, the lowest offset it can see above it, and a reader of the
   * ids of the InnoDB transactions open now (INNODB_TRX). Must be called
   * outside the consuming transaction: that transaction's locks may be what the gap's allocator waits on.
   */
  async decide(expected: number, lowestVisible: number, openTransactions: () => Promise<Set<string>>): Promise<GapDecision> {
    const now = this.now();
    if (this.pending === undefined || this.pending.offset !== expected) {
      this.pending = { offset: expected, firstSeenMs: now, suspects: null };
      return { kind: 'wait' };
    }
    const gap = this.pending;
    const waitedMs = now - gap.firstSeenMs;
    if (!this.innodbTrxReadable) {
      return waitedMs >= this.options.fallbackTimeoutMs ? this.skip(expected, lowestVisible, waitedMs, 'timeout') : { kind: 'wait' };
    }
    // A read earlier than this could come from a cache filled before the gap was seen and miss its allocator.
    if (waitedMs <= INNODB_TRX_CACHE_MS) return { kind: 'wait' };
    let open: Set<string>;
    try {
      open = await openTransactions();
    } catch (error) {
      if ((error as { errno?: number }).errno === 1227 || (error as { errno?: number }).errno === 1044) {
        this.innodbTrxReadable = false; // access denied: fall back to the bounded wait
        return { kind: 'wait' };
      }
      throw error;
    }
    if (gap.suspects === null) {
      gap.suspects = open;
    } else {
      for (const id of gap.suspects) if (!open.has(id)) gap.suspects.delete(id);
    }
    return gap.suspects.size === 0 ? this.skip(expected, lowestVisible, waitedMs, 'innodb-trx') : { kind: 'wait' };
  }

  /** The reader saw `expected` after all: forget the gap. */
  filled(expected: number): void {
    if (this.pending !== undefined && this.pending.offset <= expected) this.pending = undefined;
  }

  private skip(from: number, lowestVisible: number, waitedMs: number, proof: 'innodb-trx' | 'timeout'): GapDecision {
    this.pending = undefined;
    return { kind: 'skip', from, to: lowestVisible - 1, waitedMs, proof };
  }
}
