// The HTTP server's Prometheus metrics (prom-client, a registry of the server's own, served at GET /metrics).
// Counts the server already keeps (its stats, the coalescer's) are read when a scrape comes, so requests pay
// nothing for them; on the request path there is one clock reading per request and one histogram observation
// per request (publish latency) and per batch (rows per INSERT).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServerStats } from '../server/options.ts';

/** What the scrape reads from the running server. */
export interface ServerGauges {
  stats: ServerStats;
  /** Requests waiting for a flush. */
  queued(): number;
  /** Requests of the flushes at the database. */
  inFlight(): number;
  queueBound: number;
}

/**
 * Publish latency buckets (s): statements here take 1-20 ms under load (p99 15 ms at 18,000 req/s) and the
 * publish timeout is 10 s, so the buckets cover half a millisecond to the timeout.
 */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
/** Rows per INSERT: 1 to the largest coalesceMaxBatch worth configuring. */
export const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

export interface ServerMetrics {
  readonly registry: Registry;
  /** Publish latency of one answered POST /count, from its arrival to the outcome (seconds). */
  observeLatency(seconds: number): void;
  /** Rows of one flushed batch. */
  observeBatch(rows: number): void;
  /** A deadlock between de-duplicating batches, retried. */
  deadlockRetried(): void;
}

export function serverMetrics(read: ServerGauges): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const latency = new Histogram({ name: 'eob_publish_latency_seconds', help: 'POST /count from arrival to its answer (204 or failure), seconds', buckets: LATENCY_BUCKETS_S, registers });
  const batches = new Histogram({ name: 'eob_publish_batch_rows', help: 'rows per coalesced INSERT (one flush)', buckets: BATCH_SIZE_BUCKETS, registers });
  const deadlocks = new Counter({ name: 'eob_publish_deadlock_retries_total', help: 'de-duplicating publish transactions rolled back by a deadlock and retried', registers });
  new Gauge({ name: 'eob_publish_queue_depth', help: 'requests waiting for a flush', registers, collect() { this.set(read.queued()); } });
  new Gauge({ name: 'eob_publish_queue_bound', help: 'requests that may wait for a flush (--max-queued-publishes)', registers, collect() { this.set(read.queueBound); } });
  new Gauge({ name: 'eob_publish_in_flight', help: 'requests of the flushes at the database', registers, collect() { this.set(read.inFlight()); } });
  new Counter({
    name: 'eob_publish_requests_total',
    help: 'POST /count answered, by outcome',
    labelNames: ['outcome'],
    registers,
    collect() {
      const s = read.stats;
      this.reset();
      this.inc({ outcome: 'published' }, s.published);
      this.inc({ outcome: 'duplicate' }, s.duplicates);
      this.inc({ outcome: 'conflict' }, s.conflicts);
      this.inc({ outcome: 'not_published' }, s.notPublished);
      this.inc({ outcome: 'unknown' }, s.unknownOutcomes);
    },
  });
  new Counter({
    name: 'eob_publish_shed_total',
    help: 'POST /count refused at once with 503 (nothing recorded), by reason: the shared queue full, or the connection past its share',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      this.inc({ reason: 'queue_full' }, read.stats.coalescer.shed);
      this.inc({ reason: 'connection_bound' }, read.stats.connectionShed);
    },
  });
  new Counter({
    name: 'eob_publish_expired_total',
    help: 'POST /count whose publish timeout ran out while still queued: left the queue unsent, answered 503',
    registers,
    collect() {
      this.reset();
      this.inc(read.stats.coalescer.withdrawn);
    },
  });
  new Counter({
    name: 'eob_publish_failed_batches_total',
    help: 'flushes that failed as a whole',
    registers,
    collect() {
      this.reset();
      this.inc(read.stats.coalescer.failedBatches);
    },
  });
  return {
    registry,
    observeLatency: (seconds) => latency.observe(seconds),
    observeBatch: (rows) => batches.observe(rows),
    deadlockRetried: () => deadlocks.inc(),
  };
}
