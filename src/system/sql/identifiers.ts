// Table names are built from topic and group names, so they are checked before they reach SQL text.

const TOPIC_PATTERN = /^[A-Za-z0-9_]{1,48}$/;

/** Throws unless `topic` can be part of a table name (letters, digits, _; at most 48 so names fit in 64). */
export function assertTopicName(topic: string): void {
  if (!TOPIC_PATTERN.test(topic)) {
    throw new Error(`topic must be 1-48 letters, digits or _ (got "${topic}")`);
  }
}

export function messagesTable(topic: string): string {
  assertTopicName(topic);
  return `\`watermill_${topic}\``;
}

export function offsetsTable(topic: string): string {
  assertTopicName(topic);
  return `\`watermill_offsets_${topic}\``;
}

export function queueTable(topic: string): string {
  assertTopicName(topic);
  return `\`eob_queue_${topic}\``;
}

export function dedupTable(topic: string): string {
  assertTopicName(topic);
  return `\`eob_publish_dedup_${topic}\``;
}

export function poisonTable(topic: string): string {
  assertTopicName(topic);
  return `\`eob_poison_${topic}\``;
}
