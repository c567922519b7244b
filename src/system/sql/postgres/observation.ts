// The reads a harness makes on PostgreSQL to measure and check a run (progress, consumption per counter, topic
// and server facts), the same questions as sql/mariadb/observation.ts answers. Offset mode differs in one way:
// offsets are not in delivery order here (a group's position is (transaction_id, offset), see messages.ts), so
// progress and consumption count rows at or before the position instead of comparing offsets. Also what readies
// a topic for those reads between bench points: its statistics (analyzePgTopic, primePgTopicStatistics) and its
// emptying (truncatePgTopic).
import type { Consumption, ProgressTarget, SqlExecutor } from '../../types.ts';
import { randomUUID } from 'node:crypto';
import { pgDedupTable, pgMessagesTable, pgOffsetsTable, pgQueueTable } from './identifiers.ts';
import { insertPgMessages } from './messagesTable.ts';

/** The group's position as a row `p` (position 0 when the group has no row yet), for the reads below. */
function positionRow(topic: string): string {
  return `(SELECT COALESCE(o."last_processed_transaction_id", '0'::xid8) AS "tx", COALESCE(o."offset_acked", 0) AS "off"
     FROM (VALUES (1)) AS one("x") LEFT JOIN ${pgOffsetsTable(topic)} o ON o."consumer_group" = $1) AS p`;
}

/**
 * Offset mode: progress = rows at or before the group's position, published = rows in the topic, lag = now
 * minus created_at of the message at the position (0 when nothing waits). Two counts over the primary key per
 * reading: a few ms at a 150,000-message backlog, at the sampler's 4 readings a second. Queue mode as on
 * MariaDB: progress = SUM(counter.value), published = MAX(offset), lag = the oldest unacked message's age.
 * LOCALTIMESTAMP against created_at: both in the session's zone (the pools set UTC).
 */
export async function selectPgProgress(db: SqlExecutor, o: ProgressTarget): Promise<{ progress: number; published: number; lagMs: number | undefined }> {
  if (o.mode === 'offset') {
    const table = pgMessagesTable(o.topic);
    const rows = await db.query<{ published: string; after: string; lag_ms: string | null }[]>(
      `SELECT (SELECT COUNT(*) FROM ${table}) AS "published",
         (SELECT COUNT(*) FROM ${table} m WHERE (m."transaction_id", m."offset") > (p."tx", p."off")) AS "after",
         (SELECT EXTRACT(EPOCH FROM (LOCALTIMESTAMP - m."created_at")) * 1000 FROM ${table} m
           WHERE m."transaction_id" = p."tx" AND m."offset" = p."off") AS "lag_ms"
       FROM ${positionRow(o.topic)}`,
      [o.consumerGroup],
    );
    const r = rows[0];
    const published = Number(r?.published ?? 0);
    const after = Number(r?.after ?? 0);
    const lagMs = after === 0 ? 0 : r?.lag_ms === null || r?.lag_ms === undefined ? undefined : Number(r.lag_ms);
    return { progress: published - after, published, lagMs };
  }
  const rows = await db.query<{ done: string | null; published: string | null; lag_ms: string | null }[]>(
    `SELECT (SELECT SUM("value") FROM "counter") AS "done",
       (SELECT MAX("offset") FROM ${pgQueueTable(o.topic)}) AS "published",
       (SELECT EXTRACT(EPOCH FROM (LOCALTIMESTAMP - "created_at")) * 1000 FROM ${pgQueueTable(o.topic)}
         WHERE NOT "acked" ORDER BY "offset" LIMIT 1) AS "lag_ms"`,
  );
  const r = rows[0];
  return { progress: Number(r?.done ?? 0), published: Number(r?.published ?? 0), lagMs: r?.lag_ms === null || r?.lag_ms === undefined ? 0 : Number(r.lag_ms) };
}

/**
 * Where an incremental progress reading left off (pgProgressReader): `bound` is the highest snapshot xmin seen,
 * so the rows with transaction_id < bound are a closed set (visible or never, see messages.ts); `closed` counts
 * them and `closedUpTo` those of them at or before `position`, the group's position at that reading.
 */
interface PgProgressMark {
  bound: string;
  closed: number;
  closedUpTo: number;
  position: { tx: string; off: number };
}

export interface PgProgressReader {
  read(db: SqlExecutor): Promise<{ progress: number; published: number; lagMs: number | undefined }>;
}

/**
 * selectPgProgress for a poller, with the same figures at a cost bounded by what changed since its last reading
 * instead of by the topic: the full reading's two COUNT(*) took 15-21 ms on a 150,000-row backlog here, so the
 * bench's 20 ms sampler kept a database backend busy for most of a drain (and of the SQL ceiling's loop) on a
 * 2-core machine. Rows below a snapshot's xmin never change (the visibility rule, messages.ts), so their count
 * and how many of them lie at or before the position are carried from reading to reading; each reading counts
 * only the rows that closed since (transaction_id in [old bound, new bound)), the closed rows the position
 * passed since (an index range from the old position to the new), and the open tail (transaction_id >= the new
 * bound: rows of transactions that ended after the oldest one still running). The first reading counts
 * everything once. Exact as long as rows are only added (no prune): a TRUNCATE between bench points comes with
 * a new sampler, hence a new reader. A position that moved back (a group reset) starts over with a full count.
 * Queue mode has nothing to carry: its reading is selectPgProgress's.
 */
