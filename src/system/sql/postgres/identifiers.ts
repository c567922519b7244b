// PostgreSQL table names for a topic, double-quoted (identifiers are case-folded otherwise). The topic is
// checked by the same rule as on MariaDB (letters, digits, _; at most 48), so names stay under PostgreSQL's
// 63-byte identifier limit and can never close the quotes.
import { assertTopicName } from '../topicName.ts';

function quoted(name: string): string {
  return `"${name}"`;
}

/** watermill-sql's PostgreSQL message table name. */
export function pgMessagesTable(topic: string): string {
  assertTopicName(topic);
  return quoted(`watermill_${topic}`);
}

/** watermill-sql's PostgreSQL offsets table name. */
export function pgOffsetsTable(topic: string): string {
  assertTopicName(topic);
  return quoted(`watermill_offsets_${topic}`);
}

export function pgQueueTable(topic: string): string {
  assertTopicName(topic);
  return quoted(`eob_queue_${topic}`);
}

export function pgDedupTable(topic: string): string {
  assertTopicName(topic);
  return quoted(`eob_publish_dedup_${topic}`);
}

/** `$1, $2, ...` groups for a multi-row VALUES list: `rows` tuples of `width` placeholders from `$start`. */
export function valuesPlaceholders(rows: number, width: number, casts: readonly string[] = [], start = 1): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r += 1) {
    const cells: string[] = [];
    for (let c = 0; c < width; c += 1) cells.push(`$${start + r * width + c}${casts[c] ?? ''}`);
    tuples.push(`(${cells.join(', ')})`);
  }
  return tuples.join(', ');
}

/** One statement and its values ($1, $2, ...), for callers that run it on the transaction's connection. */
export interface PgStatement {
  sql: string;
  values: unknown[];
}

/** PostgreSQL's protocol carries at most 65,535 parameters per statement. */
export const MAX_PARAMETERS = 65_535;
