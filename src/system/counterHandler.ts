// The counter service's effect: each message `{"counter_uuid": "<uuid>"}` adds one to that counter, written
// through the consuming transaction so it commits or rolls back with the ack.
import type { Message } from './types.ts';
import type { BatchHandler, ConsumeTx } from './pubsub/types.ts';
import type { SqlEngine } from './sql/engine.ts';

/**
 * - batched: one aggregated multi-row upsert per batch.
 * - watermill: the reference example's shape, per message `SELECT value` then write value + 1; with the
 *   watermill subscriber settings it reproduces the baseline figures.
 */
export type HandlerName = 'batched' | 'watermill';
export const HANDLER_NAMES: readonly HandlerName[] = ['batched', 'watermill'];

/** A counter id: a UUID in its 8-4-4-4-12 hex form, either case (the server's route and the handler agree). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The counter a message increments. Throws, saying what is wrong, for a payload the server would never have
 * published: not a JSON object (a payload that is not valid JSON reaches here as its raw text), no
 * counter_uuid, or one that is not a UUID. The consume loop counts these as failed deliveries of that message
 * and, after enough of them, moves it to the poison table.
 */
export function counterOf(message: Message): string {
  const where = `message ${message.offset} (${message.uuid})`;
  const payload = message.payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new Error(`${where}: payload is not a JSON object (got ${describeValue(payload)})`);
  }
  if (!('counter_uuid' in payload)) throw new Error(`${where}: payload has no counter_uuid`);
  const id = (payload as { counter_uuid: unknown }).counter_uuid;
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) {
    throw new Error(`${where}: counter_uuid is not a UUID (got ${describeValue(id)})`);
  }
  return id.toLowerCase();
}

/** A short, printable account of a bad value for an error message. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  const kind = Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  const text = JSON.stringify(value) ?? String(value);
  return `${kind}: ${text.length > 60 ? `${text.slice(0, 60)}...` : text}`;
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

/** The handler `profile` in `engine`'s SQL. */
export function counterHandler(profile: HandlerName, engine: SqlEngine): BatchHandler {
  if (profile === 'batched') {
    return async (messages, tx) => {
      const increments = aggregateIncrements(messages);
      if (increments.size === 0) return;
      const { sql, values } = engine.addToCountersStatement(increments);
      await tx.query(sql, values);
    };
  }
  return async (messages: readonly Message[], tx: ConsumeTx) => {
    for (const m of messages) {
      const id = counterOf(m);
      const value = (await engine.selectCounterValue(tx, id)) ?? 0;
      await engine.setCounterValue(tx, id, value + 1);
    }
  };
}
