// eob: one binary, one subcommand per job. Each subcommand lives in src/commands/<name>.ts.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { command as worker } from './commands/worker.ts';
import { command as server } from './commands/server.ts';
import { command as db } from './commands/db.ts';
import { command as chaos } from './commands/chaos.ts';
import { command as bench } from './commands/bench.ts';

const commands: CommandModule[] = [worker as unknown as CommandModule, server as unknown as CommandModule, db as unknown as CommandModule, chaos as unknown as CommandModule, bench as unknown as CommandModule];

await yargs(hideBin(process.argv))
  .scriptName('eob')
  .command(commands)
  .demandCommand(1, 'Name a command: eob --help lists them.')
  .strict()
  .help()
  .alias('h', 'help')
  .fail((message, error, y) => {
    if (error !== undefined && error !== null) {
      process.stderr.write(`eob: ${error.message}\n`);
    } else {
      process.stderr.write(`${y.help()}\n\neob: ${message}\n`);
    }
    process.exit(2);
  })
  .parseAsync();
