// The SQL ceiling's loop in a process of its own (started by runSqlConsumeLoopInProcess), detached into its own
// session as the workers are, so the scheduler treats the two alike: the loop gets the options and sends its
// result over the IPC channel, and stops when told to or when the bench that started it goes away.
import { runSqlConsumeLoop, type SqlCeilingOptions } from './sqlCeiling.ts';

interface Start {
  /** mysql:// or postgres://: the loop opens a Database of that engine. */
  databaseUrl: string;
  options: Omit<SqlCeilingOptions, 'signal'>;
}

const send = (m: unknown) => process.send?.(m);
if (process.send === undefined) throw new Error('sqlCeilingProcess: must be started with an IPC channel');
const abort = new AbortController();
// The bench went away (crash, second Ctrl-C): nothing will read the result, so stop now.
process.on('disconnect', () => process.exit(1));
process.on('message', (m: unknown) => {
  if (m === 'stop') {
    abort.abort();
    return;
  }
  const start = m as Start;
  runSqlConsumeLoop(start.databaseUrl, { ...start.options, signal: abort.signal }).then(
    (consumed) => send({ consumed }),
    (error: Error) => send({ error: error.message }),
  );
});
