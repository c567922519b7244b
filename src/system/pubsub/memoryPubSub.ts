// An in-memory pub/sub with the same contract as the MySQL ones, for tests of handlers and of the contract
// suite itself. One process, no durability: it promises order, batches, redelivery after a handler error with
// no staged effect kept, and independent consumer groups, nothing about crashes.
import type { Message, OutgoingMessage, SqlExecutor } from '../types.ts';
import { Sleeper } from '../backoff.ts';
import { emptyStats } from './consumeLoop.ts';
import type { ConsumeTx, PubSub, SubscribeOptions, Subscription } from './types.ts';

/** The memory pub/sub's transaction: effects are staged and applied only if the handler succeeds. */
export interface MemoryConsumeTx extends ConsumeTx {
  readonly kind: 'memory';
  stage(apply: () => void): void;
}

export function isMemoryTx(tx: ConsumeTx): tx is MemoryConsumeTx {
  return tx.kind === 'memory';
}

export interface MemoryPubSubOptions {
  pollIntervalMs: number;
  resendIntervalMs: number;
}

export class MemoryPubSub implements PubSub {
  private readonly topics = new Map<string, Message[]>();
  private readonly acked = new Map<string, number>();

  constructor(private readonly options: MemoryPubSubOptions = { pollIntervalMs: 1, resendIntervalMs: 5 }) {}

  async publish(topic: string, messages: readonly OutgoingMessage[], executor?: SqlExecutor): Promise<void> {
    if (executor !== undefined) throw new Error('memory pub/sub: publishing inside a SQL transaction is not supported');
    const log = this.topics.get(topic) ?? [];
    for (const m of messages) log.push({ ...m, offset: log.length + 1, createdAt: new Date() });
    this.topics.set(topic, log);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const stats = emptyStats();
    const sleeper = new Sleeper();
    const key = `${options.topic}\u0000${options.consumerGroup}`;
    let closing = false;
    const done = (async () => {
      while (!closing) {
        const acked = this.acked.get(key) ?? 0;
        const batch = (this.topics.get(options.topic) ?? []).slice(acked, acked + options.batchSize);
        if (batch.length === 0) {
          await sleeper.sleep(this.options.pollIntervalMs);
          continue;
        }
        const staged: (() => void)[] = [];
        const tx: MemoryConsumeTx = {
          kind: 'memory',
          stage: (apply) => staged.push(apply),
          query: () => Promise.reject(new Error('memory pub/sub: no SQL in a memory transaction; use tx.stage()')),
        };
        try {
          await options.handler(batch, tx);
        } catch {
          stats.rollbacks += 1;
          await sleeper.sleep(this.options.resendIntervalMs);
          continue;
        }
        for (const apply of staged) apply();
        this.acked.set(key, acked + batch.length);
        stats.batches += 1;
        stats.messages += batch.length;
      }
    })();
    return {
      stats,
      done,
      async close() {
        closing = true;
        sleeper.wake();
        await done;
      },
    };
  }
}
