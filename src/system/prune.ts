// Retention: removes what no one will read again, in small autocommit batches that publishers never wait for.
// Offset mode: the messages at or below the lowest acked offset of every consumer group; queue mode: acked
// rows; both: publish-dedup rows older than the dedup window (a retry older than that publishes again).
import { TOPIC_MODES, type SqlExecutor, type TopicMode } from './types.ts';
import { databaseOf, type DatabaseTarget } from './db/openDatabase.ts';
import type { OffsetPrune, SqlEngine } from './sql/engine.ts';
import { Sleeper } from './backoff.ts';
import { assertTopicName } from './sql/topicName.ts';
import { intInRange, oneOf, OptionsError } from '../validate.ts';


export interface PruneOptions {
  topic: string;
  mode: TopicMode;
  /** Rows per DELETE (offset mode: offsets per primary-key range). */
  batchSize: number;
  /** Publish-dedup rows claimed longer ago than this go (s). */
  dedupWindowS: number;
  /** Upper bound on DELETE statements per table per run, so one run always ends under a steady publish rate. */
  maxBatches: number;
  /**
   * After each DELETE, rest this many times as long as it took (0: none): bounds the prune's share of the
   * database's CPU and log, which is what it takes from publishers (it takes no lock they wait for).
   */
  restRatio: number;
}

/**
 * batchSize 1,000 and restRatio 1, measured with `node --import tsx scripts/pruneCost.ts batch 3 ...` (a private
 * MariaDB; 200k acked messages pruned while 16 publishers ran one-row autocommit INSERTs; the 2-core machine
 * shared with 5 other jobs, load average 9-11, so ranges over 3 runs). No setting made a publisher wait on a
 * lock (the slowest INSERT during any prune: 240 ms; a locking consumer holds them for seconds); a prune
 * competes for CPU and the redo log, and that is what the batch size and the rest set:
 *   batch 5,000, no rest:   190-215k rows/s; publishers kept 15-23% of their rate, p99 111-180 ms
 *   batch 5,000, rest 1:    133-169k rows/s; publishers kept 36-48%, p99 67-96 ms
 *   batch 1,000, no rest:   222-326k rows/s; publishers kept 43-100%, p99 63-94 ms
 *   batch 1,000, rest 1:     77-100k rows/s; publishers kept 31-70%, p99 44-100 ms
 * (earlier single runs: batch 20,000 and 100,000 without rest 367-590k rows/s, publishers kept 13-18%; 250,
 * 62-128k rows/s and no better for publishers). Batch 1,000 with a rest as long as each DELETE bounds a prune
 * to about half of one database thread and still removes rows 4x faster than the highest publish rate
 * measured here (~19,000 req/s), so a periodic prune always catches up. dedupWindowS one hour: clients retry
 * within seconds or minutes; an hour of ids at 15,000 req/s is ~54 million rows.
 */
export const DEFAULT_PRUNE_OPTIONS: Omit<PruneOptions, 'topic'> = {
  mode: 'offset',
  batchSize: 1_000,
  dedupWindowS: 3_600,
  maxBatches: 100_000,
  restRatio: 1,
};

export function validatePruneOptions(o: PruneOptions): PruneOptions {
  const c = 'prune';
  assertTopicName(o.topic);
  oneOf(c, 'mode', o.mode, TOPIC_MODES);
  intInRange(c, 'batchSize', o.batchSize, 1, 1_000_000);
  intInRange(c, 'dedupWindowS', o.dedupWindowS, 1, 10 * 365 * 86_400);
  intInRange(c, 'maxBatches', o.maxBatches, 1, 100_000_000);
  if (!(o.restRatio >= 0 && o.restRatio <= 100)) throw new OptionsError(`${c}: restRatio must be a number from 0 to 100 (got ${String(o.restRatio)})`);
  return o;
}

export interface PruneResult {
  /** Topic rows removed (messages in offset mode, acked rows in queue mode). */
  messagesRemoved: number;
  dedupRowsRemoved: number;
  /** Offset mode: the lowest acked offset over the groups, the highest offset a prune may remove. */
  floor: number | undefined;
  /** Offset mode: consumer groups found (0: nothing pruned, nothing is known to be consumed). */
  groups: number | undefined;
  batches: number;
  durationMs: number;
}

