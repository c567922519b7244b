// The reads a harness makes on PostgreSQL to measure and check a run (progress, consumption per counter, topic
// and server facts), the same questions as sql/mariadb/observation.ts answers. Offset mode differs in one way:
// offsets are not in delivery order here (a group's position is (transaction_id, offset), see messages.ts), so
// progress and consumption count rows at or before the position instead of comparing offsets.
import type { SqlExecutor } from '../../pubsub/types.ts';
import type { Consumption, ProgressTarget } from '../mariadb/observation.ts';
import { pgDedupTable, pgMessagesTable, pgOffsetsTable, pgQueueTable } from './identifiers.ts';

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
 * Empties a topic's tables and `counter` between bench points; RESTART IDENTITY starts offsets at 1 again. Only
 * the tables that exist (a topic has one mode's table; the dedup table only after a server ran with --dedup).
 */
export async function truncatePgTopic(db: SqlExecutor, topic: string): Promise<void> {
  const candidates = [pgMessagesTable(topic), pgOffsetsTable(topic), pgQueueTable(topic), pgDedupTable(topic), '"counter"'];
  const present = await db.query<{ name: string | null }[]>('SELECT to_regclass(t."n")::text AS "name" FROM unnest($1::text[]) WITH ORDINALITY AS t("n", "i") ORDER BY t."i"', [candidates]);
  const existing = candidates.filter((_, i) => present[i]?.name !== null && present[i]?.name !== undefined);
  if (existing.length > 0) await db.query(`TRUNCATE TABLE ${existing.join(', ')} RESTART IDENTITY`);
}
