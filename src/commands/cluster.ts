// eob cluster members | forget: the Galera nodes the cluster-wide gap proof keeps waiting for (every node a
// worker has seen as a member: one that left may commit a transaction it held open when it rejoins), and how to
// take out a node removed for good.
import type { Argv, CommandModule } from 'yargs';
import { openDatabase } from '../system/db/openDatabase.ts';
import { readGaleraStatus } from '../system/sql/mariadb/galera.ts';
import { createClusterMembersTable, forgetClusterMember, selectClusterMembers } from '../system/sql/mariadb/clusterMembers.ts';
import { matches } from '../validate.ts';
import { databaseUrlOption, resolveDatabaseUrl } from './sharedOptions.ts';

interface Args {
  'database-url'?: string;
  address?: string;
}

async function withNode<T>(args: Args, what: string, work: (db: ReturnType<typeof openDatabase>) => Promise<T>): Promise<T> {
  const db = openDatabase({ url: resolveDatabaseUrl(args['database-url'], undefined), connectionLimit: 1, connectTimeoutMs: 5_000, role: 'cluster' });
  try {
    if (db.engine.name !== 'mariadb') throw new Error(`eob cluster ${what}: a Galera cluster is MariaDB's; this URL is ${db.engine.name}'s`);
    const status = await readGaleraStatus(db.executor());
    if (!status.enabled) throw new Error(`eob cluster ${what}: this server is not a Galera node (wsrep_on is OFF)`);
    return await work(db);
  } finally {
    await db.end();
  }
}

const members: CommandModule<object, Args> = {
  command: 'members',
  describe: 'the nodes gap proofs wait for: every node a worker has seen, and which of them are members now',
  builder: (y) => y.option('database-url', databaseUrlOption),
  handler: async (args) => {
    await withNode(args, 'members', async (db) => {
      const executor = db.executor();
      const status = await readGaleraStatus(executor);
      await createClusterMembersTable(executor);
      const known = await selectClusterMembers(executor);
      for (const m of known) {
        const now = status.incomingAddresses.includes(m.address) ? 'member now' : 'NOT a member now: gap proofs wait for it';
        process.stdout.write(`${m.address}  ${m.nodeName}  first seen ${m.firstSeen.toISOString()}, last seen ${m.lastSeen.toISOString()}  ${now}\n`);
      }
      for (const a of status.incomingAddresses.filter((x) => !known.some((m) => m.address === x))) process.stdout.write(`${a}  member now, not yet recorded (no worker proof since it joined)\n`);
    });
  },
};

const forget: CommandModule<object, Args> = {
  command: 'forget <address>',
  describe: 'take a node removed for good out of the list gap proofs wait for (only when it can never commit again: stopped, its data gone)',
  builder: (y) => y.option('database-url', databaseUrlOption).positional('address', { type: 'string', describe: 'host:port, as `eob cluster members` lists it' }),
  handler: async (args) => {
    const address = matches('eob cluster forget', 'address', args.address, /^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, 'host:port');
    await withNode(args, 'forget', async (db) => {
      const status = await readGaleraStatus(db.executor());
      if (status.incomingAddresses.includes(address)) throw new Error(`eob cluster forget: ${address} is a member now; only a node that has left can be forgotten`);
      const removed = await forgetClusterMember(db.executor(), address);
      process.stdout.write(removed ? `${address} forgotten: gap proofs no longer wait for it\n` : `${address} was not in the list\n`);
    });
  },
};

export const command: CommandModule<object, object> = {
  command: 'cluster <command>',
  describe: 'the Galera nodes the gap proof covers (members, forget)',
  builder: (y: Argv) =>
    y
      .command(members as unknown as CommandModule<object, object>)
      .command(forget as unknown as CommandModule<object, object>)
      .demandCommand(1, 'Name a cluster command: members or forget.'),
  handler: () => undefined,
};
