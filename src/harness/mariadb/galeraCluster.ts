// A private MariaDB Galera cluster: N private MariaDB servers (managedDatabase.ts, each with its own client,
// group-communication, IST and SST ports on 127.0.0.1 and its own data directory) joined into one cluster with
// synchronous multi-primary replication. Every node takes writes; certification orders all commits.
//
// Formation: node 1 bootstraps a new cluster (--wsrep-new-cluster, on its first start only: started again
// after a kill it must rejoin, or it would found a second cluster beside the first), then the others join it
// one by one and receive a full copy of its data by rsync (state snapshot transfer, SST). A node killed and
// started again rejoins with an incremental transfer of what it missed (IST) when the donors' write-set
// cache still holds it, or a new SST.
//
// The protections of a single private server carry over: one random root password for all nodes (kept 0600 in
// each data directory; the worker reaches every member with the credentials of the node it was given, as with
// a real cluster's replicated accounts), 127.0.0.1 only, secure_file_priv, and the `mysql` user when this
// process is root. Under root the nodes MUST run as that user: the rsync daemon of a state transfer, started by
// a server running as root, drops to `nobody`, which cannot write the data directory, so the joiner never
// starts. Settings Galera requires: row-based replication events and interleaved auto-increment locking
// (innodb_autoinc_lock_mode=2); Galera then gives each node its own auto-increment offset and sets the
// increment to the cluster size, adjusting both at every membership change (wsrep_auto_increment_control).
//
// Measured on a 2-core machine (MariaDB 10.11.19, galera-4 26.4.23): a 3-node cluster forms in about 15-45 s,
// most of it the two joiners' rsync SSTs (~12 s each, in parallel, for a fresh 265 MB data directory).
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { formatMysqlUrl } from '../../system/db/mariadb/mysqlUrl.ts';
import { isServing, notServingReason, readGaleraStatus, setIsolated, type GaleraStatus } from '../../system/sql/mariadb/galera.ts';
import { definedOnly, intInRange, nonEmptyString, OptionsError } from '../../validate.ts';
import { isExecutable } from '../executable.ts';
import { newPassword } from '../password.ts';
import { findFreePort } from '../ports.ts';
import { defaultCacheDirectory } from '../privateDirectory.ts';
import { ManagedDatabase, DatabaseStartError } from './managedDatabase.ts';

const COMPONENT = 'galera cluster';

export interface GaleraClusterOptions {
  /** Nodes in the cluster (3 keeps a majority when one fails). */
  nodes: number;
  /** Parent of the nodes' data directories (node i in `<datadir>/node-<i>`); default `.eob/galera-<first port>`. */
  datadir: string | undefined;
  /** The nodes' data directories themselves, one per node (instead of `datadir`; e.g. the tests' scratch directories). */
  nodeDatadirs: readonly string[] | undefined;
  /** Client ports on 127.0.0.1 of the first nodes (node 1's first); the others' are picked free. */
  ports: readonly number[] | undefined;
  /** Created once the cluster is formed (DDL replicates to every node). */
  database: string;
  /** Galera's provider library; undefined searches the usual places (galera-4's /usr/lib/galera/libgalera_smm.so). */
  provider: string | undefined;
  binDir: string | undefined;
  searchSystemPaths: boolean;
  searchPath: readonly string[];
  /** Deadline for a node to start and become Synced, a state transfer included. */
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** The OS user the nodes run as when this process is root (required then: see the top of this file). */
  serverUser: string;
  templateCacheDir: string | undefined;
  /** Extra wsrep_provider_options, `key=value` each (e.g. `evs.suspect_timeout=PT2S`). */
  providerOptions: readonly string[];
  /** Extra server options for every node, each starting with --. */
  serverArgs: readonly string[];
  log: (line: string) => void;
}

export function defaultGaleraClusterOptions(): GaleraClusterOptions {
  return {
    nodes: 3,
    datadir: undefined,
    nodeDatadirs: undefined,
    ports: undefined,
    database: 'eob',
    provider: undefined,
    binDir: undefined,
    searchSystemPaths: true,
    searchPath: [],
    // A joiner's SST took ~12 s on an idle 2-core machine; five minutes leaves room for a loaded one.
    startTimeoutMs: 300_000,
    stopTimeoutMs: 60_000,
    serverUser: 'mysql',
    templateCacheDir: defaultCacheDirectory(),
    providerOptions: [],
    serverArgs: [],
    log: () => undefined,
  };
}

