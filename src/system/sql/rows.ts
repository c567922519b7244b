// The rows both engines' tables return in the same shape, mapped to the shared types: a topic row to a Message,
// a poison-table row to a PoisonRow. Both engines name their columns alike (watermill-sql's DDL), so one mapping
// serves both; each engine's SQL lives in its own folder.
import type { Message, PoisonRow, TopicMode } from '../types.ts';

export interface MessageRow {
  /** A string where the driver returns BIGINT as text (node-postgres). */
  offset: number | string;
  uuid: string;
  created_at: Date;
  payload: unknown;
  metadata: unknown;
}

export function toMessage(row: MessageRow): Message {
  return {
    offset: Number(row.offset),
    uuid: row.uuid,
    createdAt: row.created_at,
    payload: parseJson(row.payload),
    metadata: (parseJson(row.metadata) ?? {}) as Record<string, string>,
  };
}

// MariaDB's JSON is LONGTEXT, so the driver hands back a string; MySQL's JSON type and node-postgres's JSON
// arrive already parsed.
function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** A poison-table row as either driver returns it (node-postgres gives a BIGINT offset as a string). */
export interface RawPoisonRow {
  mode: TopicMode;
  consumer_group: string;
  offset: number | string;
  uuid: string;
  created_at: Date | null;
  payload: string | null;
  metadata: string | null;
  error: string;
  failed_deliveries: number;
  times_poisoned: number;
  poisoned_at: Date;
}

/** The column names of the poison table mapped to a PoisonRow; both engines' tables have the same columns. */
export function poisonRowOf(r: RawPoisonRow): PoisonRow {
  return {
    mode: r.mode,
    consumerGroup: r.consumer_group,
    offset: Number(r.offset),
    uuid: r.uuid,
    createdAt: r.created_at,
    payload: r.payload,
    metadata: r.metadata,
    error: r.error,
    failedDeliveries: Number(r.failed_deliveries),
    timesPoisoned: Number(r.times_poisoned),
    poisonedAt: r.poisoned_at,
  };
}
