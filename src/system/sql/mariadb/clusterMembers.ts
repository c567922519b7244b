// eob_cluster_members: every Galera node a gap prover of this database has seen as a member, by client address.
// A node that has left the primary component may still hold a transaction open and commit it when it rejoins;
// so the cluster-wide gap proof waits while any node of this table is not a member. Kept in the database (it
// replicates like any InnoDB table) so that a restarted worker does not forget a node that was away when it
// started. A node removed for good is taken out by hand: `eob cluster forget <address>`.
import type { SqlExecutor } from '../../types.ts';

const TABLE = '`eob_cluster_members`';

export interface ClusterMember {
  address: string;
  /** wsrep_node_name as the node last reported it. */
  nodeName: string;
  firstSeen: Date;
  lastSeen: Date;
}

export async function createClusterMembersTable(db: SqlExecutor): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    \`address\` VARCHAR(255) NOT NULL PRIMARY KEY,
    \`node_name\` VARCHAR(255) NOT NULL,
    \`first_seen\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    \`last_seen\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
  ) ENGINE=InnoDB`);
}

export async function selectClusterMembers(db: SqlExecutor): Promise<ClusterMember[]> {
  const rows = await db.query<{ address: string; node_name: string; first_seen: Date; last_seen: Date }[]>(
    `SELECT \`address\`, \`node_name\`, \`first_seen\`, \`last_seen\` FROM ${TABLE} ORDER BY \`address\``,
  );
  return rows.map((r) => ({ address: r.address, nodeName: r.node_name, firstSeen: r.first_seen, lastSeen: r.last_seen }));
}

/**
 * Records the members seen now (new ones inserted, known ones' last_seen and name updated). An upsert: two
 * provers recording the same node at once must both succeed (on Galera the loser of a certification conflict
 * gets 1213, which its caller retries with the next proof).
 */
export async function recordClusterMembers(db: SqlExecutor, members: readonly { address: string; nodeName: string }[]): Promise<void> {
  if (members.length === 0) return;
  await db.query(
    `INSERT INTO ${TABLE} (\`address\`, \`node_name\`) VALUES ${members.map(() => '(?, ?)').join(', ')}
     ON DUPLICATE KEY UPDATE \`node_name\` = VALUES(\`node_name\`), \`last_seen\` = CURRENT_TIMESTAMP(6)`,
    members.flatMap((m) => [m.address, m.nodeName]),
  );
}

/** Removes a node for good; false when the table had no such address. */
export async function forgetClusterMember(db: SqlExecutor, address: string): Promise<boolean> {
  const result = await db.query<{ affectedRows?: number }>(`DELETE FROM ${TABLE} WHERE \`address\` = ?`, [address]);
  return (result.affectedRows ?? 0) > 0;
}
