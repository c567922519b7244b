// The peer job queues by name (peerSpec.ts names them; peerQueue.ts says what each provides).
import { graphileWorkerQueue } from './graphileWorker.ts';
import { pgBossQueue } from './pgBoss.ts';
import type { PeerQueue } from './peerQueue.ts';
import type { PeerName } from './peerSpec.ts';

export const PEER_QUEUES: Readonly<Record<PeerName, PeerQueue>> = {
  'graphile-worker': graphileWorkerQueue,
  'pg-boss': pgBossQueue,
};