export function resolveGaleraClusterOptions(given: Partial<GaleraClusterOptions>): GaleraClusterOptions {
  const o: GaleraClusterOptions = { ...defaultGaleraClusterOptions(), ...definedOnly<GaleraClusterOptions>(given) };
  intInRange(COMPONENT, 'nodes', o.nodes, 1, 9);
  if (o.ports !== undefined) {
    if (!Array.isArray(o.ports) || o.ports.length > o.nodes) {
      throw new OptionsError(`${COMPONENT}: ports must name at most one client port per node (${o.nodes}; got ${JSON.stringify(o.ports)})`);
    }
    for (const p of o.ports) intInRange(COMPONENT, 'ports', p, 1, 65_535);
    if (new Set(o.ports).size !== o.ports.length) throw new OptionsError(`${COMPONENT}: ports must differ (got ${o.ports.join(', ')})`);
  }
  if (o.datadir !== undefined) nonEmptyString(COMPONENT, 'datadir', o.datadir);
  if (o.nodeDatadirs !== undefined) {
    if (o.datadir !== undefined) throw new OptionsError(`${COMPONENT}: give datadir or nodeDatadirs, not both`);
    if (!Array.isArray(o.nodeDatadirs) || o.nodeDatadirs.length !== o.nodes) {
      throw new OptionsError(`${COMPONENT}: nodeDatadirs must name one data directory per node (${o.nodes})`);
    }
    for (const d of o.nodeDatadirs) nonEmptyString(COMPONENT, 'nodeDatadirs', d);
  }
  if (o.provider !== undefined) nonEmptyString(COMPONENT, 'provider', o.provider);
  intInRange(COMPONENT, 'startTimeoutMs', o.startTimeoutMs, 1_000, 3_600_000);
  intInRange(COMPONENT, 'stopTimeoutMs', o.stopTimeoutMs, 100, 3_600_000);
  for (const option of o.providerOptions) {
    if (!/^[a-z_.]+=[^;]+$/.test(option)) throw new OptionsError(`${COMPONENT}: providerOptions must be key=value without ';' (got ${JSON.stringify(option)})`);
  }
  for (const arg of o.serverArgs) if (!arg.startsWith('--')) throw new OptionsError(`${COMPONENT}: serverArgs must start with -- (got ${JSON.stringify(arg)})`);
  return o;
}

export class GaleraUnavailableError extends Error {
  override readonly name = 'GaleraUnavailableError';
}

const PROVIDER_CANDIDATES = [
  '/usr/lib/galera/libgalera_smm.so',
  '/usr/lib/galera-4/libgalera_smm.so',
  '/usr/lib64/galera-4/libgalera_smm.so',
  '/usr/lib64/galera/libgalera_smm.so',
  '/usr/lib/libgalera_smm.so',
];

/** Galera's provider library and the programs of an rsync state transfer, or an error that says what to install. */
export async function findGaleraPrerequisites(o: Pick<GaleraClusterOptions, 'provider' | 'searchPath'>): Promise<{ provider: string }> {
  const candidates = o.provider === undefined ? PROVIDER_CANDIDATES : [o.provider];
  let provider: string | undefined;
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.R_OK);
      provider = candidate;
      break;
    } catch {
      // try the next
    }
  }
  if (provider === undefined) {
    throw new GaleraUnavailableError(
      o.provider === undefined
        ? `Galera's provider library libgalera_smm.so is not installed (looked in ${PROVIDER_CANDIDATES.join(', ')}); install it with \`apt-get install galera-4\` (it comes with mariadb-server), or name it with EOB_GALERA_PROVIDER`
        : `the Galera provider ${o.provider} (EOB_GALERA_PROVIDER) cannot be read`,
    );
  }
  const searchPath = [...o.searchPath, '/usr/bin', '/usr/local/bin', '/bin'];
  for (const program of ['rsync', 'wsrep_sst_rsync']) {
    if (!(await anyExecutable(searchPath.map((dir) => path.join(dir, program))))) {
      throw new GaleraUnavailableError(
        `${program} is not installed; Galera's state transfer needs it: \`apt-get install ${program === 'rsync' ? 'rsync' : 'mariadb-server'}\``,
      );
    }
  }
  return { provider };
}

