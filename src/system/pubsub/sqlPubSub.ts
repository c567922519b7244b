// The SQL pub/sub as one object (publisher + subscriber of one mode) on a Database of either engine, for the
// contract suite and for callers that want the PubSub interface rather than the parts.
import type { OutgoingMessage, SqlExecutor } from '../types.ts';
import type { Database } from '../db/database.ts';
import { databaseOf, type DatabaseTarget } from '../db/openDatabase.ts';
import { SqlPublisher } from './sqlPublisher.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset, type OffsetSubscriberOptions } from './offsetSubscriber.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, subscribeQueue, type QueueSubscriberOptions } from './queueSubscriber.ts';
import type { PubSub, SubscribeOptions, Subscription } from './types.ts';

export type SqlPubSubConfig =
  | { mode: 'offset'; subscriber?: Partial<Omit<OffsetSubscriberOptions, 'topic' | 'consumerGroup' | 'batchSize' | 'handler'>> }
  | { mode: 'queue'; subscriber?: Partial<Omit<QueueSubscriberOptions, 'topic' | 'batchSize' | 'handler'>> };

export class SqlPubSub implements PubSub {
  private readonly publisher: SqlPublisher;
  private readonly db: Database;

  /** `target`: a Database of either engine, or a mysql2 pool (MariaDB). */
  constructor(
    target: DatabaseTarget,
    private readonly config: SqlPubSubConfig,
  ) {
    this.db = databaseOf(target);
    this.publisher = new SqlPublisher(this.db.executor(), this.db.engine, config.mode, true);
  }

  publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    return this.publisher.publish(topic, messages, executor);
  }

  subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.config.mode === 'offset') {
      return subscribeOffset(this.db, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, ...this.config.subscriber, ...options });
    }
    return subscribeQueue(this.db, {
      ...DEFAULT_QUEUE_SUBSCRIBER_OPTIONS,
      ...this.config.subscriber,
      topic: options.topic,
      batchSize: options.batchSize,
      handler: options.handler,
    });
  }
}
