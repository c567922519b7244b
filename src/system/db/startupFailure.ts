// What went wrong when a process set up its database at start (db/waitForDatabase.ts), and the message that says
// so. Three kinds, because each calls for something else:
// - unreachable: the connection failed, or the server answered that it cannot serve yet (restarting, a Galera
//   node not in a primary component). Retried until the start-up deadline; "cannot reach" when no server
//   answered, "not ready" when one did.
// - race: another process was setting up the same database at the same moment (a duplicate catalog row, an
//   object that appeared after the existence check, a deadlock or lock timeout between creators). Retried until
//   the deadline: the next attempt finds what the other one created.
// - refused: the server answered a statement with any other error (a missing privilege, a bad password, a
//   syntax error) or the set-up itself failed. Fatal at once; the message names the statement and its SQLSTATE.
import type { EngineName } from '../sql/engine.ts';
import { classifyError } from './mariadb/errors.ts';
import { classifyPgError } from './postgres/errors.ts';
import { redactDatabaseUrl } from './urlRedaction.ts';

export type StartupFailureKind = 'unreachable' | 'race' | 'refused';

interface ServerErrorFields {
  code?: unknown;
  errno?: unknown;
  sqlState?: unknown;
  severity?: unknown;
  constraint?: unknown;
  where?: unknown;
  internalQuery?: unknown;
}

function fieldsOf(error: unknown): ServerErrorFields {
  return (typeof error === 'object' && error !== null ? error : {}) as ServerErrorFields;
}

/**
 * PostgreSQL: 42P07 duplicate_table, 42710 duplicate_object, 42P04 duplicate_database, and 23505 on a system
 * catalog's unique index (pg_type_typname_nsp_index, pg_database_datname_index: what a concurrent CREATE
 * raises). MariaDB: 1050 table exists, 1007 database exists (neither comes from IF NOT EXISTS, but a creator
 * that is not eob may use plain CREATE).
 */
function isDuplicateObject(engine: EngineName, e: ServerErrorFields): boolean {
  if (engine === 'postgres') {
    if (e.code === '42P07' || e.code === '42710' || e.code === '42P04') return true;
    return e.code === '23505' && typeof e.constraint === 'string' && e.constraint.startsWith('pg_');
  }
  return e.errno === 1050 || e.errno === 1007;
}

export function startupFailureKind(engine: EngineName, error: unknown): StartupFailureKind {
  // mysql2 marks every error of a connection's handshake fatal, which its classes count as a lost connection; a
  // refused login is the server's answer, and no retry changes it.
  if (isAccessDenied(engine, error)) return 'refused';
  const kind = engine === 'postgres' ? classifyPgError(error) : classifyError(error);
  // A Galera node outside a primary component (still joining, quorum lost) refuses with 1047 until it is back.
  if (kind === 'connection' || kind === 'server-restarting' || kind === 'not-ready') return 'unreachable';
  // Creators of the same objects can deadlock or time out on each other's locks; the next attempt finds them made.
  if (kind === 'deadlock' || kind === 'lock-wait-timeout') return 'race';
  return isDuplicateObject(engine, fieldsOf(error)) ? 'race' : 'refused';
}

/** The SQLSTATE the server sent: node-postgres's `code` on a server error, mysql2's `sqlState`. */
export function sqlStateOf(engine: EngineName, error: unknown): string | undefined {
  const e = fieldsOf(error);
  if (engine === 'postgres') return typeof e.severity === 'string' && typeof e.code === 'string' ? e.code : undefined;
  return typeof e.sqlState === 'string' ? e.sqlState : undefined;
}

/**
 * `SQLSTATE 42501: permission denied for schema public`; MariaDB adds its own code and number
 * (`SQLSTATE 42000 (ER_DBACCESS_DENIED_ERROR 1044): ...`); an error without a SQLSTATE (a socket error, the
 * set-up's own) shows its code, if any, and message.
 */
