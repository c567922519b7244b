// Publishes into `watermill_<topic>` (offset mode) or `eob_queue_<topic>` (queue mode) with one multi-row
// INSERT per call. Passing a transaction's executor makes the publish part of the caller's transaction (an
// outbox): the messages commit or roll back with the caller's own writes.
import type { OutgoingMessage, Publisher, SqlExecutor } from './types.ts';
import { insertMessagesSql } from '../sql/messagesTable.ts';
import { messagesTable, queueTable } from '../sql/identifiers.ts';
import { failpoint } from '../failpoints.ts';

export type TopicSchema = 'offset' | 'queue';

export class MysqlPublisher implements Publisher {
  constructor(
    private readonly db: SqlExecutor,
    private readonly schema: TopicSchema = 'offset',
  ) {}

  async publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    if (messages.length === 0) return;
    const table = this.schema === 'offset' ? messagesTable(topic) : queueTable(topic);
    const { sql, values } = insertMessagesSql(table, messages);
    failpoint('publish-before-insert');
    await (executor ?? this.db).query(sql, values);
    failpoint('publish-after-insert');
  }
}
