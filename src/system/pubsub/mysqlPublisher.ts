// Publishes into `watermill_<topic>` (offset mode) or `eob_queue_<topic>` (queue mode) with one multi-row
// INSERT per call. Passing a transaction's executor makes the publish part of the caller's transaction (an
// outbox): the messages commit or roll back with the caller's own writes.
import type { OutgoingMessage, Publisher, SqlExecutor } from './types.ts';
import { createMessagesTable, insertMessagesSql } from '../sql/mariadb/messagesTable.ts';
import { createQueueTable } from '../sql/mariadb/queueTable.ts';
import { messagesTable, queueTable } from '../sql/mariadb/identifiers.ts';
import { failpoint } from '../failpoints.ts';
import type { TopicMode } from './types.ts';


export class MysqlPublisher implements Publisher {
  private readonly initialized = new Set<string>();

  /**
   * With `autoInitializeSchema` (as Watermill's publisher option) the topic's table is created before its
   * first publish, always through `db`, never through a caller's transaction: DDL commits implicitly, and
   * would commit the caller's transaction half-way.
   */
  constructor(
    private readonly db: SqlExecutor,
    private readonly schema: TopicMode = 'offset',
    private readonly autoInitializeSchema = false,
  ) {}

  async publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    if (messages.length === 0) return;
    if (this.autoInitializeSchema && !this.initialized.has(topic)) {
      await (this.schema === 'offset' ? createMessagesTable(this.db, topic) : createQueueTable(this.db, topic));
      this.initialized.add(topic);
    }
    const table = this.schema === 'offset' ? messagesTable(topic) : queueTable(topic);
    const { sql, values } = insertMessagesSql(table, messages);
    failpoint('publish-before-insert');
    await (executor ?? this.db).query(sql, values);
    failpoint('publish-after-insert');
  }
}
