// One URL for either engine (--database-url, DATABASE_URL; --mysql-url and MYSQL_URL too), checked once: a
// command parses it at its start into a DatabaseUrl (the engine its scheme names, what the driver connects
// with, the form safe to show) and hands that value down, so nothing below parses or checks it again. Errors
// never show the password; urlRedaction.ts is the one redaction.
import type { EngineName } from '../sql/engine.ts';
import { parseMysqlUrl, type MysqlUrl } from './mariadb/mysqlUrl.ts';
import { redactDatabaseUrl } from './urlRedaction.ts';

export { redactDatabaseUrl, redactDatabaseUrlsDeep, redactDatabaseUrlsIn } from './urlRedaction.ts';

/** A database URL checked once: which engine, what its driver connects with, and how to show it. */
export type DatabaseUrl =
  | { readonly engine: 'mariadb'; readonly url: string; readonly redacted: string; readonly connection: MysqlUrl }
  | { readonly engine: 'postgres'; readonly url: string; readonly redacted: string; readonly connection: { readonly database: string } };

/**
 * The engine a database URL names: mysql:// and mariadb:// are MariaDB (or MySQL), postgres:// and
 * postgresql:// PostgreSQL. Anything else is an error that says which schemes work.
 */
export function engineNameOfUrl(url: string): EngineName {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url.trim())?.[1]?.toLowerCase();
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mariadb';
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  throw new Error(
    `database URL must start with mysql:// (MariaDB/MySQL) or postgres:// (PostgreSQL; postgresql:// too); got ${scheme === undefined ? 'a string with no scheme (not shown: it may hold a password)' : `"${scheme}://"`}`,
  );
}

/** Checks a postgres:// URL: parseable, a database name of letters, digits and _. */
export function parsePostgresUrl(url: string): { database: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `database URL is not a URL: "${redactDatabaseUrl(url)}" (expected postgres://user:password@host:port/database; percent-encode @ : / ? # in the password)`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || !/^[A-Za-z0-9_]+$/.test(database)) {
    throw new Error(`database URL must name a database made of letters, digits and _ (got "${database}" in ${redactDatabaseUrl(url)})`);
  }
  return { database };
}

/** Parses and checks a URL of either engine, once. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  const redacted = redactDatabaseUrl(url);
  if (engineNameOfUrl(url) === 'mariadb') return { engine: 'mariadb', url, redacted, connection: parseMysqlUrl(url) };
  return { engine: 'postgres', url, redacted, connection: parsePostgresUrl(url) };
}

/** A URL parsed before, as it is; a string (a test's, a harness's), parsed now. */
export function databaseUrlOf(url: string | DatabaseUrl): DatabaseUrl {
  return typeof url === 'string' ? parseDatabaseUrl(url) : url;
}

/** Checks a URL of either engine; returns its engine. */
export function checkDatabaseUrl(url: string): EngineName {
  return parseDatabaseUrl(url).engine;
}
