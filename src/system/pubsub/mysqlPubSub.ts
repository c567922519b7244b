// The MySQL pub/sub as one object (publisher + subscriber of one mode), for the contract suite and for callers
// that want the PubSub interface rather than the parts.
import type { Pool } from '../db/pool.ts';
import { executorOf } from '../db/pool.ts';
import { MysqlPublisher } from './mysqlPublisher.ts';
import { DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, subscribeOffset, type OffsetSubscriberOptions } from './offsetSubscriber.ts';
import { DEFAULT_QUEUE_SUBSCRIBER_OPTIONS, subscribeQueue, type QueueSubscriberOptions } from './queueSubscriber.ts';
import type { OutgoingMessage, PubSub, SqlExecutor, SubscribeOptions, Subscription } from './types.ts';

export type MysqlPubSubConfig =
  | { mode: 'offset'; subscriber?: Partial<Omit<OffsetSubscriberOptions, 'topic' | 'consumerGroup' | 'batchSize' | 'handler'>> }
  | { mode: 'queue'; subscriber?: Partial<Omit<QueueSubscriberOptions, 'topic' | 'batchSize' | 'handler'>> };

export class MysqlPubSub implements PubSub {
  private readonly publisher: MysqlPublisher;

  constructor(
    private readonly pool: Pool,
    private readonly config: MysqlPubSubConfig,
  ) {
    this.publisher = new MysqlPublisher(executorOf(pool), config.mode, true);
  }

  publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    return this.publisher.publish(topic, messages, executor);
  }

  subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.config.mode === 'offset') {
      return subscribeOffset(this.pool, { ...DEFAULT_OFFSET_SUBSCRIBER_OPTIONS, ...this.config.subscriber, ...options });
    }
    return subscribeQueue(this.pool, {
      ...DEFAULT_QUEUE_SUBSCRIBER_OPTIONS,
      ...this.config.subscriber,
      topic: options.topic,
      batchSize: options.batchSize,
      handler: options.handler,
    });
  }
}
