// What the worker crash-safety tests of both engines share, so that MariaDB and PostgreSQL are held to the same
// check: the failpoints a SIGKILL must not break exactly-once at, the load published while workers or the
// database die, and the comparison of every counter with the number of its messages in the table.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { checkCounters } from '../../src/bench/counterCheck.ts';
import type { ChildService } from '../../src/harness/childService.ts';
import type { FailpointName } from '../../src/system/failpoints.ts';
import type { OutgoingMessage, Publisher } from '../../src/system/pubsub/types.ts';

/** Where the consume transaction may die without a message being lost or counted twice. */
export const EXACTLY_ONCE_FAILPOINTS: readonly FailpointName[] = [
  'consume-after-read',
  'consume-after-effects',
  'consume-after-ack',
  'consume-before-commit',
  'consume-after-commit',
];

/** Waits for `worker`, armed with `failpoint`, to be SIGKILLed there; fails after `withinMs` or on any other exit. */
export async function diesAtFailpoint(worker: ChildService, failpoint: FailpointName, withinMs: number): Promise<void> {
  const status = await Promise.race([
    worker.exited(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${failpoint} not reached in ${withinMs / 1_000} s: ${worker.outputTail()}`)), withinMs)),
  ]);
  assert.equal(status.signal, 'SIGKILL', `worker died by its failpoint ${failpoint} (exit ${JSON.stringify(status)}): ${worker.outputTail()}`);
}

function counterMessage(counter: string | undefined): OutgoingMessage {
  return { uuid: randomUUID(), payload: { counter_uuid: counter }, metadata: {} };
}

/** Publishes `n` messages in batches of 50, spread over `counters`, pausing `pauseMs` after each batch. */
export async function publishSpread(publisher: Publisher, topic: string, counters: readonly string[], n: number, pauseMs: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) => counterMessage(counters[(i + j) % counters.length]));
    await publisher.publish(topic, batch);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/**
 * Publishes batches of 20, one message for each of the first 20 counters, until stopped, and keeps going through
 * database outages; `stop()` resolves with how many messages were published. A batch whose outcome is unknown
 * is not counted, which is fine: the check compares counters with the messages that are in the table.
 */
export function publishThroughOutages(publisher: Publisher, topic: string, counters: readonly string[]): { stop(): Promise<number> } {
  let published = 0;
  let stopped = false;
  const publishing = (async () => {
    while (!stopped) {
      const batch = Array.from({ length: 20 }, (_, j) => counterMessage(counters[j]));
      await publisher.publish(topic, batch).then(
        () => (published += batch.length),
        () => new Promise((r) => setTimeout(r, 50)),
      );
    }
  })();
  return {
    async stop() {
      stopped = true;
      await publishing;
      return published;
    },
  };
}

export interface CounterComparison {
  /** Counters whose value is below their number of messages, and by how much in all. */
  lost: number;
  /** Counters whose value is above their number of messages, and by how much in all. */
  duplicated: number;
  messages: number;
}

/** Compares each counter's value with the number of `messages` that name it (the bench's own counter check). */
export function compareCounters(messages: readonly { payload: unknown }[], counters: ReadonlyMap<string, number>): CounterComparison {
  const expected = new Map<string, number>();
  for (const m of messages) {
    const id = (m.payload as { counter_uuid: string }).counter_uuid;
    expected.set(id, (expected.get(id) ?? 0) + 1);
  }
  const { lost, duplicated } = checkCounters(expected, counters);
  return { lost, duplicated, messages: messages.length };
}