export function describeStartupError(engine: EngineName, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const e = fieldsOf(error);
  const state = sqlStateOf(engine, error);
  if (state === undefined) return typeof e.code === 'string' && !message.startsWith(e.code) ? `${e.code}: ${message}` : message;
  const native = engine === 'mariadb' && typeof e.code === 'string' ? ` (${e.code}${typeof e.errno === 'number' ? ` ${e.errno}` : ''})` : '';
  return `SQLSTATE ${state}${native}: ${message}`;
}

/** Statements are named by their head, up to the first parenthesized list: `CREATE TABLE IF NOT EXISTS "t"`. */
const MAX_STATEMENT_CHARS = 120;

/**
 * The statement to name for an error: PostgreSQL reports the one inside a DO block (sql/postgres/schemaLock.ts
 * wraps each CREATE in one) as `internalQuery` when it failed while being analysed (a missing privilege), and
 * in `where` when it failed while running (a duplicate key); otherwise the statement sent last.
 */
export function failedStatement(error: unknown, sent: string | undefined): string | undefined {
  const e = fieldsOf(error);
  const running = typeof e.where === 'string' ? /^SQL statement "([\s\S]*)"\nPL\/pgSQL/.exec(e.where)?.[1] : undefined;
  const sql = (typeof e.internalQuery === 'string' ? e.internalQuery : undefined) ?? running ?? sent;
  if (sql === undefined) return undefined;
  const flat = sql.replace(/\s+/g, ' ').trim();
  const head = flat.split(' (')[0] ?? flat;
  return head.length > MAX_STATEMENT_CHARS ? `${head.slice(0, MAX_STATEMENT_CHARS)}...` : head;
}

/**
 * An error whose cure is in the URL or in the user's grants: PostgreSQL's class 28 (invalid authorization) and
 * 42501 (insufficient privilege); MariaDB's access-denied errors (1044 database, 1045 login, 1142 table, 1227
 * privilege, 1698 login without a password).
 */
function isAccessDenied(engine: EngineName, error: unknown): boolean {
  const e = fieldsOf(error);
  if (engine === 'postgres') return typeof e.code === 'string' && (e.code.startsWith('28') || e.code === '42501');
  return e.errno === 1044 || e.errno === 1045 || e.errno === 1142 || e.errno === 1227 || e.errno === 1698;
}

export interface StartupFailure {
  engine: EngineName;
  url: string;
  kind: StartupFailureKind;
  error: unknown;
  /** The statement sent last before the error (undefined while connecting). */
  sent: string | undefined;
  /** Set when retries ran out: how long they went on. */
  gaveUpAfterMs: number | undefined;
}

/** The message a start-up that failed ends with: where, what, and what to do. */
export function startupFailureMessage(f: StartupFailure): string {
  const at = redactDatabaseUrl(f.url);
  const what = describeStartupError(f.engine, f.error);
  const statement = failedStatement(f.error, f.sent);
  const during = statement === undefined ? 'connecting' : `\`${statement}\``;
  const gaveUp = f.gaveUpAfterMs === undefined ? '' : `still failing after ${f.gaveUpAfterMs} ms: `;
  if (f.kind === 'unreachable' && sqlStateOf(f.engine, f.error) !== undefined) return `the database at ${at} is not ready: ${what} (${gaveUp}is it starting, restarting or out of its cluster?)`;
  if (f.kind === 'unreachable') {
    return `cannot reach the database at ${at}: ${what} (${gaveUp}is the server running? start one with \`eob db start\` (it prints the URL) or pass --database-url / DATABASE_URL of a running server)`;
  }
  if (f.kind === 'race') {
    return `setting up the database at ${at} kept meeting other processes setting up the same objects (${gaveUp}${during} failed with ${what})`;
  }
  if (sqlStateOf(f.engine, f.error) === undefined) return `cannot set up the database at ${at}: ${what}`;
  const hint = isAccessDenied(f.engine, f.error) ? '; check the user, password and privileges in the URL' : '';
  return `SQL error at start-up on the database at ${at}: ${during} failed with ${what}${hint}`;
}
