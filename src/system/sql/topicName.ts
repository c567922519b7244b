// What a topic name may be, for every engine: table names are built from it, so it is checked before it
// reaches SQL text.

const TOPIC_PATTERN = /^[A-Za-z0-9_]{1,48}$/;

/** Throws unless `topic` can be part of a table name (letters, digits, _; at most 48). */
export function assertTopicName(topic: string): void {
  if (!TOPIC_PATTERN.test(topic)) {
    throw new Error(`topic must be 1-48 letters, digits or _ (got "${topic}")`);
  }
}
