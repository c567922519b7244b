// Which database errors a consume or publish loop may retry, and which it must raise.

import type { ErrorClass } from '../database.ts';

export type { ErrorClass };

interface DriverError {
  code?: string;
  errno?: number;
  fatal?: boolean;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOENT', // socket file gone while the server restarts
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'POOL_CLOSED',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_SERVER_SHUTDOWN',
  'ER_NET_READ_ERROR',
  'ER_NET_ERROR_ON_WRITE',
]);

/**
 * 1213 deadlock and 1205 lock wait timeout roll the transaction back (1205 only the statement, which is why
 * callers roll back explicitly); on a Galera node 1213 is also a certification conflict: another node's
 * transaction on the same rows was ordered first, and this one was rolled back. 2006/2013 and the socket errors
 * mean the session is gone; 1053 and 1927 (connection killed) come from a server shutting down or `KILL
 * CONNECTION`. 1047 (WSREP has not yet prepared node for application use): a Galera node that is not a synced
 * member of a primary component (quorum lost, cut off, still joining) refused the statement before running it;
 * it passes once the node is back.
 */
export function classifyError(error: unknown): ErrorClass {
  const e = (typeof error === 'object' && error !== null ? error : {}) as DriverError;
  if (e.errno === 1213 || e.code === 'ER_LOCK_DEADLOCK') return 'deadlock';
  if (e.errno === 1047) return 'not-ready';
  // 1180, an error during COMMIT (on a Galera node: "provider status: Not connected to Primary Component", the
  // node left the component while committing): the session lives, but whether the commit took effect elsewhere
  // is not known, so it is treated like a lost connection: the publish is unknown, the consume transaction is
  // read again from the group's acked offset.
  if (e.errno === 1180) return 'connection';
  if (e.errno === 1205 || e.code === 'ER_LOCK_WAIT_TIMEOUT') return 'lock-wait-timeout';
  if (e.errno === 1053 || e.errno === 1927 || e.errno === 1077 || e.code === 'ER_SERVER_SHUTDOWN') {
    return 'server-restarting';
  }
  if (e.code !== undefined && CONNECTION_CODES.has(e.code)) return 'connection';
  if (e.errno === 2006 || e.errno === 2013 || e.errno === 1152 || e.errno === 1158 || e.errno === 1159) {
    return 'connection';
  }
  if (e.fatal === true) return 'connection';
  return 'fatal';
}

/** True for an error the database or the driver raised (it carries an errno, a SQL state, or a driver code). */
export function isDatabaseError(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as DriverError & { sqlState?: string };
  return typeof e.errno === 'number' || typeof e.sqlState === 'string' || classifyError(error) !== 'fatal';
}

export function isRetryable(error: unknown): boolean {
  return classifyError(error) !== 'fatal';
}
