// The one query on information_schema.PROCESSLIST: which connections are inside a statement right now. The
// offset subscriber's gap proof uses it to wait out an offset allocator that has not yet registered its
// transaction as a writer (see gapTracker.ts).
import type { SqlExecutor } from '../../types.ts';
import type { RunningStatements } from '../gapProbes.ts';

/**
 * MariaDB's information_schema.PROCESSLIST is built live from the server's connection list on every read (no
 * cache, unlike INNODB_TRX), and QUERY_ID is the server-wide, never reused number of the statement a
 * connection is running (a new one for each statement and each statement of a stored program).
 *
 * Left out, because they never take an offset from the table's auto-increment counter:
 * - `Sleep`: between statements;
 * - `Binlog Dump`, `Slave_IO`: replication streams, no SQL;
 * - `Slave_SQL`, `Slave_worker`: replication appliers write the offsets the primary allocated (explicit
 *   values), which the gap proof does not cover anyway;
 * - `Daemon` with no statement text: the event scheduler's and other background threads while idle (an event
 *   that runs a statement shows its text and is kept).
 * The probe's own connection is left out too: it is between its own statements whenever it asks.
 * Without the PROCESS privilege this shows only the user's own connections, which would prove nothing: the
 * gap proof checks the privilege first (innodbTrx.ts, requireProcessPrivilege) and otherwise uses only its bound.
 */
export async function readRunningStatements(db: SqlExecutor): Promise<RunningStatements> {
  const rows = await db.query<{ id: string | number; query_id: string | number }[]>(
    "SELECT `ID` AS id, `QUERY_ID` AS query_id FROM information_schema.PROCESSLIST WHERE `ID` <> CONNECTION_ID() " +
      "AND `COMMAND` NOT IN ('Sleep', 'Binlog Dump', 'Slave_IO', 'Slave_SQL', 'Slave_worker') " +
      "AND NOT (`COMMAND` = 'Daemon' AND `INFO` IS NULL)",
  );
  return new Map(rows.map((r) => [String(r.id), String(r.query_id)]));
}

/**
 * Whether this server is a replica applying another server's changes now: a replication SQL thread (or a parallel
 * applier's worker) is listed. Its rows carry offsets the primary allocated, and arrive in the primary's commit
 * order, which is not offset order: a hole here may be filled by a transaction still open on the primary, which no
 * read of this server can see. (A replica whose applier is stopped lists none; its relay log is applied when it
 * starts again: named in gapTracker.ts, not covered.)
 */
export async function readReplicationApplying(db: SqlExecutor): Promise<boolean> {
  const rows = await db.query<{ n: number | string }[]>(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE `COMMAND` IN ('Slave_SQL', 'Slave_worker')",
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

/** Every session the server sees, with the client's `host:port` (the conn-kill fault picks the worker's by port). */
export async function selectSessionHosts(db: SqlExecutor): Promise<{ id: number; host: string }[]> {
  const rows = await db.query<{ ID: number; HOST: string | null }[]>('SELECT `ID`, `HOST` FROM information_schema.PROCESSLIST');
  return rows.map((r) => ({ id: Number(r.ID), host: r.HOST ?? '' }));
}

/** Ends a session at once (its open transaction rolls back); false when it had already ended. */
export async function killSession(db: SqlExecutor, id: number): Promise<boolean> {
  try {
    await db.query(`KILL CONNECTION ${Number(id)}`);
    return true;
  } catch {
    return false;
  }
}