export function pgProgressReader(o: ProgressTarget): PgProgressReader {
  let mark: PgProgressMark | undefined;
  const read = async (db: SqlExecutor): Promise<{ progress: number; published: number; lagMs: number | undefined }> => {
    if (o.mode !== 'offset') return selectPgProgress(db, o);
    const table = pgMessagesTable(o.topic);
    const m0 = mark ?? { bound: '0', closed: 0, closedUpTo: 0, position: { tx: '0', off: 0 } };
    // $2 old bound, ($3, $4) old position. Every count is one range of the primary key.
    const rows = await db.query<{ bound: string; tx: string; off: string; newly: string; newly_upto: string; passed: string; open: string; open_upto: string; lag_ms: string | null }[]>(
      `WITH s AS (SELECT GREATEST($2::xid8, pg_snapshot_xmin(pg_current_snapshot())) AS "b")
       SELECT s."b"::text AS "bound", p."tx"::text AS "tx", p."off",
         (SELECT COUNT(*) FROM ${table} m WHERE m."transaction_id" >= $2::xid8 AND m."transaction_id" < s."b") AS "newly",
         (SELECT COUNT(*) FROM ${table} m WHERE m."transaction_id" >= $2::xid8 AND m."transaction_id" < s."b"
            AND (m."transaction_id", m."offset") <= (p."tx", p."off")) AS "newly_upto",
         (SELECT COUNT(*) FROM ${table} m WHERE (m."transaction_id", m."offset") > ($3::xid8, $4::bigint)
            AND (m."transaction_id", m."offset") <= (p."tx", p."off") AND m."transaction_id" < $2::xid8) AS "passed",
         (SELECT COUNT(*) FROM ${table} m WHERE m."transaction_id" >= s."b") AS "open",
         (SELECT COUNT(*) FROM ${table} m WHERE m."transaction_id" >= s."b" AND (m."transaction_id", m."offset") <= (p."tx", p."off")) AS "open_upto",
         (SELECT EXTRACT(EPOCH FROM (LOCALTIMESTAMP - m."created_at")) * 1000 FROM ${table} m
           WHERE m."transaction_id" = p."tx" AND m."offset" = p."off") AS "lag_ms"
       FROM s, ${positionRow(o.topic)}`,
      [o.consumerGroup, m0.bound, m0.position.tx, m0.position.off],
    );
    const r = rows[0];
    if (r === undefined) throw new Error('pgProgressReader: no row');
    const position = { tx: r.tx, off: Number(r.off) };
    if (comparePosition(position, m0.position) < 0) {
      mark = undefined;
      return read(db);
    }
    const closed = m0.closed + Number(r.newly);
    const closedUpTo = m0.closedUpTo + Number(r.passed) + Number(r.newly_upto);
    mark = { bound: r.bound, closed, closedUpTo, position };
    const published = closed + Number(r.open);
    const progress = closedUpTo + Number(r.open_upto);
    const after = published - progress;
    const lagMs = after === 0 ? 0 : r.lag_ms === null ? undefined : Number(r.lag_ms);
    return { progress, published, lagMs };
  };
  return { read };
}

function comparePosition(a: { tx: string; off: number }, b: { tx: string; off: number }): number {
  const ta = BigInt(a.tx);
  const tb = BigInt(b.tx);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.off - b.off;
}

/** What the counter check compares `counter` against, counted by the database (one GROUP BY). */
export async function selectPgConsumption(db: SqlExecutor, o: ProgressTarget): Promise<Consumption> {
  const idExpr = `"payload"->>'counter_uuid'`;
  if (o.mode === 'offset') {
    const table = pgMessagesTable(o.topic);
    const facts = await db.query<{ off: string; m: string | null; c: string; after: string }[]>(
      `SELECT p."off", (SELECT MAX("offset") FROM ${table}) AS "m", (SELECT COUNT(*) FROM ${table}) AS "c",
         (SELECT COUNT(*) FROM ${table} m WHERE (m."transaction_id", m."offset") > (p."tx", p."off")) AS "after"
       FROM ${positionRow(o.topic)}`,
      [o.consumerGroup],
    );
    const rows = await db.query<{ id: string; n: string }[]>(
      `SELECT ${idExpr} AS "id", COUNT(*) AS "n" FROM ${table} m, ${positionRow(o.topic)}
       WHERE (m."transaction_id", m."offset") <= (p."tx", p."off") GROUP BY 1`,
      [o.consumerGroup],
    );
    const f = facts[0];
    return {
      ackedOffset: Number(f?.off ?? 0),
      maxOffset: Number(f?.m ?? 0),
      published: Number(f?.c ?? 0),
      drained: Number(f?.after ?? 0) === 0,
      consumedPerCounter: new Map(rows.map((r) => [r.id, Number(r.n)])),
    };
  }
  const counts = await db.query<{ c: string; a: string; m: string | null }[]>(
    `SELECT COUNT(*) AS "c", COUNT(*) FILTER (WHERE "acked") AS "a", MAX("offset") AS "m" FROM ${pgQueueTable(o.topic)}`,
  );
  const rows = await db.query<{ id: string; n: string }[]>(`SELECT ${idExpr} AS "id", COUNT(*) AS "n" FROM ${pgQueueTable(o.topic)} WHERE "acked" GROUP BY 1`);
  const published = Number(counts[0]?.c ?? 0);
  return {
    ackedOffset: undefined,
    maxOffset: Number(counts[0]?.m ?? 0),
    published,
    drained: Number(counts[0]?.a ?? 0) >= published,
    consumedPerCounter: new Map(rows.map((r) => [r.id, Number(r.n)])),
  };
}

