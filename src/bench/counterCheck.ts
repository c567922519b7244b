// The bench's correctness check of one configuration point (pure): every counter must equal the number of its
// messages that were consumed. A bench that goes fast by losing or repeating increments must say so.

/**
 * The one verdict vocabulary of the project: valid (no violation), invalid (a violation, named), unknown (the
 * evidence could not decide, e.g. the system never quiesced). The bench's counter check gives only the first two.
 */
export type VerdictKind = 'valid' | 'invalid' | 'unknown';

export interface CounterCheck {
  verdict: Exclude<VerdictKind, 'unknown'>;
  /** Increments missing: sum over counters of (messages consumed - counter value) where positive. */
  lost: number;
  /** Increments applied too often: sum over counters of (counter value - messages consumed) where positive. */
  duplicated: number;
  /** Counters whose value differs from their consumed messages (at most 10, for the report). */
  wrongCounters: string[];
  expectedTotal: number;
  countedTotal: number;
}

/**
 * `expected`: counter id -> messages consumed for it (offset mode: offsets up to the acked offset; queue mode:
 * rows acked). `actual`: counter id -> value in `counter`. A counter missing from either side counts as 0.
 */
export function checkCounters(expected: ReadonlyMap<string, number>, actual: ReadonlyMap<string, number>): CounterCheck {
  let lost = 0;
  let duplicated = 0;
  let expectedTotal = 0;
  let countedTotal = 0;
  const wrong: string[] = [];
  const ids = new Set([...expected.keys(), ...actual.keys()]);
  for (const id of [...ids].sort()) {
    const want = expected.get(id) ?? 0;
    const got = actual.get(id) ?? 0;
    expectedTotal += want;
    countedTotal += got;
    if (want > got) lost += want - got;
    if (got > want) duplicated += got - want;
    if (want !== got && wrong.length < 10) wrong.push(id);
  }
  return {
    verdict: lost === 0 && duplicated === 0 ? 'valid' : 'invalid',
    lost,
    duplicated,
    wrongCounters: wrong,
    expectedTotal,
    countedTotal,
  };
}
