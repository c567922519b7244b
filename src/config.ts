// The only module that reads process.env. Precedence everywhere: defaults < environment < command-line flags.
// Components receive typed options objects built here or by the CLI; they never look at the environment.

export interface Environment {
  /** MYSQL_URL: use this server instead of starting a private one. */
  mysqlUrl: string | undefined;
  /** DATABASE_URL: the server and worker's database, mysql:// or postgres:// (preferred over MYSQL_URL). */
  databaseUrl: string | undefined;
  /** EOB_FAILPOINTS: `name=N,...`, armed in server and worker processes (see src/system/failpoints.ts). */
  failpoints: string | undefined;
  /** CI or a non-terminal stdout: progress bars stay quiet. */
  ci: boolean;
  /** EOB_LOG=quiet silences the one-line logs of server and worker (the harness sets it for children). */
  quiet: boolean;
  /** EOB_MARIADB_BIN_DIR: where to look for mariadbd / mariadb-install-db first. */
  mariadbBinDir: string | undefined;
  /** EOB_POSTGRES_BIN_DIR: the directory holding initdb and postgres (default: the newest /usr/lib/postgresql/<version>/bin). */
  postgresBinDir: string | undefined;
  /** EOB_GALERA_PROVIDER: Galera's provider library (default: galera-4's libgalera_smm.so where Debian puts it). */
  galeraProvider: string | undefined;
  /** PATH, split: where else the managed database looks for mariadbd / mysqld. */
  searchPath: string[];
  /** DOCKER_HOST's unix socket path (unix:///path), for the docker backend; undefined when unset or not a socket. */
  dockerSocket: string | undefined;
  /** E2E_NODE_ARGS, split at spaces: node flags scripts/e2eCpu.ts gives every server and worker it starts. */
  e2eNodeArgs: string[];
  /** E2E_NO_CEILING=1: scripts/e2eCpu.ts measures no HTTP ceilings. */
  e2eNoCeiling: boolean;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
  return {
    mysqlUrl: nonEmpty(env.MYSQL_URL),
    databaseUrl: nonEmpty(env.DATABASE_URL),
    failpoints: nonEmpty(env.EOB_FAILPOINTS),
    ci: nonEmpty(env.CI) !== undefined && env.CI !== 'false' && env.CI !== '0',
    quiet: env.EOB_LOG === 'quiet',
    mariadbBinDir: nonEmpty(env.EOB_MARIADB_BIN_DIR),
    postgresBinDir: nonEmpty(env.EOB_POSTGRES_BIN_DIR),
    galeraProvider: nonEmpty(env.EOB_GALERA_PROVIDER),
    searchPath: (env.PATH ?? '').split(':').filter((dir) => dir !== ''),
    dockerSocket: nonEmpty(env.DOCKER_HOST)?.startsWith('unix://') === true ? nonEmpty(env.DOCKER_HOST)?.slice('unix://'.length) : undefined,
    e2eNodeArgs: (env.E2E_NODE_ARGS ?? '').split(' ').filter((word) => word !== ''),
    e2eNoCeiling: env.E2E_NO_CEILING === '1',
  };
}

/** Resolves defaults < environment < flags for one options object; undefined means "not given". */
export function resolve<T extends object>(defaults: T, ...layers: Partial<T>[]): T {
  const result = { ...defaults };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer) as [keyof T, T[keyof T] | undefined][]) {
      if (value !== undefined) result[key] = value;
    }
  }
  return result;
}

/**
 * The environment for a child process the harness starts (server, worker): this process's environment with
 * `overrides` applied; an override of `undefined` removes the variable (e.g. EOB_FAILPOINTS, so a failpoint
 * armed for the harness never fires in a child by accident).
 */
export function childEnvironment(
  overrides: Readonly<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) result[key] = value;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[key];
    else result[key] = value;
  }
  return result;
}

/**
 * The environment of a program that is to see nothing of this process's environment but PATH (PostgreSQL's
 * initdb and server): PATH as this process has it (/usr/bin:/bin when unset), with `extra` added.
 */
export function pathOnlyEnvironment(
  extra: Readonly<Record<string, string>> = {},
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  return { PATH: env.PATH ?? '/usr/bin:/bin', ...extra };
}
