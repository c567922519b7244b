// Which database engines a harness run uses: the `--engine` choice of `eob db`, `eob bench` and `eob chaos`
// (mariadb, postgres, or all = both, one after the other in one run), checked here once for every command.
import { ENGINE_NAMES, type EngineName, type SqlEngine } from '../system/sql/engine.ts';
import { mariadbEngine } from '../system/sql/mariadb/engine.ts';
import { postgresEngine } from '../system/sql/postgres/engine.ts';
import { engineNameOfUrl } from '../system/db/databaseUrl.ts';
import { OptionsError } from '../validate.ts';

export type { EngineName };
/** In the order `all` runs them: MariaDB first, the engine every earlier result was measured on. */
export { ENGINE_NAMES };

export type EngineChoice = EngineName | 'all';
export const ENGINE_CHOICES: readonly EngineChoice[] = [...ENGINE_NAMES, 'all'];

export function isEngineName(value: unknown): value is EngineName {
  return typeof value === 'string' && (ENGINE_NAMES as readonly string[]).includes(value);
}

/**
 * The engines `value` names, in run order. `allowAll` is false where one server is started (`eob db start`).
 * Case and surrounding spaces are forgiven (ENGINE=Postgres from a Makefile); anything else is an error that
 * names the accepted values.
 */
export function parseEngineChoice(component: string, value: unknown, allowAll = true): EngineName[] {
  const text = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (isEngineName(text)) return [text];
  if (allowAll && text === 'all') return [...ENGINE_NAMES];
  const accepted = allowAll ? ENGINE_CHOICES : ENGINE_NAMES;
  throw new OptionsError(`${component}: --engine must be one of ${accepted.join(', ')} (got ${JSON.stringify(value)})`);
}

/** The engine a database URL speaks, by the system's scheme rule; undefined for a scheme neither engine takes. */
export function engineOfUrl(url: string): EngineName | undefined {
  try {
    return engineNameOfUrl(url);
  } catch {
    return undefined;
  }
}

/**
 * The engines of a bench or chaos run from --engine and a given database URL (MYSQL_URL / DATABASE_URL):
 * without --engine, the URL's engine (MariaDB when there is none); with both, they must agree, and `all`
 * (two private servers) cannot be combined with one given server.
 */
export function resolveRunEngines(component: string, flag: string | undefined, url: string | undefined): EngineName[] {
  const urlEngine = url === undefined ? undefined : engineOfUrl(url);
  if (flag === undefined) return [urlEngine ?? 'mariadb'];
  const engines = parseEngineChoice(component, flag);
  if (url !== undefined) {
    if (engines.length > 1) {
      throw new OptionsError(`${component}: --engine all starts a private server of each engine, but a database URL was given (MYSQL_URL / DATABASE_URL); unset it, or pick the URL's engine`);
    }
    if (urlEngine !== undefined && urlEngine !== engines[0]) {
      throw new OptionsError(`${component}: --engine ${engines[0]} but the given database URL is a ${urlEngine} URL; unset the URL to use a private ${engines[0]} server`);
    }
  }
  return engines;
}

/** The engine seam's implementation for `name`: the SQL the harness's reads go through. */
export function sqlEngineFor(name: EngineName): SqlEngine {
  return name === 'postgres' ? postgresEngine : mariadbEngine;
}
