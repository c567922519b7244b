// Options that several commands share: where the database is, and failpoints.
import type { Options } from 'yargs';
import { readEnvironment } from '../config.ts';
import { armFailpoints, parseFailpointSpec, FAILPOINTS } from '../system/failpoints.ts';
import { parseMysqlUrl } from '../system/db/pool.ts';

export const mysqlUrlOption = {
  type: 'string',
  describe: 'database, e.g. mysql://root:PASSWORD@127.0.0.1:3307/eob (default: $MYSQL_URL; prefer that: a command line, password and all, is visible to every user in ps)',
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

/** The same for commands that need a database (server, worker, prune, poison): with neither, an error that says how to get one. */
export function resolveMysqlUrl(flag: string | undefined): string {
  const url = optionalMysqlUrl(flag);
  if (url === undefined) {
    throw new Error(
      'no database given: pass --mysql-url mysql://user@host:port/db or set MYSQL_URL (start a private one with `eob db start`)',
    );
  }
  return url;
}

/** Flag (repeatable) > EOB_FAILPOINTS. Returns the spec that was armed, for the start-up log line. */
export function armFailpointsFrom(flag: string | readonly string[] | undefined): string | undefined {
  const given = typeof flag === 'string' ? flag : flag?.join(',');
  const spec = given ?? readEnvironment().failpoints;
  if (spec !== undefined) armFailpoints(parseFailpointSpec(spec));
  return spec;
}
