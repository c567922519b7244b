// Publishes counter increments (one message per HTTP request) as one batch: a single autocommit multi-row
// INSERT, or, with de-duplication, one transaction that claims the request ids and inserts only the new ones.
// Every failure says whether anything can have been committed: `not-published` when the statement that commits
// (the INSERT in autocommit, or COMMIT) was never sent or the server answered it with an error, `unknown` when
// it was sent and no answer came (connection lost, query timeout).
import type { OutgoingMessage, SqlExecutor } from './types.ts';
import { randomUUID } from 'node:crypto';
import { describeError, type Database, type DbSession } from './db/database.ts';
import { databaseOf, type DatabaseTarget } from './db/openDatabase.ts';
import { jsonString } from './messageJson.ts';
import type { SqlPublisher } from './pubsub/sqlPublisher.ts';

export interface IncrementRequest {
  counterUuid: string;
  requestId: string;
  /**
   * The request id was made by the server (a fresh random uuid, the client sent none): it is then unique and
   * serves as the message's uuid too, saving a second random uuid per request.
   */
  requestIdGenerated?: boolean;
  /** Lets the caller give up on a request whose batch has not sent anything yet (see takeForSending). */
  gate?: SendGate;
}

/**
 * `sent` turns true just before the first statement carrying the request goes out; until then the caller may
 * set `cancelled`, and the request is left out of its batch: certain never to be published.
 */
export interface SendGate {
  sent: boolean;
  cancelled: boolean;
}

/** What happened to one request of a batch. */
export type PublishOutcome =
  | { kind: 'published' }
  /** De-duplication found the request id already published for this counter: no new message. */
  | { kind: 'duplicate' }
  /** De-duplication found the request id bound to another counter: nothing published. */
  | { kind: 'conflict'; boundCounterUuid: string }
  /** This request alone failed (a contested request id); the rest of its batch went on. */
  | { kind: 'failed'; error: PublishError };

/**
 * - not-published: nothing of the batch can commit any more (safe to retry, even without de-duplication);
 * - unknown: the committing statement was sent and its answer never came: it may have committed.
 */
export type FailureOutcome = 'not-published' | 'unknown';

export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    readonly outcome: FailureOutcome,
    override readonly cause: unknown,
  ) {
    super(describeError(cause));
  }
}

export interface PublishLimits {
  /** The driver's per-query timeout for each statement (its connection is then destroyed: it may still be busy). */
  queryTimeoutMs: number;
  /** Waiting for a pool connection (a free one, or a new one's connect) at most; nothing is sent meanwhile. */
  acquireTimeoutMs: number;
}

/** The message the server publishes per request: payload {counter_uuid}, metadata {request_id}; with de-duplication its uuid is the request id, so retries share it, and so it is when the server made the request id itself. */
export function incrementMessage(request: IncrementRequest, uuidFromRequestId: boolean): OutgoingMessage {
  return {
    uuid: uuidFromRequestId || request.requestIdGenerated === true ? request.requestId : randomUUID(),
    payload: { counter_uuid: request.counterUuid },
    metadata: { request_id: request.requestId },
    // The same text JSON.stringify makes of the two objects above (keys in the same order), built without it.
    json: {
      payload: `{"counter_uuid":${jsonString(request.counterUuid)}}`,
      metadata: `{"request_id":${jsonString(request.requestId)}}`,
    },
  };
}

const PUBLISHED: PublishOutcome = Object.freeze({ kind: 'published' });
const DUPLICATE: PublishOutcome = Object.freeze({ kind: 'duplicate' });
const CANCELLED: PublishOutcome = Object.freeze({
  kind: 'failed',
  error: new PublishError('not-published', new Error('the request was cancelled before its batch was sent')),
});

/**
 * Called synchronously right before a batch's first statement is sent (no timer can run in between): leaves
 * out the cancelled requests and marks the others sent.
 */
function takeForSending(requests: readonly IncrementRequest[]): IncrementRequest[] {
  const live: IncrementRequest[] = [];
  for (const r of requests) {
    if (r.gate?.cancelled === true) continue;
    if (r.gate !== undefined) r.gate.sent = true;
    live.push(r);
  }
  return live;
}

/** The outcomes of the live requests, in the order of the whole batch, CANCELLED for the others. */
function spread(requests: readonly IncrementRequest[], live: readonly IncrementRequest[], outcomes: readonly PublishOutcome[]): PublishOutcome[] {
  const byRequest = new Map<IncrementRequest, PublishOutcome>();
  live.forEach((r, i) => byRequest.set(r, outcomes[i] as PublishOutcome));
  return requests.map((r) => byRequest.get(r) ?? CANCELLED);
}

async function connect(db: Database, acquireTimeoutMs: number): Promise<DbSession> {
  try {
    return await db.session(acquireTimeoutMs);
  } catch (error) {
    // No connection, so nothing was sent.
    throw new PublishError('not-published', error);
  }
}

/**
 * One autocommit INSERT for the batch: when it returns, every row in it has committed. A batch larger than one
 * INSERT may carry (PostgreSQL's parameter cap) goes as several INSERTs in one transaction, so it stays atomic.
 */
