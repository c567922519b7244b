// `eob bench`: the throughput sweep. Profiles quick / standard / full; every grid field can be
// overridden with a comma-separated list.
import type { CommandModule } from 'yargs';
import { readEnvironment } from '../config.ts';
import { databaseUrlOption, optionalDatabaseUrl } from './sharedOptions.ts';
import { resolveRunEngines } from '../harness/engines.ts';
import { TOPOLOGIES, type Topology } from '../harness/systemUnderTest.ts';
import { REPLICATION_LEVELS, type ReplicationLevel } from '../harness/replication/replicaPair.ts';
import { checkReplicationLevel, requireReplicaPairFactory } from '../harness/replication/startReplicaPair.ts';
import { parseIsolationLevel, type IsolationLevel, type AckMode } from '../system/pubsub/types.ts';
import { OptionsError } from '../validate.ts';
import { profileOptions, validateSweepOptions, BENCH_PROFILES, type BenchProfile, type SweepOptions } from '../scenarios/throughput/sweepOptions.ts';
import type { HandlerName } from '../system/counterHandler.ts';
import { runBench } from '../scenarios/throughput/runBench.ts';
import { projectRoot } from '../projectRoot.ts';
import path from 'node:path';
import type { TopicMode } from '../system/pubsub/types.ts';
import { parsePeerSpecs } from '../bench/peers/peerSpec.ts';

interface BenchArgs {
  profile: string;
  engine?: string;
  'database-url'?: string;
  'mysql-url'?: string;
  'batch-sizes'?: string;
  isolation?: string;
  modes?: string;
  'queue-workers'?: string;
  handlers?: string;
  /** Deprecated alias of --handlers ("profile" now means only the run size). */
  profiles?: string;
  'poll-intervals'?: string;
  coalesce?: string;
  'ack-modes'?: string;
  repetitions?: number;
  backlog?: number;
  counters?: number;
  'drain-timeout-s'?: number;
  'drain-rounds'?: number;
  'duration-s'?: number;
  connections?: string;
  rate?: number;
  only?: string;
  peers?: string;
  'peer-window-s'?: number;
  'worker-failpoint'?: string;
  'results-dir'?: string;
}

const list = (text: string | undefined): string[] | undefined =>
  text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter((s) => s !== '');

function numbers(field: string, text: string | undefined): number[] | undefined {
  return list(text)?.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new OptionsError(`bench: --${field} must be whole numbers separated by commas (got "${s}" in "${text}")`);
    return n;
  });
}

const POINT_KINDS = ['http-ceiling', 'sql-ceiling', 'baseline', 'drain', 'peer', 'end-to-end'] as const;

