// Starts a primary/replica pair of private servers of the engine asked for: the one place that knows which
// launcher implements the ReplicaPair contract for each engine (SystemUnderTest and `eob db start --topology
// primary-replica` start pairs through it).
import type { EngineName } from '../engines.ts';
import { MariadbReplicaPair } from '../mariadb/mariadbReplicaPair.ts';
import { startPostgresReplicaPair, type PostgresReplicationLevel } from '../postgres/postgresReplicaPair.ts';
import { OptionsError } from '../../validate.ts';
import { LEVELS_OF_ENGINE, type ReplicaPair, type ReplicationLevel } from './replicaPair.ts';

export interface ReplicaPairStartOptions {
  engine: EngineName;
  level: ReplicationLevel;
  /** The two servers' data directories (primary, replica), fresh directories of the caller's. */
  nodeDatadirs: readonly string[] | undefined;
  /** Parent of the nodes' data directories when nodeDatadirs is not given. */
  datadir: string | undefined;
  /** Client ports (primary first); missing ones are picked free. */
  ports: readonly number[] | undefined;
  database: string;
  mariadbBinDir: string | undefined;
  postgresBinDir: string | undefined;
  searchPath: readonly string[];
  /**
   * MariaDB semi-sync only: after this long without a replica's acknowledgement the primary goes on alone
   * (rpl_semi_sync_master_timeout); undefined never does (see mariadbReplicaPair.ts).
   */
  semiSyncTimeoutMs: number | undefined;
  log: (line: string) => void;
}

type Factory = (o: ReplicaPairStartOptions) => Promise<ReplicaPair>;

const FACTORIES: Readonly<Record<EngineName, Factory | undefined>> = {
  mariadb: (o) =>
    MariadbReplicaPair.create({
      level: o.level,
      nodeDatadirs: o.nodeDatadirs,
      datadir: o.datadir,
      ports: o.ports,
      database: o.database,
      semiSyncTimeoutMs: o.semiSyncTimeoutMs,
      binDir: o.mariadbBinDir,
      searchPath: o.searchPath,
      log: o.log,
    }),
  postgres: (o) =>
    startPostgresReplicaPair({
      level: postgresLevel(o.level),
      nodeDatadirs: o.nodeDatadirs,
      datadir: o.datadir,
      ports: o.ports,
      database: o.database,
      binDir: o.postgresBinDir,
      log: o.log,
    }),
};

function postgresLevel(level: ReplicationLevel): PostgresReplicationLevel {
  if (level === 'semi-sync') throw new OptionsError(`replica pair: semi-sync is MariaDB's; PostgreSQL offers ${LEVELS_OF_ENGINE.postgres.join(', ')}`);
  return level;
}

/** The level a pair of `engine` runs when none is asked for: the synchronous one, the level that keeps a 204's promise. */
export function defaultReplicationLevel(engine: EngineName): ReplicationLevel {
  return engine === 'postgres' ? 'sync' : 'semi-sync';
}

/** An error naming the levels `engine` offers when `level` is not one of them. */
export function checkReplicationLevel(component: string, engine: EngineName, level: unknown): ReplicationLevel {
  const levels = LEVELS_OF_ENGINE[engine];
  if (typeof level !== 'string' || !(levels as readonly string[]).includes(level)) {
    throw new OptionsError(`${component}: replication must be one of ${levels.join(', ')} on ${engine} (got ${JSON.stringify(level)})`);
  }
  return level as ReplicationLevel;
}

/** The launcher of `engine`'s pairs, or the error that says it has none (checked by commands before a run starts). */
export function requireReplicaPairFactory(engine: EngineName): Factory {
  const factory = FACTORIES[engine];
  if (factory === undefined) throw new OptionsError(`primary-replica on ${engine} is not available yet; use --engine mariadb`);
  return factory;
}

export async function startReplicaPair(o: ReplicaPairStartOptions): Promise<ReplicaPair> {
  checkReplicationLevel('replica pair', o.engine, o.level);
  return requireReplicaPairFactory(o.engine)(o);
}
