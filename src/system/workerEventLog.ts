// The worker's event log (--event-log FILE): one JSON line per consumer event (consumerEvents.ts) with the
// wall-clock time and the process id, appended with one write(2) each. Synchronous on purpose: a worker killed
// with SIGKILL right after reading a batch must still have told the log it read it, and a buffered stream
// would lose exactly those lines. Writes per batch, not per message: measured here, 4-6 us a line (100,000
// JSON lines of a read event, load average ~11-14), two lines a batch, so under 0.02 us a message at batch 1000
// and ~12 us at batch 1, against the 70-100 us a message costs end to end. Several workers may append to one
// file, each line going in whole (O_APPEND).
import { closeSync, openSync, writeSync } from 'node:fs';
import type { ConsumerEvent } from './pubsub/consumerEvents.ts';

/** A line of the file: the event, plus `t` (Date.now() ms) and `p` (the worker's pid). */
export type EventLogLine = ConsumerEvent & { t: number; p: number };

export interface EventLog {
  write: (event: ConsumerEvent) => void;
  close: () => void;
}

export function openEventLog(path: string): EventLog {
  let fd: number | undefined = openSync(path, 'a', 0o600);
  return {
    write(event) {
      if (fd === undefined) return;
      writeSync(fd, `${JSON.stringify({ t: Date.now(), p: process.pid, ...event })}\n`);
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
