// eob prune: removes consumed messages and old publish-dedup ids from one topic, once, and says how many.
import type { CommandModule } from 'yargs';
import { openDatabase } from '../system/db/openDatabase.ts';
import { DEFAULT_PRUNE_OPTIONS, prune, validatePruneOptions } from '../system/prune.ts';
import { databaseUrlOption, mysqlUrlOption, resolveDatabaseUrl } from './sharedOptions.ts';
import { TOPIC_MODES } from '../system/pubsub/types.ts';
import type { TopicMode } from '../system/pubsub/types.ts';

interface PruneArgs {
  'database-url'?: string;
  'mysql-url'?: string;
  mode: string;
  topic: string;
  'batch-size': number;
  'dedup-window-s': number;
}

const d = DEFAULT_PRUNE_OPTIONS;

export const command: CommandModule<object, PruneArgs> = {
  command: 'prune',
  describe:
    'remove messages every consumer group has acked (offset mode; queue mode: acked rows) and publish-dedup ids older than the window, in small batches publishers do not wait for',
  builder: (y) =>
    y
      .option('database-url', databaseUrlOption)
      .option('mysql-url', { ...mysqlUrlOption, describe: 'the same as --database-url (kept for MariaDB URLs; default: $MYSQL_URL)' })
      .option('mode', { choices: TOPIC_MODES, default: d.mode, describe: "the topic's mode, as its worker runs it" })
      .option('topic', { type: 'string', default: 'counter' })
      .option('batch-size', { type: 'number', default: d.batchSize, describe: 'rows per DELETE (each its own short transaction)' })
      .option('dedup-window-s', { type: 'number', default: d.dedupWindowS, describe: 'publish-dedup ids older than this go; a retry older than the window publishes again' }),
  handler: async (args) => {
    const options = validatePruneOptions({
      ...d,
      topic: args.topic,
      mode: args.mode as TopicMode,
      batchSize: args['batch-size'],
      dedupWindowS: args['dedup-window-s'],
    });
    const pool = openDatabase({ url: resolveDatabaseUrl(args['database-url'], args['mysql-url']), connectionLimit: 1, connectTimeoutMs: 5_000, role: 'prune' });
    try {
      const result = await prune(pool, options);
      if (options.mode === 'offset' && result.groups === 0) {
        process.stderr.write(`eob prune: topic "${options.topic}" has no consumer group yet, so no message is known to be consumed; none removed\n`);
      }
      process.stdout.write(`pruned ${JSON.stringify({ topic: options.topic, mode: options.mode, ...result })}\n`);
    } finally {
      await pool.end();
    }
  },
};
