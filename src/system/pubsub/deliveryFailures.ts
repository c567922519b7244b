// How many deliveries of each message have failed, kept in memory by one subscriber (shared by the consumers
// of a queue subscription). After a crash the counts start again from zero: a poison message then gets that
// many more deliveries before it is moved aside, and no good message is affected, because a failed delivery
// commits nothing.

/**
 * Entries kept at most; the oldest are forgotten first. A message is only tracked while it fails, and a group
 * is held at its first failing message, so more than a few entries means many workers' worth of poison.
 */
const MAX_TRACKED = 10_000;

export class DeliveryFailures {
  private readonly counts = new Map<number, number>();

  /** Records one more failed delivery of the message at `offset`; returns how many it has had. */
  record(offset: number): number {
    const n = (this.counts.get(offset) ?? 0) + 1;
    this.counts.delete(offset); // re-insert at the end: Map keeps insertion order, the oldest go first
    this.counts.set(offset, n);
    if (this.counts.size > MAX_TRACKED) {
      const oldest = this.counts.keys().next().value;
      if (oldest !== undefined) this.counts.delete(oldest);
    }
    return n;
  }

  /** The messages were acked (handled or poisoned): their counts are no longer needed. */
  forget(offsets: Iterable<number>): void {
    if (this.counts.size === 0) return;
    for (const offset of offsets) this.counts.delete(offset);
  }

  get size(): number {
    return this.counts.size;
  }
}
