// Publishes counter increments (one message per HTTP request) as one batch: a single autocommit multi-row
// INSERT, or, with de-duplication, one transaction that claims the request ids and inserts only the new ones.
import { randomUUID } from 'node:crypto';
import type { Pool } from './db/pool.ts';
import { beginTransaction, executorOf } from './db/pool.ts';
import { classifyError } from './db/errors.ts';
import type { OutgoingMessage } from './pubsub/types.ts';
import type { MysqlPublisher } from './pubsub/mysqlPublisher.ts';
import { claimRequestIds } from './sql/mariadb/publishDedupTable.ts';

export interface IncrementRequest {
  counterUuid: string;
  requestId: string;
}

export interface PublishOutcome {
  /** True when de-duplication found the request id already published: no new message was written. */
  duplicate: boolean;
}

/** The message DESIGN 4.4 specifies; with de-duplication its uuid is the request id, so retries share it. */
export function incrementMessage(request: IncrementRequest, uuidFromRequestId: boolean): OutgoingMessage {
  return {
    uuid: uuidFromRequestId ? request.requestId : randomUUID(),
    payload: { counter_uuid: request.counterUuid },
    metadata: { request_id: request.requestId },
  };
}

const NOT_DUPLICATE: PublishOutcome = Object.freeze({ duplicate: false });

/** One autocommit INSERT for the batch: when it returns, every row in it has committed. */
export async function publishIncrements(
  publisher: MysqlPublisher,
  topic: string,
  requests: readonly IncrementRequest[],
): Promise<PublishOutcome[]> {
  await publisher.publish(topic, requests.map((r) => incrementMessage(r, false)));
  return requests.map(() => NOT_DUPLICATE);
}

/**
 * Deadlocks between two batches claiming overlapping ids are possible even with sorted ids (InnoDB's
 * duplicate-key check takes a shared lock, then upgrades); the loser is rolled back whole, so retrying it is
 * safe. 3 attempts bound the work a pathological client (the same ids over and over) can cause.
 */
const DEDUP_ATTEMPTS = 3;

/**
 * One transaction: claim the request ids in the side table, INSERT messages for the ids this transaction
 * claimed first, COMMIT. The messages INSERT comes last so the offsets it allocates stay uncommitted for as
 * short a time as possible (offset readers wait for, or must step carefully around, uncommitted offsets).
 * READ COMMITTED: the claim needs only row locks, and gap locks would make concurrent batches block each other.
 * The first request of the batch carrying a claimed id is the one published; later ones (a retry that arrived
 * while the first was in flight) are duplicates.
 */
export async function publishIncrementsOnce(
  pool: Pool,
  publisher: MysqlPublisher,
  topic: string,
  requests: readonly IncrementRequest[],
): Promise<PublishOutcome[]> {
  const conn = await pool.getConnection();
  let broken = false;
  try {
    for (let attempt = 1; ; attempt += 1) {
      const tx = executorOf(conn);
      try {
        await beginTransaction(conn, 'READ COMMITTED');
        const claimed = await claimRequestIds(tx, topic, requests.map((r) => r.requestId), randomUUID());
        const outcomes: PublishOutcome[] = [];
        const toPublish: OutgoingMessage[] = [];
        for (const r of requests) {
          if (claimed.delete(r.requestId)) {
            toPublish.push(incrementMessage(r, true));
            outcomes.push(NOT_DUPLICATE);
          } else {
            outcomes.push({ duplicate: true });
          }
        }
        if (toPublish.length > 0) await publisher.publish(topic, toPublish, tx);
        await conn.query('COMMIT');
        return outcomes;
      } catch (error) {
        const kind = classifyError(error);
        if (kind === 'connection' || kind === 'server-restarting') {
          broken = true;
          throw error;
        }
        await conn.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (broken || (kind !== 'deadlock' && kind !== 'lock-wait-timeout') || attempt >= DEDUP_ATTEMPTS) throw error;
      }
    }
  } finally {
    if (broken) conn.destroy();
    else conn.release();
  }
}
