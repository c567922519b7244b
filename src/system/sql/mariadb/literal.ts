// Values written into MariaDB statement text instead of placeholders, for the worker's multi-row counter upsert,
// whose values are validated uuids and integers: the driver's placeholder formatting scans the whole statement
// and escapes each value (in a --cpu-prof of the server under POST /count load, when its INSERT was written
// this way too, ~5% of its CPU went there; see docs/tuning.md). Text from clients (request ids)
// never comes here: the messages INSERT binds its values (messagesTable.ts, writeMessages).
import mysql from 'mysql2';

/**
 * A string as an SQL literal. Strings with no quote and no backslash (every validated uuid) go in between quotes
 * as they are: correct with and without NO_BACKSLASH_ESCAPES; anything else is escaped by the driver, as a
 * placeholder value would be, which assumes backslash escapes.
 */
export function stringLiteral(value: string): string {
  return /['\\]/.test(value) ? mysql.escape(value) : `'${value}'`;
}

/** An integer as an SQL literal; anything else is a caller's bug, refused rather than written into SQL. */
export function integerLiteral(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not a safe integer for an SQL literal: ${String(value)}`);
  return String(value);
}