/** Profile defaults < flags. Exported for tests. */
export function sweepOptionsFromArgs(args: BenchArgs): SweepOptions {
  if (!(BENCH_PROFILES as readonly string[]).includes(args.profile)) {
    throw new OptionsError(`bench: --profile must be one of ${BENCH_PROFILES.join(', ')} (got "${args.profile}")`);
  }
  const o = profileOptions(args.profile as BenchProfile);
  const g = o.grid;
  g.batchSizes = numbers('batch-sizes', args['batch-sizes']) ?? g.batchSizes;
  const isolations = list(args.isolation)?.map((s) => {
    const level = parseIsolationLevel(s);
    if (level === undefined) throw new OptionsError(`bench: --isolation "${s}" is not one of READ-UNCOMMITTED, READ-COMMITTED, REPEATABLE-READ, SERIALIZABLE`);
    return level;
  });
  if (isolations !== undefined) {
    g.isolations = isolations;
    g.queueIsolations = isolations as (IsolationLevel | undefined)[];
  }
  g.modes = (list(args.modes) as TopicMode[] | undefined) ?? g.modes;
  g.queueWorkers = numbers('queue-workers', args['queue-workers']) ?? g.queueWorkers;
  if (args.profiles !== undefined && args.handlers !== undefined && args.profiles !== args.handlers) {
    throw new OptionsError(`bench: --handlers ${args.handlers} and --profiles ${args.profiles} disagree: --profiles is the old name of --handlers; give only --handlers`);
  }
  g.handlers = (list(args.handlers ?? args.profiles) as HandlerName[] | undefined) ?? g.handlers;
  g.pollIntervals = numbers('poll-intervals', args['poll-intervals']) ?? g.pollIntervals;
  g.coalesce =
    list(args.coalesce)?.map((s) => {
      if (s === 'on' || s === 'true') return true;
      if (s === 'off' || s === 'false') return false;
      throw new OptionsError(`bench: --coalesce takes on,off (got "${s}")`);
    }) ?? g.coalesce;
  g.ackModes = (list(args['ack-modes']) as AckMode[] | undefined) ?? g.ackModes;
  g.repetitions = args.repetitions ?? g.repetitions;
  if (args.backlog !== undefined) o.backlogMessages = args.backlog;
  if (args.counters !== undefined) o.counters = args.counters;
  if (args['drain-timeout-s'] !== undefined) o.drainTimeoutS = args['drain-timeout-s'];
  if (args['drain-rounds'] !== undefined) o.drainRounds = args['drain-rounds'];
  if (args['duration-s'] !== undefined) o.endToEndDurationS = args['duration-s'];
  o.endToEndConnections = numbers('connections', args.connections) ?? o.endToEndConnections;
  if (args.rate !== undefined) o.endToEndRate = args.rate;
  if (args['worker-failpoint'] !== undefined) o.workerFailpoints = list(args['worker-failpoint']) ?? [];
  if (args.peers !== undefined) o.peers = parsePeerSpecs('bench', args.peers);
  if (args['peer-window-s'] !== undefined) o.peerWindowS = args['peer-window-s'];
  const only = list(args.only);
  if (only !== undefined) {
    for (const k of only) {
      if (!(POINT_KINDS as readonly string[]).includes(k)) throw new OptionsError(`bench: --only takes ${POINT_KINDS.join(', ')} (got "${k}")`);
    }
    o.include = {
      httpCeiling: only.includes('http-ceiling'),
      sqlCeiling: only.includes('sql-ceiling'),
      baseline: only.includes('baseline'),
      drain: only.includes('drain'),
      peers: only.includes('peer'),
      endToEnd: only.includes('end-to-end'),
    };
  }
  return validateSweepOptions(o);
}

