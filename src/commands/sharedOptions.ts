// Options that several commands share: where the database is, and failpoints.
import type { Options } from 'yargs';
import { readEnvironment } from '../config.ts';
import { armFailpoints, parseFailpointSpec, FAILPOINTS } from '../system/failpoints.ts';
import { parseMysqlUrl } from '../system/db/mariadb/pool.ts';
import { parseDatabaseUrl, redactDatabaseUrl, type DatabaseUrl } from '../system/db/databaseUrl.ts';

export const mysqlUrlOption = {
  type: 'string',
  describe: 'database, e.g. mysql://root:PASSWORD@127.0.0.1:3307/eob (default: $MYSQL_URL; prefer that: a command line, password and all, is visible to every user in ps)',
} as const satisfies Options;

export const databaseUrlOption = {
  type: 'string',
  describe: 'database, mysql://root:PASSWORD@127.0.0.1:3307/eob (MariaDB/MySQL) or postgres://postgres:PASSWORD@127.0.0.1:5433/eob (PostgreSQL); the scheme picks the engine (default: $DATABASE_URL, then --mysql-url / $MYSQL_URL; prefer the environment: a command line is visible to every user in ps)',
} as const satisfies Options;

export const failpointOption = {
  type: 'string',
  describe: `crash (SIGKILL) on the Nth arrival at a named point: name=N[,name=N]; points: ${FAILPOINTS.join(', ')} (default: $EOB_FAILPOINTS)`,
} as const satisfies Options;

/**
 * The one resolution of the database URL: --mysql-url > MYSQL_URL, checked. Undefined when neither is given
 * (bench, chaos and micro then start a private database).
 */
export function optionalMysqlUrl(flag: string | undefined): string | undefined {
  const url = flag ?? readEnvironment().mysqlUrl;
  if (url !== undefined) parseMysqlUrl(url);
  return url;
}

/**
 * The database of the server and the worker, of either engine: --database-url > --mysql-url > DATABASE_URL >
 * MYSQL_URL, parsed here once into the typed value the process hands down (a scheme other than mysql:// or
 * postgres:// is an error that says which work). Two flags,
 * or two variables, naming different URLs is an error rather than a silent choice (a harness that sets
 * MYSQL_URL for its child must not be overridden by a DATABASE_URL the user exported).
 */
export function resolveDatabaseUrl(databaseFlag: string | undefined, mysqlFlag: string | undefined): DatabaseUrl {
  const url = optionalDatabaseUrl(databaseFlag, mysqlFlag);
  if (url === undefined) {
    throw new Error(
      'no database given: pass --database-url mysql://user@host:port/db (or postgres://user@host:port/db), or set DATABASE_URL (start a private one with `eob db start`)',
    );
  }
  return url;
}

/** The same resolution for commands that start a private database when none is given (bench, chaos). */
export function optionalDatabaseUrl(databaseFlag: string | undefined, mysqlFlag: string | undefined): DatabaseUrl | undefined {
  if (databaseFlag !== undefined && mysqlFlag !== undefined && databaseFlag !== mysqlFlag) {
    throw new Error(`--database-url (${redactDatabaseUrl(databaseFlag)}) and --mysql-url (${redactDatabaseUrl(mysqlFlag)}) name different databases; pass one`);
  }
  const env = readEnvironment();
  if (databaseFlag === undefined && mysqlFlag === undefined && env.databaseUrl !== undefined && env.mysqlUrl !== undefined && env.databaseUrl !== env.mysqlUrl) {
    throw new Error(`DATABASE_URL (${redactDatabaseUrl(env.databaseUrl)}) and MYSQL_URL (${redactDatabaseUrl(env.mysqlUrl)}) name different databases; unset one, or pass --database-url`);
  }
  const url = databaseFlag ?? mysqlFlag ?? env.databaseUrl ?? env.mysqlUrl;
  return url === undefined ? undefined : parseDatabaseUrl(url);
}

/** Flag (repeatable) > EOB_FAILPOINTS. Returns the spec that was armed, for the start-up log line. */
export function armFailpointsFrom(flag: string | readonly string[] | undefined): string | undefined {
  const given = typeof flag === 'string' ? flag : flag?.join(',');
  const spec = given ?? readEnvironment().failpoints;
  if (spec !== undefined) armFailpoints(parseFailpointSpec(spec));
  return spec;
}
