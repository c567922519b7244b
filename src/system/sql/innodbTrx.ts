// The one query on information_schema.INNODB_TRX: which InnoDB transactions are open right now. The offset
// subscriber uses it to prove that a gap in the offsets is permanent (DESIGN 4.1, contiguity).
import type { SqlExecutor } from '../pubsub/types.ts';

/**
 * InnoDB serves INNODB_TRX from a cache that is refreshed when read and older than 100 ms
 * (TRX_I_S_CACHE_MIN_TIME), so a read may show the state of up to 100 ms ago. Callers that need a snapshot
 * taken after time T read at T + INNODB_TRX_CACHE_MS or later.
 */
export const INNODB_TRX_CACHE_MS = 100;

/** Ids of open transactions other than this session's own. Needs the PROCESS privilege. */
export async function selectOpenTransactionIds(db: SqlExecutor): Promise<Set<string>> {
  const rows = await db.query<{ trx_id: string | number }[]>(
    'SELECT `trx_id` FROM information_schema.INNODB_TRX WHERE `trx_mysql_thread_id` <> CONNECTION_ID()',
  );
  return new Set(rows.map((r) => String(r.trx_id)));
}
