// The reads a harness makes to measure and check a run, against the tables the system writes: progress (how far
// consumption got, how much was published, the lag), consumption per counter (what the counter check compares
// `counter` against), topic and server facts. None of these runs inside the system; they sit here so that all
// SQL text lives under src/system/sql/ and another engine provides the same reads.
import type { Consumption, ProgressTarget } from '../../types.ts';
import type { SqlExecutor, TopicMode } from '../../types.ts';
import { messagesTable, offsetsTable, queueTable, dedupTable } from './identifiers.ts';

/**
 * One reading in a single statement (4 small queries a second at the sampler's 250 ms stay negligible).
 * Offset mode: progress = the group's acked offset, published = MAX(offset), lag = now minus created_at of the
 * last acked message (0 when nothing waits). Queue mode has no high-water mark: progress = SUM(counter.value)
 * (the effects), published = MAX(offset), lag = the age of the oldest unacked message. Ages are computed by the
 * database (NOW(6) against created_at) so no clock skew enters.
 */
export async function selectProgress(db: SqlExecutor, o: ProgressTarget): Promise<{ progress: number; published: number; lagMs: number | undefined }> {
  if (o.mode === 'offset') {
    const rows = await db.query<{ acked: number | null; max_offset: number | null; lag_us: number | null }[]>(
      `SELECT a.acked, (SELECT MAX(\`offset\`) FROM ${messagesTable(o.topic)}) AS max_offset,
        (SELECT TIMESTAMPDIFF(MICROSECOND, m.created_at, NOW(6)) FROM ${messagesTable(o.topic)} m WHERE m.\`offset\` = a.acked) AS lag_us
       FROM (SELECT COALESCE((SELECT \`offset_acked\` FROM ${offsetsTable(o.topic)} WHERE \`consumer_group\` = ?), 0) AS acked) a`,
      [o.consumerGroup],
    );
    const r = rows[0];
    const acked = Number(r?.acked ?? 0);
    const published = Number(r?.max_offset ?? 0);
    const lagMs = acked >= published ? 0 : r?.lag_us === null || r?.lag_us === undefined ? undefined : Number(r.lag_us) / 1000;
    return { progress: acked, published, lagMs };
  }
  const rows = await db.query<{ done: number | null; published: number | null; lag_us: number | null }[]>(
    `SELECT (SELECT SUM(\`value\`) FROM \`counter\`) AS done,
      (SELECT MAX(\`offset\`) FROM ${queueTable(o.topic)}) AS published,
      (SELECT TIMESTAMPDIFF(MICROSECOND, created_at, NOW(6)) FROM ${queueTable(o.topic)} WHERE \`acked\` = 0 ORDER BY \`offset\` LIMIT 1) AS lag_us`,
  );
  const r = rows[0];
  return {
    progress: Number(r?.done ?? 0),
    published: Number(r?.published ?? 0),
    lagMs: r?.lag_us === null || r?.lag_us === undefined ? 0 : Number(r.lag_us) / 1000,
  };
}

/**
 * What the counter check compares `counter` against, counted by the database in one GROUP BY (a drain point's
 * backlog is 150,000 messages: reading them into this process would cost more than the point).
 */
