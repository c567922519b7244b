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

/** Flag > MYSQL_URL; with neither, an error that says how to get a database. */
export function resolveMysqlUrl(flag: string | undefined): string {
  const url = flag ?? readEnvironment().mysqlUrl;
  if (url === undefined) {
    throw new Error(
      'no database given: pass --mysql-url mysql://user@host:port/db or set MYSQL_URL (start a private one with `eob db start`)',
    );
  }
  parseMysqlUrl(url);
  return url;
}

/** Flag (repeatable) > EOB_FAILPOINTS. Returns the spec that was armed, for the start-up log line. */
export function armFailpointsFrom(flag: string | readonly string[] | undefined): string | undefined {
  const given = typeof flag === 'string' ? flag : flag?.join(',');
  const spec = given ?? readEnvironment().failpoints;
  if (spec !== undefined) armFailpoints(parseFailpointSpec(spec));
  return spec;
}
