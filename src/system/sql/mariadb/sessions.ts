// Statements about the connection itself rather than a table.
import type { SqlExecutor } from '../../types.ts';

/**
 * The cheapest statement that proves the server answers and may serve (the HTTP server's /healthz). A Galera
 * node outside the primary component still answers `SELECT 1` (a statement without tables passes wsrep's
 * check) while it refuses every read and write of a table with 1047; so where wsrep is on, the node's
 * wsrep_ready must be ON too, and otherwise the ping fails with that same error number. `@@wsrep_on` is one
 * variable read on any MariaDB; a server without the variable (MySQL: 1193) is not a cluster node.
 */
export async function ping(db: SqlExecutor): Promise<void> {
  let wsrepOn: unknown;
  try {
    [{ wsrep_on: wsrepOn } = { wsrep_on: 0 }] = await db.query<{ wsrep_on: unknown }[]>('SELECT @@wsrep_on AS wsrep_on');
  } catch (error) {
    if ((error as { errno?: number }).errno === 1193) return;
    throw error;
  }
  if (Number(wsrepOn) !== 1) return;
  const [row] = await db.query<{ Value: string }[]>("SHOW STATUS LIKE 'wsrep_ready'");
  if (row?.Value?.toUpperCase() !== 'ON') {
    throw Object.assign(new Error('WSREP has not yet prepared node for application use (wsrep_ready is OFF)'), { errno: 1047, code: 'ER_UNKNOWN_COM_ERROR', sqlState: '08S01' });
  }
}
