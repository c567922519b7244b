// Processes for the directory-sweep tests: a `sleep` that runs until the test kills it, or one that has
// already exited, each with its identity (pid and start time) as a directory's owner record holds it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { processIdentity, type ProcessIdentity } from '../../src/harness/processIdentity.ts';

/** The part of a test context these helpers use: what to run when the test ends. */
export type After = { after: (fn: () => void | Promise<void>) => void };

/** A `sleep` that runs until the test kills it, and its identity. */
export async function liveProcess(t: After): Promise<{ identity: ProcessIdentity; end: () => Promise<void> }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => void child.kill('SIGKILL'));
  const identity = await processIdentity(child.pid!);
  assert.ok(identity !== undefined);
  return {
    identity,
    end: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The identity of a process that has exited and been reaped: its pid is free. */
export async function exitedProcess(t: After): Promise<ProcessIdentity> {
  const live = await liveProcess(t);
  await live.end();
  return live.identity;
}
