// Statements about the connection itself rather than a table.
import type { SqlExecutor } from '../../pubsub/types.ts';

/** The cheapest statement that proves the server answers (the HTTP server's /healthz). */
export async function ping(db: SqlExecutor): Promise<void> {
  await db.query('SELECT 1');
}
