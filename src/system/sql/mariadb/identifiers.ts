// MariaDB's table names of a topic, quoted with backticks. Table names are built from topic names, so each is
// checked (assertTopicName) before it reaches SQL text.
import { assertTopicName } from '../topicName.ts';

export { assertTopicName };

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
