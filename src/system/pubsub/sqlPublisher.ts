// Publishes into a topic's table (offset mode: `watermill_<topic>`; queue mode: `eob_queue_<topic>`) with one
// multi-row INSERT per call, in the engine's SQL. Passing a transaction's executor makes the publish part of the
// caller's transaction (an outbox): the messages commit or roll back with the caller's own writes.
import type { OutgoingMessage, SqlExecutor, TopicMode } from '../types.ts';
import type { Publisher } from './types.ts';
import type { SqlEngine } from '../sql/engine.ts';
import { failpoint } from '../failpoints.ts';

export class SqlPublisher implements Publisher {
  private readonly initialized = new Set<string>();

  /**
   * With `autoInitializeSchema` (as Watermill's publisher option) the topic's table is created before its
   * first publish, always through `db`, never through a caller's transaction: DDL commits implicitly on
   * MariaDB, and would commit the caller's transaction half-way.
   */
  constructor(
    private readonly db: SqlExecutor,
    readonly engine: SqlEngine,
    private readonly schema: TopicMode = 'offset',
    private readonly autoInitializeSchema = false,
  ) {}

  /**
   * More messages than one INSERT may carry (PostgreSQL: 21,845) go as several INSERTs: atomic only when
   * `executor` holds a transaction (counterPublish opens one then).
   */
  async publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    if (messages.length === 0) return;
    if (this.autoInitializeSchema && !this.initialized.has(topic)) {
      await this.engine.ensureTopicTable(this.db, { topic, mode: this.schema });
      this.initialized.add(topic);
    }
    failpoint('publish-before-insert');
    await this.engine.publish(executor ?? this.db, { topic, mode: this.schema, messages });
    failpoint('publish-after-insert');
  }
}