export async function publishIncrements(
  target: DatabaseTarget,
  publisher: SqlPublisher,
  topic: string,
  requests: readonly IncrementRequest[],
  limits: PublishLimits,
): Promise<PublishOutcome[]> {
  const db = databaseOf(target);
  const conn = await connect(db, limits.acquireTimeoutMs);
  let broken = false;
  try {
    const live = takeForSending(requests);
    const split = live.length > publisher.engine.maxMessagesPerInsert;
    // A failure inside the split transaction leaves it open: the session is destroyed, which rolls it back.
    if (split) broken = true;
    const tx = conn.executor(limits.queryTimeoutMs);
    if (split) await conn.begin('READ COMMITTED', limits.queryTimeoutMs);
    if (live.length > 0) await publisher.publish(topic, live.map((r) => incrementMessage(r, false)), tx);
    if (split) await tx.query('COMMIT');
    broken = false;
    return spread(requests, live, live.map(() => PUBLISHED));
  } catch (error) {
    if (db.refused(error)) throw new PublishError('not-published', error);
    broken = true;
    throw new PublishError('unknown', error);
  } finally {
    if (broken) conn.destroy();
    else conn.release();
  }
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
 * while the first was in flight) are duplicates; a request whose id is bound to another counter is a conflict.
 *
 * A lock wait on a claimed id (another transaction holds it: a retry racing its first attempt, or any
 * long-running session) ends after the session's short innodb_lock_wait_timeout (set by the server's pool).
 * The batch is then rolled back and its requests are sent again one transaction each, so only the contested
 * request fails; the others are published.
 */
export async function publishIncrementsOnce(
  target: DatabaseTarget,
  publisher: SqlPublisher,
  topic: string,
  requests: readonly IncrementRequest[],
  limits: PublishLimits,
  onDeadlockRetry: () => void = () => undefined,
): Promise<PublishOutcome[]> {
  const db = databaseOf(target);
  const conn = await connect(db, limits.acquireTimeoutMs);
  const session = { broken: false };
  try {
    const live = takeForSending(requests);
    if (live.length === 0) return spread(requests, live, []);
    try {
      return spread(requests, live, await withDeadlockRetry(db, onDeadlockRetry, () => dedupTransaction(db, conn, session, publisher, topic, live, limits)));
    } catch (error) {
      if (!(error instanceof PublishError) || error.outcome !== 'not-published' || session.broken) throw error;
      if (live.length === 1 || db.classify(error.cause) !== 'lock-wait-timeout') throw error;
    }
    const outcomes: PublishOutcome[] = [];
    for (const request of live) {
      if (session.broken) {
        // The connection died on an earlier request: nothing was sent for this one.
        outcomes.push({ kind: 'failed', error: new PublishError('not-published', new Error('connection lost while publishing the rest of the batch')) });
        continue;
      }
      try {
        const [one] = await withDeadlockRetry(db, onDeadlockRetry, () => dedupTransaction(db, conn, session, publisher, topic, [request], limits));
        outcomes.push(one as PublishOutcome);
      } catch (error) {
        if (!(error instanceof PublishError)) throw error;
        outcomes.push({ kind: 'failed', error });
      }
    }
    return spread(requests, live, outcomes);
  } finally {
    if (session.broken) conn.destroy();
    else conn.release();
  }
}

async function withDeadlockRetry<T>(db: Database, onRetry: () => void, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      const retry = error instanceof PublishError && error.outcome === 'not-published' && db.classify(error.cause) === 'deadlock';
      if (!retry || attempt >= DEDUP_ATTEMPTS) throw error;
      onRetry();
    }
  }
}

async function dedupTransaction(
  db: Database,
  conn: DbSession,
  session: { broken: boolean },
  publisher: SqlPublisher,
  topic: string,
  requests: readonly IncrementRequest[],
  limits: PublishLimits,
): Promise<PublishOutcome[]> {
  const tx: SqlExecutor = conn.executor(limits.queryTimeoutMs);
  let commitSent = false;
  try {
    await conn.begin('READ COMMITTED', limits.queryTimeoutMs);
    const claimed = await publisher.engine.claimRequestIds(tx, { topic, claims: requests, token: randomUUID() });
    const outcomes: PublishOutcome[] = [];
    const toPublish: OutgoingMessage[] = [];
    for (const r of requests) {
      const claim = claimed.get(r.requestId);
      if (claim === undefined) throw new Error(`request id ${r.requestId} missing from the dedup table right after its claim`);
      if (claim.counterUuid !== undefined && claim.counterUuid !== r.counterUuid) {
        outcomes.push({ kind: 'conflict', boundCounterUuid: claim.counterUuid });
      } else if (claim.mine) {
        // Only the first request carrying the id publishes; a copy later in the batch is its duplicate.
        claimed.set(r.requestId, { ...claim, mine: false });
        toPublish.push(incrementMessage(r, true));
        outcomes.push(PUBLISHED);
      } else {
        outcomes.push(DUPLICATE);
      }
    }
    if (toPublish.length > 0) await publisher.publish(topic, toPublish, tx);
    commitSent = true;
    await tx.query('COMMIT');
    return outcomes;
  } catch (error) {
    if (commitSent && !db.refused(error)) {
      session.broken = true;
      throw new PublishError('unknown', error);
    }
    // COMMIT never sent (or refused): the transaction cannot commit. Roll back to reuse the session; if that
    // fails, destroying the connection makes the server roll it back.
    if (!session.broken && db.classify(error) !== 'connection' && db.classify(error) !== 'server-restarting') {
      await tx.query('ROLLBACK').catch(() => {
        session.broken = true;
      });
    } else session.broken = true;
    throw new PublishError('not-published', error);
  }
}
