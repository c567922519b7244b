// Finds which messages of a failed batch make the handler fail, by bisection, so the rest of the batch can
// still be handled in the same transaction. Pure: the caller's `attempt` runs the handler on a subset (under a
// savepoint it rolls back to on failure), so this file is tested without a database.
import type { Message } from '../types.ts';

/** What one attempt on a subset gave: undefined = handled (its effects stay), else the handler's error. */
export type Attempt = (messages: readonly Message[]) => Promise<Error | undefined>;

export interface FailedMessage {
  message: Message;
  error: Error;
}

/**
 * Given a batch whose handling just failed with `batchError` (and was undone), returns the messages that fail
 * alone, with their own errors; every other message has been handled by a successful attempt, exactly once.
 * Invariant kept by the recursion: a subset is attempted only when none of its messages' effects are in the
 * transaction, and a failed attempt leaves no effects (the caller rolls back to its savepoint).
 * Cost: with k failing messages in a batch of n, about 2k log2(n) attempts (a batch of 1,000 with one poison:
 * about 20); a failure that only a combination of messages causes ends with every half handled on its own.
 */
export async function isolateFailures(batch: readonly Message[], batchError: Error, attempt: Attempt): Promise<FailedMessage[]> {
  const failed: FailedMessage[] = [];
  async function isolate(messages: readonly Message[], knownError: Error | undefined): Promise<void> {
    const error = knownError ?? (await attempt(messages));
    if (error === undefined) return;
    if (messages.length === 1) {
      failed.push({ message: messages[0]!, error });
      return;
    }
    const half = Math.ceil(messages.length / 2);
    await isolate(messages.slice(0, half), undefined);
    await isolate(messages.slice(half), undefined);
  }
  await isolate(batch, batchError);
  return failed;
}
