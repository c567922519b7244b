// eob poison list: shows the messages a worker moved to eob_poison_<topic> because its handler kept rejecting
// them, with the error, so an operator can see what was set aside and why.
import type { Argv, CommandModule } from 'yargs';
import { openDatabase } from '../system/db/openDatabase.ts';
import type { PoisonRow } from '../system/sql/engine.ts';
import { intInRange, matches, OptionsError } from '../validate.ts';
import { databaseUrlOption, mysqlUrlOption, resolveDatabaseUrl } from './sharedOptions.ts';
import type { TopicMode } from '../system/pubsub/types.ts';

interface ListArgs {
  'database-url'?: string;
  'mysql-url'?: string;
  topic: string;
  mode?: string;
  'consumer-group'?: string;
  limit: number;
  json: boolean;
}

/** Payloads can be large; the text listing shows this much of each (--json shows all). */
const PAYLOAD_CHARS_SHOWN = 200;

function formatRow(r: PoisonRow): string {
  const reader = r.mode === 'offset' ? `group ${r.consumerGroup} (offset mode)` : 'queue mode';
  const payload = r.payload ?? 'NULL';
  const again = r.timesPoisoned > 1 ? `, poisoned ${r.timesPoisoned} times (the group was re-read)` : '';
  return [
    `offset ${r.offset}  ${reader}  uuid ${r.uuid}`,
    `  created ${r.createdAt?.toISOString() ?? '?'}, poisoned ${r.poisonedAt.toISOString()} after ${r.failedDeliveries} failed deliveries${again}`,
    `  error:    ${r.error}`,
    `  payload:  ${payload.length > PAYLOAD_CHARS_SHOWN ? `${payload.slice(0, PAYLOAD_CHARS_SHOWN)}... (${payload.length} characters)` : payload}`,
    `  metadata: ${r.metadata ?? 'NULL'}`,
  ].join('\n');
}

const list: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'list the poisoned messages of a topic, newest first, with the error that set each aside',
  builder: (y) =>
    y
      .option('database-url', databaseUrlOption)
      .option('mysql-url', { ...mysqlUrlOption, describe: 'the same as --database-url (kept for MariaDB URLs; default: $MYSQL_URL)' })
      .option('topic', { type: 'string', default: 'counter', describe: 'the topic whose eob_poison_<topic> table is read' })
      .option('mode', { choices: ['offset', 'queue'], describe: 'only messages set aside by this mode (default: both)' })
      .option('consumer-group', { type: 'string', describe: 'offset mode: only this consumer group' })
      .option('limit', { type: 'number', default: 50, describe: 'at most this many messages (1-100000)' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line, payloads in full' })
      .example('eob poison list --topic counter', 'what the counter worker set aside, and why')
      .example('eob poison list --mode offset --consumer-group counter --json', 'machine-readable, one group'),
  handler: async (args) => {
    const c = 'eob poison list';
    matches(c, '--topic', args.topic, /^[A-Za-z0-9_]{1,48}$/, '1-48 letters, digits or _');
    intInRange(c, '--limit', args.limit, 1, 100_000);
    if (args['consumer-group'] !== undefined && args.mode === 'queue') {
      throw new OptionsError(`${c}: --consumer-group applies to offset mode; a queue has no consumer groups (drop it, or use --mode offset)`);
    }
    const url = resolveDatabaseUrl(args['database-url'], args['mysql-url']);
    const pool = openDatabase({ url, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'poison-list' });
    const poisonTable = (topic: string): string => pool.engine.poisonTableName(topic);
    try {
      const db = pool.executor();
      const filter = {
        ...(args.mode === undefined ? {} : { mode: args.mode as TopicMode }),
        ...(args['consumer-group'] === undefined ? {} : { consumerGroup: args['consumer-group'] }),
        limit: args.limit,
      };
      let found: PoisonRow[] | undefined;
      try {
        found = await pool.engine.selectPoisoned(db, { topic: args.topic, filter });
      } catch (error) {
        if (pool.classify(error) === 'connection' || pool.classify(error) === 'server-restarting') {
          throw new Error(
            `cannot reach the database at ${url.redacted}: ${pool.describe(error)}. Is it running? Start one with \`eob db start\`, or check --database-url / DATABASE_URL.`,
            { cause: error },
          );
        }
        throw error;
      }
      if (found === undefined) {
        process.stdout.write(`no poisoned messages: ${poisonTable(args.topic)} does not exist (no worker has consumed topic "${args.topic}" in this database)\n`);
        return;
      }
      const rows = found;
      if (args.json) {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write(`no poisoned messages in ${poisonTable(args.topic)}${args.mode === undefined && args['consumer-group'] === undefined ? '' : ' that match the filter'}\n`);
        return;
      }
      const more = rows.length === args.limit ? ` (the newest ${args.limit}; --limit shows more)` : '';
      process.stdout.write(`${rows.length} poisoned message${rows.length === 1 ? '' : 's'} in ${poisonTable(args.topic)}, newest first${more}\n\n`);
      process.stdout.write(`${rows.map(formatRow).join('\n\n')}\n`);
    } finally {
      await pool.end().catch(() => undefined);
    }
  },
};

export const command: CommandModule<object, object> = {
  command: 'poison <command>',
  describe: 'messages a worker set aside because its handler kept rejecting them (eob_poison_<topic>)',
  builder: (y: Argv) => y.command(list as unknown as CommandModule<object, object>).demandCommand(1, 'Name a poison command: list.'),
  handler: () => undefined,
};
