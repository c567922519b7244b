// The one read of the primary's semi-synchronous replication state that the gap bound needs: how many commits
// wait now for a replica's acknowledgement (see commitsAwaitingReplica in ../gapProbes.ts).
import type { SqlExecutor } from '../../types.ts';

/**
 * Commits waiting now for a replica's semi-sync acknowledgement (Rpl_semi_sync_master_wait_sessions: a status
 * variable, readable without the PROCESS privilege; 0 where semi-sync is off). Under AFTER_SYNC such a commit
 * is in the binary log but not yet visible in the table, and with no fallback to asynchronous replication it
 * waits as long as the replica is away.
 */
export async function readSemiSyncCommitWaits(db: SqlExecutor): Promise<number> {
  const rows = await db.query<{ n: number | string | null }[]>(
    "SELECT VARIABLE_VALUE AS n FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS'",
  );
  return Number(rows[0]?.n ?? 0);
}