export const command: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'throughput sweep: drain and end-to-end rates against 154 msg/s, the watermill handler and this machine\'s ceilings',
  builder: (y) =>
    y
      .option('profile', { type: 'string', default: 'standard', describe: 'quick (about 1 min: its drain runs 3 paired rounds), standard (about 6-7 min, make bench), full (about 65 min, estimated); a busy machine takes up to twice as long; make adds ~15 s of npm ci the first time' })
      .option('engine', { type: 'string', describe: "mariadb, postgres, or all (both in one run, side by side); default mariadb, or the given URL's engine" })
      .option('database-url', { ...databaseUrlOption, describe: `use this server instead of a private one (database faults are then unavailable); ${databaseUrlOption.describe}` })
      .option('mysql-url', { type: 'string', describe: 'the same as --database-url (kept for MariaDB URLs; default: $MYSQL_URL)' })
      .option('batch-sizes', { type: 'string', describe: 'e.g. 1,100,1000' })
      .option('isolation', { type: 'string', describe: 'e.g. SERIALIZABLE,READ-COMMITTED (offset mode; also queue mode when given)' })
      .option('modes', { type: 'string', describe: 'offset,queue' })
      .option('queue-workers', { type: 'string', describe: 'queue mode worker processes, e.g. 1,2,4' })
      .option('handlers', { type: 'string', describe: 'worker handlers: batched,watermill' })
      .option('profiles', { type: 'string', deprecated: 'use --handlers', describe: 'the old name of --handlers' })
      .option('poll-intervals', { type: 'string', describe: 'worker poll intervals in ms, e.g. 1,10,100' })
      .option('coalesce', { type: 'string', describe: 'server publish coalescing for end-to-end points: on,off' })
      .option('ack-modes', { type: 'string', describe: 'transactional,after-commit,before-commit (the last two are the controls)' })
      .option('repetitions', { type: 'number', describe: 'runs of every point' })
      .option('backlog', { type: 'number', describe: 'messages published before each drain point' })
      .option('counters', { type: 'number', describe: 'distinct counters the messages go to' })
      .option('drain-timeout-s', { type: 'number', describe: 'a drain point ends after this long even if the backlog is not consumed' })
      .option('drain-rounds', { type: 'number', describe: 'offset drains: rounds of [SQL ceiling loop, workers] on the same backlog; the ratio is the median of the rounds\' (min-max printed)' })
      .option('duration-s', { type: 'number', describe: 'load duration of end-to-end points' })
      .option('connections', { type: 'string', describe: 'autocannon connections, e.g. 50,200: an HTTP ceiling and the end-to-end points at each' })
      .option('rate', { type: 'number', describe: 'fixed offered rate (req/s) for end-to-end points; default: as fast as answered' })
      .option('only', { type: 'string', describe: `run only these kinds: ${POINT_KINDS.join(',')}` })
      .option('peers', { type: 'string', describe: 'peer job queues measured beside the drain on PostgreSQL, peer:task pairs: graphile-worker:noop,graphile-worker:counter,pg-boss:noop,pg-boss:counter,pg-boss:counter-in-completion' })
      .option('peer-window-s', { type: 'number', describe: 'a peer point ends after this long even if its backlog is not done (its rate is over what was done)' })
      .option('topology', {
        choices: TOPOLOGIES,
        default: 'single',
        describe:
          'single: one private server; galera: MariaDB\'s points on one server, then on a private 3-node Galera cluster, in the same run (rows carry topology; the side-by-side table gives the cluster over the server); ' +
          'primary-replica: the points on one server, then on a primary and a replica at each replication level (--replication: only that one), in the same run (the side-by-side table gives each level over the single server)',
      })
      .option('replication', { choices: REPLICATION_LEVELS, describe: 'primary-replica: only this replication level (async, semi-sync on MariaDB, sync on PostgreSQL)' })
      .option('worker-failpoint', { type: 'string', describe: 'failpoints armed in every drain worker (name=N,...): the lossy control' })
      .option('results-dir', { type: 'string', describe: 'root of the results tree (default: results/ of the project)' }),
  handler: async (args) => {
    const env = readEnvironment();
    const sweep = sweepOptionsFromArgs(args);
    // --database-url > --mysql-url > DATABASE_URL > MYSQL_URL, as the server and the worker; none: a private server per engine.
    const url = optionalDatabaseUrl(args['database-url'], args['mysql-url'])?.url;
    const engines = resolveRunEngines('bench', args.engine, url);
    const topology = (args as { topology?: string }).topology as Topology | undefined;
    if (topology === 'galera' && url !== undefined) throw new Error('bench --topology galera starts a private cluster: unset MYSQL_URL / DATABASE_URL / --database-url');
    if (topology === 'galera' && !engines.includes('mariadb')) throw new Error('bench --topology galera runs a MariaDB Galera cluster: use --engine mariadb (the default) or all');
    const replication = (args as { replication?: string }).replication as ReplicationLevel | undefined;
    if (topology === 'primary-replica') {
      if (url !== undefined) throw new Error('bench --topology primary-replica starts a private primary and replica: unset MYSQL_URL / DATABASE_URL / --database-url');
      for (const e of engines) {
        requireReplicaPairFactory(e);
        if (replication !== undefined) checkReplicationLevel(`bench --engine ${e}`, e, replication);
      }
    } else if (replication !== undefined) {
      throw new Error(`bench --replication applies to --topology primary-replica (topology is ${topology ?? 'single'})`);
    }
    const result = await runBench({
      sweep,
      engines,
      topologies: topology === 'galera' ? ['single', 'galera'] : topology === 'primary-replica' ? ['single', 'primary-replica'] : ['single'],
      ...(replication === undefined ? {} : { replicationLevels: [replication] }),
      system: {
        databaseUrl: url,
        postgresBinDir: env.postgresBinDir,
        mariadbBinDir: env.mariadbBinDir,
        searchPath: env.searchPath,
        galeraProvider: env.galeraProvider,
        quietChildren: true,
      },
      resultsRoot: args['results-dir'] ?? path.join(projectRoot(), 'results'),
      ci: env.ci,
      out: (line) => process.stdout.write(`${line}\n`),
    });
    // A peer that loses or doubles a job is a finding about the peer, reported on its row, not a failure of ours.
    const invalidExactlyOnce = result.rows.filter((r) => r.kind !== 'peer' && r.verdict === 'invalid' && r.ack_mode === 'transactional' && args['worker-failpoint'] === undefined);
    process.exitCode = result.interrupted ? 130 : invalidExactlyOnce.length > 0 ? 1 : 0;
  },
};
