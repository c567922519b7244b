// What the gap proof costs a draining consumer, measured on a private MariaDB (never the machine's own service):
//
//   node --import tsx scripts/gapProofCost.ts [repetitions] [other-checkout]
//
// Drains a backlog at batch 1000 with the offset subscriber's defaults (READ COMMITTED, `statements` proof),
// once with no holes and once with 2% of the inserts rolled back (a permanent hole after every 49 rows, each
// needing a proof), `repetitions` times (default 3), alternating. With `other-checkout` (the root of another
// checkout of this repository, e.g. an older commit exported with `git archive`, with node_modules beside it),
// each drain is also run with that checkout's subscriber on the same server, interleaved, to compare two
// versions of the proof in one session. Prints one line per drain and the range per variant; a benchmark, not
// a test, but each drain checks that every message was counted exactly once.
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readEnvironment } from '../src/config.ts';
import { executorOf, type Pool } from '../src/system/db/mariadb/pool.ts';
import type { Message, Subscription } from '../src/system/pubsub/types.ts';
import { insertMessagesStatement, selectMaxOffset } from '../src/system/sql/mariadb/messagesTable.ts';
import { messagesTable } from '../src/system/sql/mariadb/identifiers.ts';
import { selectAckedOffset } from '../src/system/sql/mariadb/offsetsTable.ts';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';

const MESSAGES = 100_000;
const REPETITIONS = Number(process.argv[2] ?? 3);
const OTHER = process.argv[3];

type Subscribe = (pool: Pool, options: Record<string, unknown>) => Promise<Subscription>;
interface Variant {
  name: string;
  subscribe: Subscribe;
  prepare: (db: ReturnType<typeof executorOf>, topic: string, group: string) => Promise<void>;
  defaults: Record<string, unknown>;
}

async function variant(name: string, root: string): Promise<Variant> {
  const m = (await import(path.join(root, 'src/system/pubsub/offsetSubscriber.ts'))) as {
    subscribeOffset: Subscribe;
    prepareOffsetTopic: Variant['prepare'];
    DEFAULT_OFFSET_SUBSCRIBER_OPTIONS: Record<string, unknown>;
  };
  return { name, subscribe: m.subscribeOffset, prepare: m.prepareOffsetTopic, defaults: m.DEFAULT_OFFSET_SUBSCRIBER_OPTIONS };
}

async function fill(pool: Pool, topic: string, holes: boolean): Promise<number> {
  const table = messagesTable(topic);
  const chunk = holes ? 49 : 1000;
  let committed = 0;
  const c = await pool.getConnection();
  try {
    while (committed < MESSAGES) {
      const rows = Array.from({ length: Math.min(chunk, MESSAGES - committed) }, () => ({ uuid: randomUUID(), payload: { n: committed }, metadata: {} }));
      const { sql, values } = insertMessagesStatement(table, rows);
      await c.query(sql, values);
      committed += rows.length;
      if (holes) {
        await c.query('START TRANSACTION');
        const hole = insertMessagesStatement(table, [{ uuid: randomUUID(), payload: {}, metadata: {} }]);
        await c.query(hole.sql, hole.values);
        await c.query('ROLLBACK');
      }
    }
  } finally {
    c.release();
  }
  return committed;
}

async function drain(pool: Pool, v: Variant, holes: boolean): Promise<{ ms: number; rate: number; passed: number; byTimeout: number }> {
  const topic = `gpc_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const db = executorOf(pool);
  await v.prepare(db, topic, 'g');
  const n = await fill(pool, topic, holes);
  const max = await selectMaxOffset(db, topic);
  let counted = 0;
  const seen = new Set<string>();
  let duplicates = 0;
  const started = performance.now();
  const sub = await v.subscribe(pool, {
    ...v.defaults,
    topic,
    consumerGroup: 'g',
    batchSize: 1000,
    handler: async (messages: readonly Message[]) => {
      // Effects are counted in memory after the batch is read; a rolled-back batch is read again, so only
      // first sightings count (the exactly-once check itself is the acked offset against the rows).
      for (const m of messages) {
        if (seen.has(m.uuid)) duplicates += 1;
        seen.add(m.uuid);
      }
      counted += messages.length;
    },
    log: () => undefined,
  });
  try {
    for (let i = 0; i < 60_000; i += 1) {
      if ((await selectAckedOffset(db, topic, 'g')) === max) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - started;
    if (seen.size !== n) throw new Error(`${v.name}: saw ${seen.size} distinct of ${n} messages (${counted} deliveries, ${duplicates} repeats)`);
    return { ms, rate: n / (ms / 1000), passed: sub.stats.gapsPassed, byTimeout: sub.stats.gapsPassedByTimeout };
  } finally {
    await sub.close();
    await db.query(`DROP TABLE ${messagesTable(topic)}`);
  }
}

const env = readEnvironment();
const sut = await SystemUnderTest.start({ mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath, handleSignals: false, log: (l) => process.stderr.write(`${l}\n`) });
try {
  const variants = [await variant('this checkout', path.resolve(import.meta.dirname, '..'))];
  if (OTHER !== undefined) variants.push(await variant(`other (${OTHER})`, path.resolve(OTHER)));
  const results = new Map<string, number[]>();
  for (let r = 1; r <= REPETITIONS; r += 1) {
    for (const holes of [false, true]) {
      for (const v of r % 2 === 1 ? variants : [...variants].reverse()) {
        const d = await drain(sut.pool, v, holes);
        const key = `${v.name}, ${holes ? '2% rolled back' : 'no holes'}`;
        results.set(key, [...(results.get(key) ?? []), d.rate]);
        process.stdout.write(
          `run ${r} ${key}: ${MESSAGES} msgs in ${Math.round(d.ms)} ms = ${Math.round(d.rate)} msgs/s; holes passed ${d.passed} (by timeout ${d.byTimeout})\n`,
        );
      }
    }
  }
  for (const [key, rates] of results) {
    process.stdout.write(`${key}: ${Math.round(Math.min(...rates))}-${Math.round(Math.max(...rates))} msgs/s over ${rates.length} drains\n`);
  }
} finally {
  await sut.close();
}
