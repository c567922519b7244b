// The SQL ceiling's loop in a process of its own (started by runSqlConsumeLoopInProcess), detached into its own
// session as the workers are, so the scheduler treats the two alike: the loop gets the options and sends its
// result over the IPC channel, and stops when told to or when the bench that started it goes away.
import { runSqlConsumeLoop, type SqlCeilingOptions, type SqlLoopResult } from './sqlCeiling.ts';

interface Start {
  /** mysql:// or postgres://: the loop opens a Database of that engine. */
  databaseUrl: string;
  options: Omit<SqlCeilingOptions, 'signal'>;
}

const send = (m: unknown) => process.send?.(m);
if (process.send === undefined) throw new Error('sqlCeilingProcess: must be started with an IPC channel');
const abort = new AbortController();
// The bench reads the database's CPU when the result arrives, then says 'end': until then the loop's
// connection (on PostgreSQL, a backend process whose CPU is lost once it exits) stays open.
let ended: () => void = () => undefined;
const endSaid = new Promise<void>((resolve) => {
  ended = resolve;
});
let reported = false;
// The bench went away: after the result, that is its 'end' (the connection closes cleanly and the process
// exits with nothing left to run); before it (crash, second Ctrl-C), nothing will read the result: stop now.
process.on('disconnect', () => (reported ? ended() : process.exit(1)));
process.on('message', (m: unknown) => {
  if (m === 'stop') {
    abort.abort();
    return;
  }
  if (m === 'end') {
    ended();
    return;
  }
  const start = m as Start;
  const beforeEnd = async (r: SqlLoopResult) => {
    reported = true;
    send(r);
    // Bounded: a bench that never says 'end' does not keep the connection.
    await Promise.race([endSaid, new Promise((r) => setTimeout(r, 5_000).unref())]);
  };
  runSqlConsumeLoop(start.databaseUrl, { ...start.options, signal: abort.signal }, beforeEnd).then(
    (r) => {
      if (!reported) send(r);
    },
    (error: Error) => {
      if (!reported) send({ error: error.message });
    },
  );
});
