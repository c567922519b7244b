// Decides when a hole in the offsets may be stepped over (DESIGN 4.1, the contiguity approach).
//
// Offsets are allocated at INSERT and become visible at COMMIT, in any order. When the reader sees offset h but
// not g < h, g was allocated before h (the counter only grows), so the transaction that allocated g was open
// before h was seen. Take a snapshot of the open writing transactions that is provably later than that moment
// (probeOpenWriters); once every one of them has ended, g's allocator has either committed (and g is visible)
// or rolled back (and g will never exist): only then is the gap permanent. This holds whoever publishes,
// including a Watermill publisher or raw INSERTs from another program.
import { INNODB_TRX_CACHE_IDLE_MS, type OpenWriters } from '../sql/mariadb/innodbTrx.ts';

export interface GapTrackerOptions {
  /**
   * How long a hole at the head may last before INNODB_TRX is read. Almost every hole is a publish in flight
   * that commits within a few ms; reading INNODB_TRX for those would only slow the reader.
   */
  probeDelayMs: number;
  /** Used when INNODB_TRX cannot be read (no PROCESS privilege): a gap older than this is passed (ms). */
  fallbackTimeoutMs: number;
  now?: () => number;
}

/** What the reader should do about a hole that starts at `expected`. */
export type GapDecision =
  | { kind: 'wait' }
  | { kind: 'skip'; from: number; to: number; waitedMs: number; proof: 'innodb-trx' | 'timeout' };

interface PendingGap {
  offset: number;
  firstSeenMs: number;
  /** Writers open when the gap was seen, from a fresh snapshot; null until one has been read. */
  suspects: Set<string> | null;
}

export class GapTracker {
  private pending: PendingGap | undefined;
  private innodbTrxReadable = true;
  /** INNODB_TRX is read at most this often, or its cache is never refreshed (see innodbTrx.ts). */
  private nextProbeAtMs = 0;
  private readonly now: () => number;

  constructor(private readonly options: GapTrackerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Called with the offset the reader needs next, the lowest offset it can see above it, and a probe of the
   * open writers. Must be called outside the consuming transaction: that transaction's locks may be what the
   * gap's allocator waits on.
   */
  async decide(expected: number, lowestVisible: number, probe: () => Promise<OpenWriters>): Promise<GapDecision> {
    const now = this.now();
    if (this.pending === undefined || this.pending.offset !== expected) {
      this.pending = { offset: expected, firstSeenMs: now, suspects: null };
      return { kind: 'wait' };
    }
    const gap = this.pending;
    const waitedMs = now - gap.firstSeenMs;
    if (!this.innodbTrxReadable) {
      return waitedMs >= this.options.fallbackTimeoutMs ? this.skip(gap, lowestVisible, waitedMs, 'timeout') : { kind: 'wait' };
    }
    if (waitedMs < this.options.probeDelayMs || now < this.nextProbeAtMs) return { kind: 'wait' };
    this.nextProbeAtMs = now + INNODB_TRX_CACHE_IDLE_MS + 10;
    let snapshot: OpenWriters;
    try {
      snapshot = await probe();
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno === 1227 || errno === 1044 || errno === 1142) {
        this.innodbTrxReadable = false; // access denied: fall back to the bounded wait
        return { kind: 'wait' };
      }
      throw error;
    }
    if (!snapshot.fresh) return { kind: 'wait' }; // an old cached snapshot proves nothing; read again later
    if (gap.suspects === null) {
      gap.suspects = snapshot.writers;
    } else {
      for (const id of gap.suspects) if (!snapshot.writers.has(id)) gap.suspects.delete(id);
    }
    return gap.suspects.size === 0 ? this.skip(gap, lowestVisible, waitedMs, 'innodb-trx') : { kind: 'wait' };
  }

  /** The reader got past `expected` without help: forget the gap. */
  filled(expected: number): void {
    if (this.pending !== undefined && this.pending.offset <= expected) this.pending = undefined;
  }

  private skip(gap: PendingGap, lowestVisible: number, waitedMs: number, proof: 'innodb-trx' | 'timeout'): GapDecision {
    this.pending = undefined;
    return { kind: 'skip', from: gap.offset, to: lowestVisible - 1, waitedMs, proof };
  }
}
