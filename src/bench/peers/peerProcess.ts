// The process a peer's worker runs in (peerCommand.ts builds its command line): started by the bench or the
// chaos harness as a child of its own, so its CPU is read apart from theirs (from /proc, by the parent), and so
// it can be SIGKILLed. It starts the peer's worker on the task named by its flags against DATABASE_URL, says
// `peer started` once the worker runs, and stops it the peer's graceful way on SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { readEnvironment } from '../../config.ts';
import { PEER_QUEUES } from './peers.ts';
import { peerVersion, validatePeerSpec } from './peerSpec.ts';

const { values } = parseArgs({ options: { peer: { type: 'string' }, task: { type: 'string' } }, strict: true });
const spec = validatePeerSpec('peer process', { peer: values.peer, task: values.task });
const databaseUrl = readEnvironment().databaseUrl;
if (databaseUrl === undefined) throw new Error('peer process: DATABASE_URL is not set (the parent passes the private server\'s URL there)');
const log = (line: string) => process.stderr.write(`${line}\n`);
const worker = await PEER_QUEUES[spec.peer].startWorker(databaseUrl, spec.task, log);
process.stdout.write(`peer started: ${spec.peer} ${peerVersion(spec.peer)}, task ${spec.task}\n`);
let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping ${spec.peer}`);
  worker.stop().then(
    () => process.exit(0),
    (error: Error) => {
      log(`stop failed: ${error.message}`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
