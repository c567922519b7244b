// Finding the poison messages inside a failed batch, with no database: a stand-in transaction records each
// attempt's effects and drops them when the attempt fails (as ROLLBACK TO SAVEPOINT does), so the tests see
// that every good message is applied exactly once and every failing one is reported with its own error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isolateFailures } from '../src/system/pubsub/failureIsolation.ts';
import { DeliveryFailures } from '../src/system/pubsub/deliveryFailures.ts';
import { counterOf } from '../src/system/counterHandler.ts';
import type { Message } from '../src/system/pubsub/types.ts';

function batch(n: number): Message[] {
  return Array.from({ length: n }, (_, i) => ({ offset: i + 1, uuid: `m${i + 1}`, payload: {}, metadata: {}, createdAt: new Date(0) }));
}

/** A handler that fails on any subset containing one of `poison`, after applying the messages before it. */
function standIn(poison: ReadonlySet<number>) {
  const applied: number[] = [];
  let attempts = 0;
  const attempt = async (messages: readonly Message[]): Promise<Error | undefined> => {
    attempts += 1;
    const savepoint = applied.length;
    for (const m of messages) {
      if (poison.has(m.offset)) {
        applied.length = savepoint; // the rollback to the savepoint
        return new Error(`bad ${m.offset}`);
      }
      applied.push(m.offset);
    }
    return undefined;
  };
  return { applied, attempt, attempts: () => attempts };
}

describe('isolateFailures', () => {
  for (const poison of [[1], [1000], [500], [3, 4, 5], [1, 1000], [7, 250, 251, 999]]) {
    it(`batch of 1000 with poison at ${poison.join(', ')}: each good message applied once, each poison reported with its error`, async () => {
      const messages = batch(1000);
      const s = standIn(new Set(poison));
      const failed = await isolateFailures(messages, new Error('batch failed'), s.attempt);
      assert.deepEqual(failed.map((f) => f.message.offset), poison);
      assert.deepEqual(failed.map((f) => f.error.message), poison.map((p) => `bad ${p}`));
      const good = messages.map((m) => m.offset).filter((o) => !poison.includes(o));
      assert.deepEqual([...s.applied].sort((a, b) => a - b), good);
      assert.ok(s.attempts() <= 2 * poison.length * Math.ceil(Math.log2(1000)) + 2, `bounded attempts (${s.attempts()})`);
    });
  }

  it('a batch of one poison message: no attempt is needed, the batch error is its error', async () => {
    const s = standIn(new Set([1]));
    const failed = await isolateFailures(batch(1), new Error('the handler said no'), s.attempt);
    assert.equal(s.attempts(), 0);
    assert.deepEqual(failed.map((f) => [f.message.offset, f.error.message]), [[1, 'the handler said no']]);
  });

  it('every message poison: all reported, nothing applied', async () => {
    const s = standIn(new Set([1, 2, 3, 4, 5]));
    const failed = await isolateFailures(batch(5), new Error('x'), s.attempt);
    assert.deepEqual(failed.map((f) => f.message.offset), [1, 2, 3, 4, 5]);
    assert.deepEqual(s.applied, []);
  });

  it('a failure only the whole batch causes: every half handled on its own, nothing reported', async () => {
    const applied: number[] = [];
    const failed = await isolateFailures(batch(8), new Error('too big together'), async (messages) => {
      if (messages.length > 4) return new Error('too big together');
      applied.push(...messages.map((m) => m.offset));
      return undefined;
    });
    assert.deepEqual(failed, []);
    assert.deepEqual(applied, [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('an error thrown by an attempt (a database error) ends the isolation with that error', async () => {
    await assert.rejects(
      isolateFailures(batch(4), new Error('x'), async () => {
        throw Object.assign(new Error('Deadlock found'), { errno: 1213 });
      }),
      /Deadlock/,
    );
  });
});

describe('DeliveryFailures', () => {
  it('counts failed deliveries per offset and forgets acked ones', () => {
    const f = new DeliveryFailures();
    assert.equal(f.record(7), 1);
    assert.equal(f.record(7), 2);
    assert.equal(f.record(9), 1);
    f.forget([7, 8]);
    assert.equal(f.record(7), 1);
    assert.equal(f.size, 2);
  });

  it('keeps at most 10,000 entries, forgetting the oldest first', () => {
    const f = new DeliveryFailures();
    for (let i = 1; i <= 10_001; i += 1) f.record(i);
    assert.equal(f.size, 10_000);
    assert.equal(f.record(1), 1, 'the oldest was forgotten');
    assert.equal(f.record(10_001), 2);
  });
});

describe('counterOf: what the counter handler rejects, and says so', () => {
  const message = (payload: unknown): Message => ({ offset: 3, uuid: 'u-3', payload, metadata: {}, createdAt: new Date(0) });
  const cases: [string, unknown, RegExp][] = [
    ['no counter_uuid', { other: 1 }, /message 3 \(u-3\): payload has no counter_uuid/],
    ['a JSON string', 'not an object', /payload is not a JSON object \(got a string: "not an object"\)/],
    ['raw text that was not valid JSON', '{"counter_uuid": ', /payload is not a JSON object \(got a string/],
    ['an array', [1, 2], /payload is not a JSON object \(got an array: \[1,2\]\)/],
    ['null', null, /payload is not a JSON object \(got null\)/],
    ['a counter_uuid that is not a UUID', { counter_uuid: 'abc' }, /counter_uuid is not a UUID \(got a string: "abc"\)/],
    ['a numeric counter_uuid', { counter_uuid: 42 }, /counter_uuid is not a UUID \(got a number: 42\)/],
  ];
  for (const [what, payload, expected] of cases) {
    it(`rejects ${what}`, () => assert.throws(() => counterOf(message(payload)), expected));
  }

  it('accepts a UUID in any case and returns it in lower case', () => {
    assert.equal(counterOf(message({ counter_uuid: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11' })), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  });
});
