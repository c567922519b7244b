// The database objects the server and the worker both need, created idempotently (`CREATE TABLE IF NOT
// EXISTS`), so either process may start first, or both at once, on an empty database. The offsets table of
// offset mode belongs to the offset subscriber, which creates it itself.
//
// Any number of starters at once need no lock of eob's own here (PostgreSQL does: sql/postgres/schemaLock.ts).
// CREATE TABLE takes an exclusive metadata lock on the name, so a concurrent creator waits for the first to finish
// and then finds the table; the group row is INSERT IGNORE on its key. 8 servers and workers released at once
// from FLUSH TABLES WITH READ LOCK, on a new database and on a new topic, never failed (test/startupRace.test.ts).
// GET_LOCK would add nothing, and on a Galera cluster it is local to one node. What a Galera cluster changes: DDL
// runs there in total order on every node (TOI), so concurrent CREATE ... IF NOT EXISTS from several nodes are
// still applied one after the other; but two nodes' INSERT IGNOREs of one group row conflict at certification,
// and the loser gets a deadlock error (1213) that no local lock prevents. Start-up retries it
// (db/waitForDatabase.ts): with 8 starters on two of three nodes released together, a worker died of it in 2 of
// 2 runs before that retry, and 1 of 3 runs met and retried it after (test/startupRace.test.ts).

import type { SqlExecutor, TopicMode } from '../../types.ts';
import { createMessagesTable } from './messagesTable.ts';
import { createQueueTable } from './queueTable.ts';
import { createCounterTable } from './counterTable.ts';
import { createPublishDedupTable } from './dedupTable.ts';
import { assertTopicName } from './identifiers.ts';

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