/** Runs one prune on a connection of its own; the connection is closed afterwards (its session level was set). */
export async function prune(target: DatabaseTarget, options: PruneOptions): Promise<PruneResult> {
  const o = validatePruneOptions(options);
  const database = databaseOf(target);
  const engine = database.engine;
  const started = performance.now();
  const session = await database.session();
  try {
    // READ COMMITTED: the DELETEs take no gap or next-key locks, so an INSERT at the tail never waits for one;
    // each DELETE autocommits, so its row locks last one statement.
    await session.setIsolation('READ COMMITTED');
    const db: SqlExecutor = session;
    const result: PruneResult = { messagesRemoved: 0, dedupRowsRemoved: 0, floor: undefined, groups: undefined, batches: 0, durationMs: 0 };
    if (o.mode === 'offset') await pruneOffsetTopic(engine, db, o, result);
    else await pruneQueueTopic(engine, db, o, result);
    await pruneDedup(engine, db, o, result);
    result.durationMs = Math.round(performance.now() - started);
    return result;
  } finally {
    session.destroy();
  }
}

async function pruneOffsetTopic(engine: SqlEngine, db: SqlExecutor, o: PruneOptions, result: PruneResult): Promise<void> {
  let pruned: OffsetPrune;
  try {
    pruned = await engine.pruneOffsetTopic(db, { topic: o.topic, batchSize: o.batchSize, maxBatches: o.maxBatches }, (step) => rested(o, step));
  } catch (error) {
    // A prune started before any server or worker created the topic (they may all be starting now): no group
    // has consumed anything, so nothing is removed.
    if (!engine.isMissingTable(error)) throw error;
    result.groups = 0;
    return;
  }
  result.floor = pruned.floor;
  result.groups = pruned.groups;
  result.messagesRemoved += pruned.removed;
  result.batches += pruned.batches;
}

async function pruneQueueTopic(engine: SqlEngine, db: SqlExecutor, o: PruneOptions, result: PruneResult): Promise<void> {
  for (let n = 0; n < o.maxBatches; n += 1) {
    let removed: number;
    try {
      removed = await rested(o, () => engine.deleteAckedQueueRows(db, { topic: o.topic, limit: o.batchSize }));
    } catch (error) {
      // The queue table does not exist before a server or worker created the topic: nothing is acked yet.
      if (engine.isMissingTable(error) && n === 0) return;
      throw error;
    }
    result.messagesRemoved += removed;
    result.batches += 1;
    if (removed < o.batchSize) return;
  }
}

async function pruneDedup(engine: SqlEngine, db: SqlExecutor, o: PruneOptions, result: PruneResult): Promise<void> {
  for (let n = 0; n < o.maxBatches; n += 1) {
    let removed: number;
    try {
      removed = await rested(o, () => engine.deleteDedupRowsOlderThan(db, { topic: o.topic, windowS: o.dedupWindowS, limit: o.batchSize }));
    } catch (error) {
      // The dedup table exists only once a server ran with de-duplication on: nothing to prune then.
      if (engine.isMissingTable(error) && n === 0) return;
      throw error;
    }
    result.dedupRowsRemoved += removed;
    result.batches += 1;
    if (removed < o.batchSize) return;
  }
}

/** Runs one DELETE, then rests restRatio times as long as it took. */
async function rested(o: PruneOptions, statement: () => Promise<number>): Promise<number> {
  const started = performance.now();
  const removed = await statement();
  const restMs = (performance.now() - started) * o.restRatio;
  if (restMs >= 1) await new Promise((r) => setTimeout(r, restMs));
  return removed;
}

/** A prune every `everyMs` on the worker's pool; stop() lets the run in hand finish (it is a few statements). */
export interface PeriodicPrune {
  /** Totals over every run so far. */
  readonly totals: { runs: number; failures: number; messagesRemoved: number; dedupRowsRemoved: number };
  stop(): Promise<void>;
}

export function startPeriodicPrune(target: DatabaseTarget, options: PruneOptions, everyMs: number, log: (line: string) => void): PeriodicPrune {
  const o = validatePruneOptions(options);
  const db = databaseOf(target);
  const sleeper = new Sleeper();
  const totals = { runs: 0, failures: 0, messagesRemoved: 0, dedupRowsRemoved: 0 };
  let stopping = false;
  const done = (async () => {
    while (!stopping) {
      await sleeper.sleep(everyMs);
      if (stopping) break;
      try {
        const r = await prune(db, o);
        totals.runs += 1;
        totals.messagesRemoved += r.messagesRemoved;
        totals.dedupRowsRemoved += r.dedupRowsRemoved;
        if (r.messagesRemoved + r.dedupRowsRemoved > 0) log(`prune ${JSON.stringify(r)}`);
      } catch (error) {
        // A database restart or a lost connection: the next run tries again; nothing was half done (each
        // DELETE is its own transaction).
        totals.failures += 1;
        log(`prune failed, next run in ${everyMs} ms: ${db.describe(error)}`);
      }
    }
  })();
  return {
    totals,
    async stop() {
      stopping = true;
      sleeper.wake();
      await done;
    },
  };
}