/** One node of the cluster: its server and the ports it was given once, kept across restarts. */
export interface GaleraNode {
  /** 1-based, as in the node's name (node1, node2, ...). */
  readonly index: number;
  readonly server: ManagedDatabase;
  readonly clientPort: number;
  readonly gcommPort: number;
  readonly istPort: number;
  readonly sstPort: number;
}

const SYNC_POLL_MS = 100;
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class GaleraCluster {
  private formed = false;

  private constructor(
    readonly options: GaleraClusterOptions,
    readonly nodes: readonly GaleraNode[],
    private readonly password: string,
  ) {}

  /** Picks the ports, prepares every node and forms the cluster; resolves once every node is Synced. */
  static async create(given: Partial<GaleraClusterOptions> = {}): Promise<GaleraCluster> {
    const options = resolveGaleraClusterOptions(given);
    const { provider } = await findGaleraPrerequisites(options);
    const ports = await pickPorts(options);
    const parent = path.resolve(options.datadir ?? path.join('.eob', `galera-${ports[0]!.client}`));
    const password = newPassword();
    const address = `gcomm://${ports.map((p) => `127.0.0.1:${p.gcomm}`).join(',')}`;
    const nodes = ports.map((p, i): GaleraNode => {
      const index = i + 1;
      const providerOptions = [
        `gmcast.listen_addr=tcp://127.0.0.1:${p.gcomm}`,
        `ist.recv_addr=127.0.0.1:${p.ist}`,
        ...options.providerOptions,
      ].join(';');
      const server = new ManagedDatabase({
        port: p.client,
        datadir: options.nodeDatadirs?.[i] ?? path.join(parent, `node-${index}`),
        database: options.database,
        // Node 1 creates it; the joiners receive it with their state transfer (and refuse statements before).
        createDatabase: index === 1,
        binDir: options.binDir,
        searchSystemPaths: options.searchSystemPaths,
        searchPath: [...options.searchPath],
        startTimeoutMs: options.startTimeoutMs,
        stopTimeoutMs: options.stopTimeoutMs,
        fresh: true,
        templateCacheDir: options.templateCacheDir,
        serverUser: options.serverUser,
        password,
        log: (line) => options.log(`node${index} ${line}`),
        serverArgs: [
          '--wsrep-on=ON',
          `--wsrep-provider=${provider}`,
          `--wsrep-cluster-name=eob-${ports[0]!.client}`,
          `--wsrep-cluster-address=${address}`,
          `--wsrep-node-name=node${index}`,
          `--wsrep-node-address=127.0.0.1:${p.gcomm}`,
          `--wsrep-node-incoming-address=127.0.0.1:${p.client}`,
          `--wsrep-provider-options=${providerOptions}`,
          '--wsrep-sst-method=rsync',
          `--wsrep-sst-receive-address=127.0.0.1:${p.sst}`,
          // Galera replicates row events and needs auto-increment values handed out without a table lock.
          '--binlog-format=ROW',
          '--innodb-autoinc-lock-mode=2',
          ...options.serverArgs,
        ],
      });
      return { index, server, clientPort: p.client, gcommPort: p.gcomm, istPort: p.ist, sstPort: p.sst };
    });
    const cluster = new GaleraCluster(options, nodes, password);
    try {
      await cluster.form();
    } catch (error) {
      await cluster.remove().catch(() => undefined);
      throw error;
    }
    return cluster;
  }

  /** mysql://root:<password>@127.0.0.1:<client port>/<database> of each node, in node order. */
  get urls(): string[] {
    return this.nodes.map((n) => this.urlOf(n.index));
  }

  urlOf(index: number): string {
    const node = this.node(index);
    return formatMysqlUrl({ user: 'root', password: this.password, host: '127.0.0.1', port: node.clientPort, database: this.options.database });
  }

  node(index: number): GaleraNode {
    const node = this.nodes[index - 1];
    if (node === undefined) throw new Error(`${COMPONENT}: there is no node ${index} (nodes 1-${this.nodes.length})`);
    return node;
  }

  /** Starts a stopped or killed node again: it rejoins (IST or SST); resolves once it is Synced, with the ms it took. */
  async startNode(index: number): Promise<number> {
    const started = performance.now();
    await this.node(index).server.start();
    await this.waitSynced(index);
    return Math.round(performance.now() - started);
  }

  /** The node's wsrep status through a short connection of its own. */
  async status(index: number): Promise<GaleraStatus> {
    const conn = await mysql.createConnection({ uri: this.urlOf(index), connectTimeout: 2_000 });
    try {
      return await readGaleraStatus({ query: async <T>(sql: string) => (await conn.query(sql))[0] as T });
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** Waits until the node is a Synced member of a primary component. */
  async waitSynced(index: number, timeoutMs = this.options.startTimeoutMs): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = 'no answer';
    for (;;) {
      try {
        const status = await this.status(index);
        if (isServing(status) && status.enabled && status.localState === 'Synced') return;
        last = notServingReason(status);
      } catch (error) {
        last = (error as Error).message;
      }
      if (performance.now() > deadline) {
        throw new DatabaseStartError(`${COMPONENT}: node ${index} is not Synced after ${timeoutMs} ms (${last}); the last lines of its error log:\n${await this.node(index).server.errorLogTail(30)}`);
      }
      await delay(SYNC_POLL_MS);
    }
  }

  /**
   * Cuts the node off from the others' group communication (Galera's own switch, gmcast.isolate, which drops
   * every message to and from the other nodes; clients still reach the node, which then answers 1047), or joins
   * it back. The others see it leave once they suspect it (evs.suspect_timeout, 5 s by default).
   */
  async isolate(index: number, isolated: boolean): Promise<void> {
    const conn = await mysql.createConnection({ uri: this.urlOf(index), connectTimeout: 2_000 });
    try {
      await setIsolated({ query: async <T>(sql: string) => (await conn.query(sql))[0] as T }, isolated);
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** Waits until node `index` counts `size` members in its component (a view change has been seen there). */
  async waitClusterSize(index: number, size: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const status = await this.status(index).catch(() => undefined);
      if (status?.clusterSize === size) return;
      if (performance.now() > deadline) {
        throw new Error(`${COMPONENT}: node ${index} sees ${status?.clusterSize ?? 'no'} members after ${timeoutMs} ms, not ${size}; the last lines of its error log:\n${await this.node(index).server.errorLogTail(30)}`);
      }
      await delay(SYNC_POLL_MS);
    }
  }

  /** Stops every node cleanly (the last one standing keeps the cluster's newest state). */
  async stop(): Promise<void> {
    for (const node of [...this.nodes].reverse()) await node.server.stop();
  }

  /** Stops every node and deletes their data directories. */
  async remove(): Promise<void> {
    for (const node of [...this.nodes].reverse()) await node.server.remove().catch(() => undefined);
  }

  private async form(): Promise<void> {
    if (this.formed) return;
    const first = this.node(1);
    const joinArgs = [...first.server.options.serverArgs];
    first.server.options.serverArgs = [...joinArgs, '--wsrep-new-cluster'];
    try {
      await first.server.start();
    } finally {
      // Only the founding start bootstraps; every later start of node 1 rejoins the cluster.
      first.server.options.serverArgs = joinArgs;
    }
    if (process.getuid?.() === 0 && first.server.serverUser === 'root') {
      throw new GaleraUnavailableError(
        `${COMPONENT}: the nodes would run as root (the ${this.options.serverUser} user cannot reach ${first.server.datadir}), and a state transfer's ` +
          `rsync daemon then drops to nobody and cannot write the data directory; pick a datadir the ${this.options.serverUser} user can reach (e.g. under /var/tmp)`,
      );
    }
    await this.waitSynced(1);
    // One joiner at a time: a donor serves one SST at a time, and two at once on 2 cores only slow each other.
    for (const node of this.nodes.slice(1)) await this.startNode(node.index);
    this.formed = true;
    this.options.log(`${COMPONENT}: ${this.nodes.length} nodes Synced on 127.0.0.1 ports ${this.nodes.map((n) => n.clientPort).join(', ')}`);
  }
}

async function anyExecutable(files: readonly string[]): Promise<boolean> {
  for (const file of files) if (await isExecutable(file)) return true;
  return false;
}

interface NodePorts {
  client: number;
  gcomm: number;
  ist: number;
  sst: number;
}

async function pickPorts(o: GaleraClusterOptions): Promise<NodePorts[]> {
  const taken = new Set<number>(o.ports ?? []);
  const next = async (): Promise<number> => {
    for (;;) {
      const port = await findFreePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const result: NodePorts[] = [];
  for (let i = 0; i < o.nodes; i += 1) {
    result.push({ client: o.ports?.[i] ?? (await next()), gcomm: await next(), ist: await next(), sst: await next() });
  }
  return result;
}