/**
 * ANALYZE of the topic table after the bench writes a backlog into it, so the pollers' progress readings are
 * planned on statistics. A table that was never analyzed (on a new server, until autovacuum, which visits a
 * database once a minute, first analyzes it; statistics survive TRUNCATE, so later points have them) has no
 * histogram of transaction_id, and pgProgressReader's "open" count (transaction_id >= the snapshot's xmin) is then planned
 * at the default one third of the rows: a parallel seq scan of the whole table on every reading. Measured here,
 * 400,000 rows, the SQL ceiling's loop with the 20 ms sampler beside it: 63 ms and ~7,800 buffers per reading,
 * the loop at 22,871 msgs/s; after ANALYZE, 0.5-0.7 ms and ~75 buffers per reading (an index-only range), the
 * loop at 56,773-60,027. The consume read and the counter upsert plan the same with or without statistics
 * (without the sampler: the same buffer counts per statement, 12,135 for the 401 reads, ~2,292,900 for the 400
 * upserts), so this changes what the bench observes with, not the system it measures.
 * Not VACUUM: the consumer stays the first reader of the new rows (it sets their hint bits), as in production.
 */
export async function analyzePgTopic(db: SqlExecutor, topic: string): Promise<void> {
  await db.query(`ANALYZE ${pgMessagesTable(topic)}`);
}

/** Rows primePgTopicStatistics writes to analyze: any number does, the statistics only need rows to exist. */
const PRIMING_ROWS = 100;

/**
 * Statistics for a topic table that fills while the pollers read it (the bench's end-to-end points, whose rows
 * come from the load): analyzePgTopic after the fact is no help there, and an ANALYZE of the emptied table
 * stores no column statistics at all (it has no rows to sample), so on a table never analyzed (a new server,
 * `eob bench --only end-to-end`) every reading was planned without them and counted the growing table with a
 * seq scan. So a few rows are written, analyzed and removed: the statistics survive the TRUNCATE, as a drain's
 * backlog's do for the points after it, and put every transaction id below those the load will write, which
 * plans each count of a reading (ids at or above a bound) as an index range. Measured here, 400,000 rows
 * written in 1,000-row transactions after the priming, 2,500 more between readings: 0.9-1.2 ms per reading,
 * against 79-103 ms (a parallel seq scan) on the same table never analyzed; an ANALYZE of the empty table left
 * that plan as it was. The priming took 26 ms. analyzePgTopic found the consumers' statements planned alike with
 * statistics and without; with primed ones that was not measured.
 * Leaves the topic's tables and `counter` empty (truncatePgTopic): for a point's preparation, before any of its
 * processes runs.
 */
export async function primePgTopicStatistics(db: SqlExecutor, topic: string): Promise<void> {
  await insertPgMessages(db, topic, Array.from({ length: PRIMING_ROWS }, () => ({ uuid: randomUUID(), payload: {}, metadata: {} })));
  await analyzePgTopic(db, topic);
  await truncatePgTopic(db, topic);
}

/**
 * Empties a topic's tables and `counter` between bench points; RESTART IDENTITY starts offsets at 1 again. Only
 * the tables that exist (a topic has one mode's table; the dedup table only after a server ran with --dedup).
 */
export async function truncatePgTopic(db: SqlExecutor, topic: string): Promise<void> {
  const candidates = [pgMessagesTable(topic), pgOffsetsTable(topic), pgQueueTable(topic), pgDedupTable(topic), '"counter"'];
  const present = await db.query<{ name: string | null }[]>('SELECT to_regclass(t."n")::text AS "name" FROM unnest($1::text[]) WITH ORDINALITY AS t("n", "i") ORDER BY t."i"', [candidates]);
  const existing = candidates.filter((_, i) => present[i]?.name !== null && present[i]?.name !== undefined);
  if (existing.length > 0) await db.query(`TRUNCATE TABLE ${existing.join(', ')} RESTART IDENTITY`);
}