export async function selectConsumption(db: SqlExecutor, o: ProgressTarget): Promise<Consumption> {
  const idExpr = "JSON_UNQUOTE(JSON_EXTRACT(`payload`, '$.counter_uuid'))";
  if (o.mode === 'offset') {
    const acked = await db.query<{ a: number | null }[]>(`SELECT \`offset_acked\` AS a FROM ${offsetsTable(o.topic)} WHERE \`consumer_group\` = ?`, [o.consumerGroup]);
    const max = await db.query<{ m: number | null; c: number }[]>(`SELECT MAX(\`offset\`) AS m, COUNT(*) AS c FROM ${messagesTable(o.topic)}`);
    const ackedOffset = Number(acked[0]?.a ?? 0);
    const maxOffset = Number(max[0]?.m ?? 0);
    const rows = await db.query<{ id: string; n: number }[]>(
      `SELECT ${idExpr} AS id, COUNT(*) AS n FROM ${messagesTable(o.topic)} WHERE \`offset\` <= ? GROUP BY id`,
      [ackedOffset],
    );
    return {
      ackedOffset,
      maxOffset,
      published: Number(max[0]?.c ?? 0),
      drained: ackedOffset >= maxOffset,
      consumedPerCounter: new Map(rows.map((r) => [r.id, Number(r.n)])),
    };
  }
  const counts = await db.query<{ c: number; a: number | null; m: number | null }[]>(
    `SELECT COUNT(*) AS c, SUM(\`acked\`) AS a, MAX(\`offset\`) AS m FROM ${queueTable(o.topic)}`,
  );
  const rows = await db.query<{ id: string; n: number }[]>(`SELECT ${idExpr} AS id, COUNT(*) AS n FROM ${queueTable(o.topic)} WHERE \`acked\` = 1 GROUP BY id`);
  const published = Number(counts[0]?.c ?? 0);
  return {
    ackedOffset: undefined,
    maxOffset: Number(counts[0]?.m ?? 0),
    published,
    drained: Number(counts[0]?.a ?? 0) >= published,
    consumedPerCounter: new Map(rows.map((r) => [r.id, Number(r.n)])),
  };
}

/** Rows in the topic's table (offset: watermill_<topic>; queue: eob_queue_<topic>). */
export async function countTopicRows(db: SqlExecutor, mode: TopicMode, topic: string): Promise<number> {
  const table = mode === 'offset' ? messagesTable(topic) : queueTable(topic);
  const rows = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Empties a topic's tables between bench points. TRUNCATE also resets AUTO_INCREMENT, so a backlog's offsets
 * are 1..N and the acked offset counts messages. The dedup table exists only when a server ran with --dedup.
 */
export async function truncateTopic(db: SqlExecutor, topic: string): Promise<void> {
  for (const table of [messagesTable(topic), offsetsTable(topic), queueTable(topic), '`counter`']) {
    await db.query(`TRUNCATE TABLE ${table}`);
  }
  const dedup = await db.query<unknown[]>('SHOW TABLES LIKE ?', [dedupTable(topic).replace(/`/g, '')]);
  if (dedup.length > 0) await db.query(`TRUNCATE TABLE ${dedupTable(topic)}`);
}

/**
 * Undoes a consumption of the topic, its messages kept: the bench's paired SQL ceiling consumes a drain's
 * backlog, then the workers consume the same messages again from offset 0 with every counter at 0.
 */
export async function resetConsumption(db: SqlExecutor, topic: string): Promise<void> {
  for (const table of [offsetsTable(topic), '`counter`']) {
    await db.query(`TRUNCATE TABLE ${table}`);
  }
}

/** The server's version string (recorded with every chaos case). */
export async function selectServerVersion(db: SqlExecutor): Promise<string> {
  const rows = await db.query<{ v: string }[]>('SELECT VERSION() AS v');
  return String(rows[0]?.v ?? 'unknown');
}

/** The server's version and the durability settings a result depends on, recorded with every result. */
export async function selectDurability(db: SqlExecutor): Promise<{ version: string; flushLogAtTrxCommit: number | undefined; syncBinlog: number | undefined; logBin: boolean | undefined }> {
  const rows = await db.query<Record<string, unknown>[]>(
    'SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f, @@sync_binlog AS s, @@log_bin AS b',
  );
  const r = rows[0] ?? {};
  const num = (x: unknown): number | undefined => (x === null || x === undefined ? undefined : Number(x));
  return {
    version: String(r.v ?? 'unknown'),
    flushLogAtTrxCommit: num(r.f),
    syncBinlog: num(r.s),
    logBin: r.b === null || r.b === undefined ? undefined : Number(r.b) === 1,
  };
}
