// The counter service's effect: each message `{"counter_uuid": "<uuid>"}` adds one to that counter, written
// through the consuming transaction so it commits or rolls back with the ack.
import type { BatchHandler, ConsumeTx, Message } from './pubsub/types.ts';
import { addToCounters, selectCounterValue, setCounterValue } from './sql/counterTable.ts';

/**
 * - batched: one aggregated multi-row upsert per batch (DESIGN 4.3).
 * - watermill: the reference example's shape, per message `SELECT value` then write value + 1; with the
 *   watermill subscriber settings it reproduces the baseline figures.
 */
export type HandlerProfile = 'batched' | 'watermill';
export const HANDLER_PROFILES: readonly HandlerProfile[] = ['batched', 'watermill'];

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The counter a message increments; throws for a payload the server would never have published. */
export function counterOf(message: Message): string {
  const payload = message.payload as { counter_uuid?: unknown } | null;
  const id = payload?.counter_uuid;
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) {
    throw new Error(`message ${message.offset} (${message.uuid}) has no valid counter_uuid in its payload`);
  }
  return id.toLowerCase();
}

/** Counts increments per counter; pure. */
export function aggregateIncrements(messages: readonly Message[]): Map<string, number> {
  const increments = new Map<string, number>();
  for (const m of messages) {
    const id = counterOf(m);
    increments.set(id, (increments.get(id) ?? 0) + 1);
  }
  return increments;
}

export function counterHandler(profile: HandlerProfile): BatchHandler {
  if (profile === 'batched') {
    return async (messages, tx) => addToCounters(tx, aggregateIncrements(messages));
  }
  return async (messages: readonly Message[], tx: ConsumeTx) => {
    for (const m of messages) {
      const id = counterOf(m);
      const value = (await selectCounterValue(tx, id)) ?? 0;
      await setCounterValue(tx, id, value + 1);
    }
  };
}
