// The SQL ceiling's loop on a thread of its own (started by runSqlConsumeLoopInThread): its own event loop, as
// a worker process has, so the bench's sampler and timers on the main thread do not slow the ceiling down.
import { parentPort, workerData } from 'node:worker_threads';
import { runSqlConsumeLoop, type SqlCeilingOptions } from './sqlCeiling.ts';

interface ThreadInput {
  /** mysql:// or postgres://: the thread opens its own Database of that engine. */
  databaseUrl: string;
  options: Omit<SqlCeilingOptions, 'signal'>;
}

const port = parentPort;
if (port === null) throw new Error('sqlCeilingThread: must run as a worker thread');
const input = workerData as ThreadInput;
const abort = new AbortController();
port.on('message', (m: unknown) => {
  if (m === 'stop') abort.abort();
});
runSqlConsumeLoop(input.databaseUrl, { ...input.options, signal: abort.signal }).then(
  (consumed) => port.postMessage({ consumed }),
  (error: Error) => port.postMessage({ error: error.message }),
);
