// One URL for either engine (--database-url, DATABASE_URL; --mysql-url and MYSQL_URL too): which engine its
// scheme names, and the check that it can be used, with errors that never show the password. Redaction is
// mysqlUrl.ts's, which covers postgres:// URLs as well.
import type { EngineName } from '../sql/engine.ts';
import { parseMysqlUrl, redactMysqlUrl } from './mysqlUrl.ts';

export { redactMysqlUrl as redactDatabaseUrl, redactMysqlUrlsIn as redactDatabaseUrlsIn } from './mysqlUrl.ts';

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
      `database URL is not a URL: "${redactMysqlUrl(url)}" (expected postgres://user:password@host:port/database; percent-encode @ : / ? # in the password)`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || !/^[A-Za-z0-9_]+$/.test(database)) {
    throw new Error(`database URL must name a database made of letters, digits and _ (got "${database}" in ${redactMysqlUrl(url)})`);
  }
  return { database };
}

/** Checks a URL of either engine; returns its engine. */
export function checkDatabaseUrl(url: string): EngineName {
  const engine = engineNameOfUrl(url);
  if (engine === 'mariadb') parseMysqlUrl(url);
  else parsePostgresUrl(url);
  return engine;
}
