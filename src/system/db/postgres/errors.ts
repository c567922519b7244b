// Which PostgreSQL errors a consume or publish loop may retry, and which it must raise. node-postgres puts the
// server's SQLSTATE in `code` (five characters); socket errors carry Node's errno codes instead.
//
// The classes are the MariaDB side's, so one retry policy serves both engines:
// - deadlock: 40001 serialization_failure (REPEATABLE READ / SERIALIZABLE conflicts, e.g. FOR UPDATE on the
//   offsets row after another consumer acked) and 40P01 deadlock_detected; the transaction is rolled back.
// - lock-wait-timeout: 55P03 lock_not_available (lock_timeout, NOWAIT) and 57014 query_canceled
//   (statement_timeout); only the statement failed, so callers roll back themselves.
// - server-restarting: 57P01 admin_shutdown (fast shutdown, pg_terminate_backend), 57P02 crash_shutdown (another
//   backend crashed, or the server was killed), 57P03 cannot_connect_now (starting up, recovering).
// - connection: class 08 (connection exceptions), and the socket errors of a server that went away.
// - fatal: everything else (a syntax error, a constraint violation, a bad password: retrying will not help).

export type PgErrorClass = 'deadlock' | 'lock-wait-timeout' | 'connection' | 'server-restarting' | 'fatal';

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOENT']);

// node-postgres raises plain Errors without a code for these (the socket closed under a query or a connect).
const CONNECTION_MESSAGES = [
  /Connection terminated/i,
  /Client has encountered a connection error/i,
  /timeout expired/i,
  /Client was closed and is not queryable/i,
  /Cannot use a pool after calling end/i,
];

export function classifyPgError(error: unknown): PgErrorClass {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code === '40001' || code === '40P01') return 'deadlock';
  if (code === '55P03' || code === '57014') return 'lock-wait-timeout';
  if (code === '57P01' || code === '57P02' || code === '57P03') return 'server-restarting';
  if (code !== undefined && code.startsWith('08')) return 'connection';
  if (code !== undefined && SOCKET_CODES.has(code)) return 'connection';
  if (code === undefined && typeof e.message === 'string' && CONNECTION_MESSAGES.some((re) => re.test(e.message as string))) return 'connection';
  return 'fatal';
}

export function isRetryablePgError(error: unknown): boolean {
  return classifyPgError(error) !== 'fatal';
}

/** `SQLSTATE: message`, e.g. `40001: could not serialize access due to concurrent update`. */
export function describePgError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
