// What pruning costs, measured on a private MariaDB (never the machine's own service):
//
//   node --import tsx scripts/pruneCost.ts batch     publish latency while `prune` removes 200k acked messages,
//                                                    per DELETE batch size (chooses DEFAULT_PRUNE_OPTIONS.batchSize)
//   node --import tsx scripts/pruneCost.ts onoff     drain and end to end (server + worker children) with the
//                                                    worker's --prune-every 1 against off, interleaved
//
// Prints one line per measurement and a summary; a benchmark, not a test (no assertion on speed), but each
// on/off point checks that every message was counted exactly once.
import { randomUUID } from 'node:crypto';
import { readEnvironment } from '../src/config.ts';
import { executorOf, type Pool } from '../src/system/db/mariadb/pool.ts';
import type { OutgoingMessage, SqlExecutor } from '../src/system/pubsub/types.ts';
import { ensureSchema } from '../src/system/sql/mariadb/schema.ts';
import { DEFAULT_PRUNE_OPTIONS, prune } from '../src/system/prune.ts';
import { insertMessagesStatement, selectMaxOffset, writeMessages } from '../src/system/sql/mariadb/messagesTable.ts';
import { createOffsetsTable, selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { sumCounters } from '../src/system/sql/mariadb/counterTable.ts';
import { messagesTable, offsetsTable } from '../src/system/sql/mariadb/identifiers.ts';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { makeCounterIds, startLoad } from '../src/bench/load.ts';

const TOPIC = 'counter';
const BACKLOG = 200_000;
const REPETITIONS = Number(process.argv[3] ?? 3);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}

async function resetTopic(db: SqlExecutor): Promise<void> {
  await ensureSchema(db, { topic: TOPIC, topicSchema: 'offset', dedup: false });
  await createOffsetsTable(db, TOPIC);
  for (const table of [messagesTable(TOPIC), offsetsTable(TOPIC), '`counter`']) await db.query(`TRUNCATE TABLE ${table}`);
}

async function fill(db: SqlExecutor, n: number, counters: readonly string[]): Promise<void> {
  for (let done = 0; done < n; done += 1000) {
    const batch: OutgoingMessage[] = Array.from({ length: Math.min(1000, n - done) }, (_, i) => ({
      uuid: randomUUID(),
      payload: { counter_uuid: counters[(done + i) % counters.length] },
      metadata: {},
    }));
    await writeMessages(db, insertMessagesStatement(messagesTable(TOPIC), batch));
  }
}

