// Queue mode: N consumers share one topic; each claims unacked rows with FOR UPDATE SKIP LOCKED
// and acks exactly the rows it handled, in the transaction of its effects. There is no high-water mark, so a
// row that commits late is simply claimed later: the offset-mode gap hazard does not exist here.
import type { Message, Statement } from '../types.ts';
import type { Database } from '../db/database.ts';
import { databaseOf, type DatabaseTarget } from '../db/openDatabase.ts';
import { intInRange } from '../../validate.ts';
import { DeliveryFailures } from './deliveryFailures.ts';
import { DEFAULT_CONSUMER_OPTIONS, emptyStats, startConsumeLoop, validateConsumerOptions, type BatchSource, type ConsumerOptions, type ReadResult } from './consumeLoop.ts';
import type { SubscriberStats, Subscription } from './types.ts';

/** `isolation`: READ COMMITTED by default: the claiming read then takes record locks only, no gap locks on publishers. */
export interface QueueSubscriberOptions extends ConsumerOptions {
  /** Consumers running in this process, each with its own connection and transaction. */
  concurrency: number;
}

export const DEFAULT_QUEUE_SUBSCRIBER_OPTIONS: Omit<QueueSubscriberOptions, 'handler' | 'topic'> = {
  ...DEFAULT_CONSUMER_OPTIONS,
  isolation: 'READ COMMITTED',
  concurrency: 1,
};

export function validateQueueSubscriberOptions(o: QueueSubscriberOptions): QueueSubscriberOptions {
  const c = 'queue subscriber';
  validateConsumerOptions(c, o);
  intInRange(c, 'concurrency', o.concurrency, 1, 256);
  return o;
}

class QueueSource implements BatchSource {
  constructor(
    private readonly db: Database,
    private readonly topic: string,
  ) {}

  readStatements(batchSize: number): Statement[] {
    return [this.db.engine.claimUnackedStatement({ topic: this.topic, limit: batchSize })];
  }

  readResult([rows]: unknown[]): ReadResult {
    const messages = this.db.engine.claimedMessages(rows);
    return messages.length === 0 ? { kind: 'empty' } : { kind: 'messages', messages };
  }

  ackStatements(messages: readonly Message[]): Statement[] {
    return messages.length === 0 ? [] : [this.db.engine.markAckedStatement({ topic: this.topic, offsets: messages.map((m) => m.offset) })];
  }
}

/** Starts `concurrency` consumers; the returned subscription closes them all and sums their stats. */
export async function subscribeQueue(target: DatabaseTarget, options: QueueSubscriberOptions): Promise<Subscription> {
  const o = validateQueueSubscriberOptions(options);
  const db = databaseOf(target);
  await db.engine.ensureQueue(db.executor(), { topic: o.topic });
  // Shared: after a failed delivery the rows are free, and another consumer of this process may claim them next.
  const failures = new DeliveryFailures();
  const consumers = Array.from({ length: o.concurrency }, (_, i) => {
    const stats = emptyStats();
    return startConsumeLoop(
      { ...o, name: `queue consumer ${o.topic}#${i + 1}`, db, poisonOrigin: { topic: o.topic, mode: 'queue', consumerGroup: '' }, failures },
      new QueueSource(db, o.topic),
      stats,
    );
  });
  const done = Promise.all(consumers.map((c) => c.done)).then(() => undefined);
  done.catch(() => undefined); // observed by whoever awaits `done`; never an unhandled rejection
  return {
    get stats(): SubscriberStats {
      const total = emptyStats();
      for (const c of consumers) {
        for (const key of Object.keys(total) as (keyof SubscriberStats)[]) total[key] += c.stats[key];
      }
      return total;
    },
    done,
    async close() {
      await Promise.all(consumers.map((c) => c.close()));
    },
  };
}
