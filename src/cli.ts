// eob: one binary, one subcommand per job. Each subcommand lives in src/commands/<name>.ts.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { command as db } from './commands/db.ts';
import { command as server } from './commands/server.ts';
import { command as worker } from './commands/worker.ts';
import { command as bench } from './commands/bench.ts';
import { command as chaos } from './commands/chaos.ts';
import { command as micro } from './commands/micro.ts';
import { command as poison } from './commands/poison.ts';
import { OptionsError } from './validate.ts';
import { redactMysqlUrlsIn } from './system/db/mysqlUrl.ts';

// Each module types its own arguments; yargs' list wants the erased form.
const commands = [db, server, worker, bench, chaos, micro, poison] as unknown as CommandModule[];

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
      process.stderr.write(`\neob: ${redactMysqlUrlsIn(error?.message ?? message)}\n`);
      process.exit(2);
    }
    // Messages name the database by a redacted URL already; this catches one that came from elsewhere.
    process.stderr.write(`eob: ${redactMysqlUrlsIn(error.message)}\n`);
    process.exit(1);
  })
  .parseAsync();
