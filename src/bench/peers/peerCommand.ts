// The command line and environment of a peer's process (peerProcess.ts), for whoever starts it as a child.
import { fileURLToPath } from 'node:url';
import { childEnvironment } from '../../config.ts';
import type { PeerSpec } from './peerSpec.ts';

export interface PeerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The line the process prints once its worker runs. */
  readyPattern: RegExp;
}

/**
 * node with tsx's loader on peerProcess.ts, the peer and task as flags; the database URL travels in
 * DATABASE_URL, never on the command line (a command line is world-readable, the URL carries the password).
 */
export function peerCommand(spec: PeerSpec, databaseUrl: string): PeerCommand {
  return {
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./peerProcess.ts', import.meta.url)), '--peer', spec.peer, '--task', spec.task],
    env: childEnvironment({ DATABASE_URL: databaseUrl, MYSQL_URL: undefined, EOB_FAILPOINTS: undefined }),
    readyPattern: /^peer started/,
  };
}
