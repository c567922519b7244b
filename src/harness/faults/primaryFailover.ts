// The failover of a primary/replica pair as the `primary-failover` fault performs it, whichever engine runs the
// pair: optionally hold the replica back first (the asynchronous control's way to make its loss certain), SIGKILL
// the primary under load, promote the replica once it has applied what it received, point the virtual address at
// it, and (repeated failovers) rebuild a fresh replica in the place of the dead primary, which never comes back.
import type { ReplicaPair } from '../replication/replicaPair.ts';
import type { TcpProxy } from './tcpProxy.ts';

export interface FailoverPlan {
  /**
   * Hold the replica (it stops receiving) this long before the kill, while the load goes on: every commit the
   * primary acknowledges meanwhile is one the replica lacks (under a synchronous level, commits wait instead).
   * undefined: no hold.
   */
  holdReplicaMs: number | undefined;
  /** After the promotion, build a fresh replica (pairs that offer it), so that the next failover has one. */
  rebuild: boolean;
}

export interface FailoverTarget {
  readonly pair: ReplicaPair;
  /** The virtual address every client connects through. */
  readonly vip: TcpProxy;
  readonly plan: FailoverPlan;
}

export interface FailoverResult {
  detail: string;
  /** performance.now() when the promotion began (the primary is dead: healing starts). */
  healStartedAt: number;
  /** ms from the kill until the virtual address pointed at the promoted node (no primary meanwhile). */
  noPrimaryMs: number;
  /** ms the fresh replica took to catch up; undefined without a rebuild. */
  rebuildMs: number | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function failOver(target: FailoverTarget): Promise<FailoverResult> {
  const { pair, vip, plan } = target;
  const steps: string[] = [];
  // Checked before anything is done: killing the only server would leave no primary to promote.
  if (!pair.nodes.some((n) => n.role === 'replica')) {
    throw new Error(`primary-failover: the pair has no replica to promote (roles: ${pair.nodes.map((n) => n.role).join(', ')}); a pair that cannot rebuild one fails over once`);
  }
  if (plan.holdReplicaMs !== undefined) {
    await pair.holdReplica();
    await sleep(plan.holdReplicaMs);
    steps.push(`replica held ${plan.holdReplicaMs} ms`);
  }
  const old = pair.primary;
  if (old === undefined) throw new Error('primary-failover: the pair has no primary to kill');
  const killedAt = performance.now();
  await pair.killPrimary();
  const healStartedAt = performance.now();
  await pair.promoteReplica();
  const promoted = pair.primary;
  if (promoted === undefined) throw new Error('primary-failover: the promotion left no primary');
  const reset = vip.retarget(promoted.port);
  const noPrimaryMs = Math.round(performance.now() - killedAt);
  steps.push(`SIGKILL primary :${old.port}, promoted :${promoted.port}, address moved after ${noPrimaryMs} ms (${reset} connection(s) reset)`);
  let rebuildMs: number | undefined;
  if (plan.rebuild && pair.rebuildReplica !== undefined) {
    rebuildMs = await pair.rebuildReplica();
    steps.push(`fresh replica :${pair.nodes.find((n) => n.role === 'replica')?.port} caught up in ${rebuildMs} ms`);
  }
  return { detail: steps.join('; '), healStartedAt, noPrimaryMs, rebuildMs };
}
