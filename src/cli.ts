// eob: one binary, one subcommand per job. Each subcommand lives in src/commands/<name>.ts.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { OptionsError } from './validate.ts';
import { redactDatabaseUrlsIn } from './system/db/urlRedaction.ts';

// Each command's module is imported only when that command runs: the bench and chaos modules pull in dockerode,
// grpc and autocannon, about 1 s of CPU that `eob server` and `eob worker` need not pay at start. Without a known
// command name (help, a typo) every module is loaded so the help lists them all.
const loaders: Record<string, () => Promise<{ command: unknown }>> = {
  db: () => import('./commands/db.ts'),
  server: () => import('./commands/server.ts'),
  worker: () => import('./commands/worker.ts'),
  prune: () => import('./commands/prune.ts'),
  bench: () => import('./commands/bench.ts'),
  chaos: () => import('./commands/chaos.ts'),
  check: () => import('./commands/check.ts'),
  micro: () => import('./commands/micro.ts'),
  poison: () => import('./commands/poison.ts'),
  cluster: () => import('./commands/cluster.ts'),
};
const named = hideBin(process.argv)[0];
const chosen = named !== undefined && Object.hasOwn(loaders, named) ? [loaders[named] as () => Promise<{ command: unknown }>] : Object.values(loaders);
// Each module types its own arguments; yargs' list wants the erased form.
const commands = (await Promise.all(chosen.map((load) => load()))).map((m) => m.command) as CommandModule[];

await yargs(hideBin(process.argv))
  .scriptName('eob')
  .command(commands)
  .demandCommand(1, 'Name a command: eob --help lists them.')
  .strict()
  .help()
  .alias('h', 'help')
  .wrap(Math.min(120, process.stdout.columns ?? 100))
  .fail((message, error, y) => {
    // A usage mistake (unknown flag, bad choice, bad option value) exits 2 with the help; a failure while
    // running exits 1 with what went wrong.
    if (error === undefined || error === null || error instanceof OptionsError) {
      if (error === undefined || error === null) y.showHelp('error');
      process.stderr.write(`\neob: ${redactDatabaseUrlsIn(error?.message ?? message)}\n`);
      process.exit(2);
    }
    // Messages name the database by a redacted URL already; this catches one that came from elsewhere.
    process.stderr.write(`eob: ${redactDatabaseUrlsIn(error.message)}\n`);
    process.exit(1);
  })
  .parseAsync();
