// The nodes of a private cluster as the cluster faults act on them: kill, start again (rejoin), pause, cut off
// from the others and join back, by node number. The Galera cluster (mariadb/galeraCluster.ts) is one.
import type { GaleraCluster } from '../mariadb/galeraCluster.ts';

export interface ClusterNodes {
  /** Nodes, numbered 1..size. */
  readonly size: number;
  kill(node: number): Promise<void>;
  /** Starts a killed node again; resolves once it is a synced member, with the ms it took. */
  start(node: number): Promise<number>;
  running(node: number): boolean;
  pause(node: number): void;
  resume(node: number): void;
  paused(node: number): boolean;
  /** Cuts the node off from the others' group communication, or joins it back. */
  isolate(node: number, isolated: boolean): Promise<void>;
  /** Resolves once node `node` counts `members` in its component (the others saw the change). */
  waitMembers(node: number, members: number, timeoutMs: number): Promise<void>;
  /** Resolves once every node is a synced member of one primary component of all of them. */
  waitAllSynced(timeoutMs: number): Promise<void>;
}

/** The fault interface of a Galera cluster; `isolated` remembers which nodes are cut off, for healing. */
export function galeraNodes(cluster: GaleraCluster): ClusterNodes & { readonly isolated: ReadonlySet<number> } {
  const isolated = new Set<number>();
  return {
    size: cluster.nodes.length,
    isolated,
    kill: (node) => cluster.node(node).server.kill('SIGKILL'),
    start: (node) => cluster.startNode(node),
    running: (node) => cluster.node(node).server.running,
    pause: (node) => cluster.node(node).server.pause(),
    resume: (node) => cluster.node(node).server.resume(),
    paused: (node) => cluster.node(node).server.isPaused,
    async isolate(node, on) {
      await cluster.isolate(node, on);
      if (on) isolated.add(node);
      else isolated.delete(node);
    },
    waitMembers: (node, members, timeoutMs) => cluster.waitClusterSize(node, members, timeoutMs),
    async waitAllSynced(timeoutMs) {
      for (const n of cluster.nodes) {
        await cluster.waitClusterSize(n.index, cluster.nodes.length, timeoutMs);
        await cluster.waitSynced(n.index, timeoutMs);
      }
    },
  };
}