/** 16 publishers of one-row autocommit INSERTs (the server without coalescing) until `stop` resolves. */
async function publishUntil(pool: Pool, stop: Promise<void>): Promise<number[]> {
  const db = executorOf(pool);
  const latencies: number[] = [];
  let stopped = false;
  void stop.then(() => (stopped = true));
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (!stopped) {
        const t = performance.now();
        await writeMessages(db, insertMessagesStatement(messagesTable(TOPIC), [{ uuid: randomUUID(), payload: { counter_uuid: 'x' }, metadata: {} }]));
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

function latencyText(l: readonly number[], seconds: number): string {
  return `${Math.round(l.length / seconds)} inserts/s, p50 ${quantile(l, 0.5).toFixed(1)} ms, p99 ${quantile(l, 0.99).toFixed(1)} ms, max ${quantile(l, 1).toFixed(0)} ms`;
}

async function batchSizes(sut: SystemUnderTest): Promise<void> {
  const db = sut.db;
  // batch:rest pairs, e.g. 1000:0,1000:1
  const sizes = (process.argv[4] ?? '1000:0,5000:0,20000:0,1000:1,5000:1').split(',').map((p) => p.split(':').map(Number) as [number, number]);
  const counters = makeCounterIds(100);
  for (let rep = 1; rep <= REPETITIONS; rep += 1) {
    for (const [batchSize, restRatio] of sizes) {
      await resetTopic(db);
      await fill(db, BACKLOG, counters);
      await db.query(`INSERT INTO ${offsetsTable(TOPIC)} (\`consumer_group\`, \`offset_acked\`, \`offset_consumed\`) VALUES ('counter', ?, ?)`, [BACKLOG, BACKLOG]);
      // 2 s of publishing alone, then the same publishers while the prune runs.
      const alone = await publishUntil(sut.pool, sleep(2_000));
      let pruneDone!: () => void;
      const pruned = new Promise<void>((r) => (pruneDone = r));
      const during = publishUntil(sut.pool, pruned);
      const t = performance.now();
      const result = await prune(sut.pool, { ...DEFAULT_PRUNE_OPTIONS, topic: TOPIC, mode: 'offset', batchSize, restRatio });
      const s = (performance.now() - t) / 1000;
      pruneDone();
      const l = await during;
      process.stdout.write(
        `batch ${batchSize} rest ${restRatio} rep ${rep}: pruned ${result.messagesRemoved} rows in ${s.toFixed(2)} s (${Math.round(result.messagesRemoved / s)} rows/s); ` +
          `publishing alone: ${latencyText(alone, 2)}; while pruning: ${latencyText(l, s)}\n`,
      );
    }
  }
}

async function countRows(db: SqlExecutor): Promise<number> {
  return Number((await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${messagesTable(TOPIC)}`))[0]?.n ?? 0);
}

async function waitForCatchUp(db: SqlExecutor, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    // MAX(offset) of a pruned topic is below the acked offset: compare with what was published instead.
    const max = await selectMaxOffset(db, TOPIC);
    if ((await selectAckedOffset(db, TOPIC, 'counter')) >= max) return true;
    await sleep(20);
  }
  return false;
}

async function onOff(sut: SystemUnderTest): Promise<void> {
  const db = sut.db;
  const server = await sut.startServer({});
  const counters = makeCounterIds(1_000);
  for (let rep = 1; rep <= REPETITIONS; rep += 1) {
    for (const pruneEveryS of [0, 1]) {
      const label = pruneEveryS === 0 ? 'prune off' : 'prune every 1 s';
      // Drain: a backlog published straight into the table, then one worker.
      await resetTopic(db);
      await fill(db, BACKLOG, counters);
      let worker = await sut.startWorker({ pruneEveryS });
      // From the first progress to the end of the backlog, as the bench measures drain (start-up excluded).
      let first: { t: number; acked: number } | undefined;
      let end = 0;
      const deadline = performance.now() + 60_000;
      for (;;) {
        const acked = await selectAckedOffset(db, TOPIC, 'counter');
        const now = performance.now();
        if (first === undefined && acked > 0) first = { t: now, acked };
        if (acked >= BACKLOG || now > deadline) {
          end = now;
          break;
        }
        await sleep(20);
      }
      const rate = first === undefined ? 0 : (BACKLOG - first.acked) / ((end - first.t) / 1000);
      // With pruning on, wait until the prunes have removed the backlog (at most 15 s).
      const gone = performance.now();
      while (pruneEveryS > 0 && (await countRows(db)) > 0 && performance.now() - gone < 15_000) await sleep(100);
      const left = await countRows(db);
      const counted = await sumCounters(db);
      await sut.stopService(worker);
      process.stdout.write(
        `drain ${label} rep ${rep}: ${Math.round(rate)} msgs/s over ${BACKLOG} msgs; counted ${counted} (${counted === BACKLOG ? 'exact' : 'WRONG'}); ` +
          `rows left ${left}${pruneEveryS > 0 ? `, ${((performance.now() - gone) / 1000).toFixed(1)} s after the drain` : ''}\n`,
      );

      // End to end: autocannon on the server, one worker, 8 s.
      await resetTopic(db);
      worker = await sut.startWorker({ pruneEveryS });
      const load = await startLoad({ baseUrl: server.baseUrl, route: 'count', counters, connections: 50, durationS: 8, overallRate: undefined, timeoutS: 10 }).result;
      const c = performance.now();
      const caughtUp = await waitForCatchUp(db, 60_000);
      const catchUpMs = performance.now() - c;
      const total = await sumCounters(db);
      const published = await selectAckedOffset(db, TOPIC, 'counter');
      await sleep(pruneEveryS * 1000 + 500);
      const rowsLeft = await countRows(db);
      await sut.stopService(worker);
      // Requests in flight when autocannon stops are committed but not counted as 2xx: up to one per connection.
      const exact = total === published && total >= load.requests2xx && total <= load.requests2xx + 50;
      process.stdout.write(
        `end-to-end ${label} rep ${rep}: ${Math.round(load.okPerSecond)} req/s answered 2xx, p50 ${load.latencyP50Ms} ms, p99 ${load.latencyP99Ms} ms, ` +
          `non-2xx ${load.requestsNon2xx}; worker caught up ${Math.round(catchUpMs)} ms after the load${caughtUp ? '' : ' (NOT caught up)'}; ` +
          `${published} messages, counted ${total} (${exact ? 'exact' : 'WRONG'}), ${load.requests2xx} 204s; rows left ${rowsLeft}\n`,
      );
    }
  }
}

const what = process.argv[2];
if (what !== 'batch' && what !== 'onoff') {
  process.stderr.write('usage: node --import tsx scripts/pruneCost.ts batch|onoff [repetitions]\n');
  process.exit(2);
}
const env = readEnvironment();
const sut = await SystemUnderTest.start({ mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath, handleSignals: false, log: (l) => process.stderr.write(`${l}\n`) });
try {
  process.stdout.write(`load average at start: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
  if (what === 'batch') await batchSizes(sut);
  else await onOff(sut);
  process.stdout.write(`load average at end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
} finally {
  await sut.close();
}
