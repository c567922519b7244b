// SQL on PostgreSQL's sessions (pg_stat_activity): which sessions a process of this tool holds, and ending
// them, for the chaos harness's connection-kill fault. Pools name their sessions `eob-<role>` (application_name,
// see db/postgres/pool.ts), so a fault can end exactly one role's connections.
import type { SqlExecutor } from '../../types.ts';

/** Backend pids of the sessions named `applicationName` in this database, the caller's own excluded. */
export async function selectPgSessionPids(db: SqlExecutor, applicationName: string): Promise<number[]> {
  const rows = await db.query<{ pid: number }[]>(
    `SELECT "pid" FROM pg_stat_activity
     WHERE "application_name" = $1 AND "datname" = current_database() AND "pid" <> pg_backend_pid()`,
    [applicationName],
  );
  return rows.map((r) => Number(r.pid));
}

/**
 * Ends every session named `applicationName` (pg_terminate_backend: the backend rolls back its transaction
 * and exits; its client sees 57P01 admin_shutdown or a closed socket). Returns how many were ended. Needs
 * superuser or pg_signal_backend; the private server's URL logs in as the superuser.
 */
export async function terminatePgSessions(db: SqlExecutor, applicationName: string): Promise<number> {
  const rows = await db.query<{ ended: boolean }[]>(
    `SELECT pg_terminate_backend("pid") AS "ended" FROM pg_stat_activity
     WHERE "application_name" = $1 AND "datname" = current_database() AND "pid" <> pg_backend_pid()`,
    [applicationName],
  );
  return rows.filter((r) => r.ended).length;
}

/** The server's version string, e.g. `15.20 (Debian 15.20-0+deb12u1)`, for results. */
export async function selectPgServerVersion(db: SqlExecutor): Promise<string> {
  const rows = await db.query<{ version: string }[]>(`SELECT current_setting('server_version') AS "version"`);
  return String(rows[0]?.version ?? '');
}

/** The pid of the server process (backend) serving this session, so a harness can read that process's CPU. */
export async function selectPgBackendPid(db: SqlExecutor): Promise<number> {
  const rows = await db.query<{ pid: number }[]>('SELECT pg_backend_pid() AS "pid"');
  return Number(rows[0]?.pid);
}
