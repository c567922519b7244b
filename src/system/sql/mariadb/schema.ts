// The database objects the server and the worker both need, created idempotently (`CREATE TABLE IF NOT
// EXISTS`), so either process may start first, or both at once, on an empty database. The offsets table of
// offset mode belongs to the offset subscriber, which creates it itself.
import type { SqlExecutor } from '../../pubsub/types.ts';

import { createMessagesTable } from './messagesTable.ts';
import { createQueueTable } from './queueTable.ts';
import { createCounterTable } from './counterTable.ts';
import { createPublishDedupTable } from './publishDedupTable.ts';
import { assertTopicName } from './identifiers.ts';
import type { TopicMode } from '../../pubsub/types.ts';

export interface SchemaOptions {
  topic: string;
  /** offset: watermill_<topic>; queue: eob_queue_<topic>. */
  topicSchema: TopicMode;
  /** Also create eob_publish_dedup_<topic> (the server's --dedup). */
  dedup: boolean;
}

export async function ensureSchema(db: SqlExecutor, options: SchemaOptions): Promise<void> {
  assertTopicName(options.topic);
  if (options.topicSchema === 'offset') await createMessagesTable(db, options.topic);
  else await createQueueTable(db, options.topic);
  await createCounterTable(db);
  if (options.dedup) await createPublishDedupTable(db, options.topic);
}
