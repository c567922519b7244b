// The worker's Prometheus metrics (prom-client, a registry of the worker's own, served by metricsListener.ts
// with `eob worker --metrics-port N`). The subscriber's counts are read from its stats when a scrape comes;
// consume lag is read from the database at that moment (one small statement per scrape, off the consume path);
// the only work per batch is one histogram observation of its size.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchHandler, SubscriberStats } from '../pubsub/types.ts';
import { BATCH_SIZE_BUCKETS } from './serverMetrics.ts';

export interface WorkerReadings {
  stats(): SubscriberStats;
  /**
   * Offsets published past the group's acked one (offset mode; undefined in queue mode), and how far behind in
   * time the consumer is (see eob_consume_lag_seconds); rejects when the database does not answer.
   */
  lag(): Promise<{ offsets: number | undefined; seconds: number | undefined }>;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Wraps the batch handler so each delivered batch's size is observed. */
  observing(handler: BatchHandler): BatchHandler;
}

/** A counter that mirrors a cumulative count kept elsewhere, read at each scrape. */
function mirrored(registers: Registry[], name: string, help: string, value: () => number): void {
  new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(value());
    },
  });
}

export function workerMetrics(read: WorkerReadings): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const batchSizes = new Histogram({ name: 'eob_consume_batch_messages', help: 'messages per delivered batch (one consume transaction; a retried batch counts again)', buckets: BATCH_SIZE_BUCKETS, registers });
  const s = read.stats;
  mirrored(registers, 'eob_consume_messages_total', 'messages consumed (committed with their effects)', () => s().messages);
  mirrored(registers, 'eob_consume_batches_total', 'consume transactions committed', () => s().batches);
  mirrored(registers, 'eob_consume_rollbacks_total', 'consume transactions rolled back', () => s().rollbacks);
  mirrored(registers, 'eob_consume_retries_total', 'consume transactions retried after a failure', () => s().retries);
  mirrored(registers, 'eob_consume_conflict_retries_total', 'of the retries, those rolled back by a deadlock (or a Galera certification conflict)', () => s().conflictRetries);
  mirrored(registers, 'eob_poisoned_messages_total', 'messages moved to the poison table after failing their handler too often', () => s().poisoned);
  new Counter({
    name: 'eob_gaps_passed_total',
    help: 'offsets passed over as holes (offset mode), by what passed them: a proof (statements, or the innodb_trx control) or the bound (gap timeout, unproven)',
    labelNames: ['by'],
    registers,
    collect() {
      const st = s();
      this.reset();
      this.inc({ by: 'proof' }, st.gapsPassedByStatements + st.gapsPassedByInnodbTrx);
      this.inc({ by: 'bound' }, st.gapsPassedByTimeout);
      // PostgreSQL's xmin rule and anything else that passes a hole without one of the two above.
      this.inc({ by: 'other' }, Math.max(0, st.gapsPassed - st.gapsPassedByStatements - st.gapsPassedByInnodbTrx - st.gapsPassedByTimeout));
    },
  });
  // One database read per scrape serves both gauges: the registry collects its metrics concurrently, so the
  // read made by the first one is shared with the second while it is pending.
  let pending: Promise<{ offsets: number | undefined; seconds: number | undefined }> | undefined;
  const lagNow = (): Promise<{ offsets: number | undefined; seconds: number | undefined }> =>
    (pending ??= read
      .lag()
      // A database that does not answer must not cost the scrape the worker's own counts.
      .catch(() => ({ offsets: Number.NaN, seconds: Number.NaN }))
      .finally(() => {
        pending = undefined;
      }));
  new Gauge({
    name: 'eob_consume_lag_offsets',
    help: 'offsets published past the group\'s acked offset (offset mode; holes count too), read from the database at scrape time',
    registers,
    async collect() {
      const lag = await lagNow();
      if (lag.offsets !== undefined) this.set(lag.offsets);
    },
  });
  new Gauge({
    name: 'eob_consume_lag_seconds',
    help: 'while messages wait, now minus the publish time of the last message consumed (0 when caught up; NaN before the first is consumed or when the database did not answer), read from the database at scrape time',
    registers,
    async collect() {
      this.set((await lagNow()).seconds ?? Number.NaN);
    },
  });
  return {
    registry,
    observing: (handler) => (messages, tx) => {
      batchSizes.observe(messages.length);
      return handler(messages, tx);
    },
  };
}
