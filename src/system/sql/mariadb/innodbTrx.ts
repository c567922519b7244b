// The one query on information_schema.INNODB_TRX: which InnoDB transactions that write are open right now.
// Used by the `innodb-trx` gap rule (the control) and by the allocator-stall fault's evidence; the default gap
// proof does not read it (see gapTracker.ts).
import { randomUUID } from 'node:crypto';
import type { SqlExecutor } from '../../types.ts';
import type { OpenWriters } from '../gapProbes.ts';

/**
 * InnoDB serves INNODB_TRX from a cache that is refreshed only when nobody has read it for 100 ms
 * (CACHE_MIN_IDLE_TIME_US in trx0i_s.cc): a reader that polls faster than that, or two readers taking turns,
 * keep getting the same old snapshot, which can predate a transaction that is open now. Measured here: a
 * read 0-99 ms after another returns the old snapshot, one 150 ms after a fresh one. Readers must leave at
 * least this long between reads, and must check that what they got is fresh (see readTransactionSnapshot).
 * Another reader polling faster than this (a monitoring tool, another subscriber) freezes the cache for good.
 *
 * Truncation: the cache has a memory limit (16 MB); a snapshot over it is cut short and InnoDB only writes a
 * warning to the server's error log, nothing the client can see. A cut-off snapshot can miss a writer and
 * still pass the freshness check. Not detected here; it takes thousands of open transactions to reach.
 */
export const INNODB_TRX_CACHE_IDLE_MS = 100;

/**
 * Ids of read-only transactions are not real ids: InnoDB prints 0 or a pseudo id at or above 2^48 (the
 * trx_t address | max_trx_id + 1). A transaction that allocated an offset has inserted, so it has a real id.
 */
const FIRST_PSEUDO_TRX_ID = 2n ** 48n;

/** One row of INNODB_TRX: a transaction and the connection that runs it. */
export interface OpenTransaction {
  trxId: bigint;
  /** PROCESSLIST ID (CONNECTION_ID()) of the connection that runs it. */
  connectionId: number;
  /** False for the 0 / pseudo ids of a transaction that has not written (or not yet registered as a writer). */
  realId: boolean;
}

export interface TransactionSnapshot {
  /** True when the snapshot was taken during this call (see readTransactionSnapshot). */
  fresh: boolean;
  /** Every open transaction, the probe's own excluded. */
  transactions: OpenTransaction[];
}

/**
 * Opens a transaction of its own, then reads INNODB_TRX with a statement that starts with a token used once.
 * The snapshot is fresh, filled during this very statement, only if the probe's own row shows that statement
 * as its trx_query (InnoDB copies each transaction's current statement text, its first 1,024 characters, into
 * the cache when it fills it; checked: the own row shows this SELECT when the cache was refilled, and an older
 * statement of the connection when it was not). A row of the own connection alone proves nothing: the
 * connection may have had another transaction open when an old, frozen snapshot was taken. A fresh snapshot
 * includes every transaction open when it was filled, which is after this call began; it may still be
 * truncated (see above). Needs the PROCESS privilege. Must run outside any other transaction.
 */
export async function readTransactionSnapshot(db: SqlExecutor): Promise<TransactionSnapshot> {
  const token = `eob-trx-probe-${randomUUID()}`;
  // WITH CONSISTENT SNAPSHOT starts the InnoDB transaction now, not at its first read.
  await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  try {
    const rows = await db.query<{ trx_id: string | number; thread: string | number; own: number; query: string | null }[]>(
      `SELECT /* ${token} */ \`trx_id\`, \`trx_mysql_thread_id\` AS thread, \`trx_mysql_thread_id\` = CONNECTION_ID() AS own, ` +
        '`trx_query` AS query FROM information_schema.INNODB_TRX',
    );
    const transactions: OpenTransaction[] = [];
    let fresh = false;
    for (const row of rows) {
      if (Number(row.own) === 1) {
        if (row.query?.includes(token) === true) fresh = true;
        continue;
      }
      const trxId = BigInt(row.trx_id);
      transactions.push({ trxId, connectionId: Number(row.thread), realId: trxId > 0n && trxId < FIRST_PSEUDO_TRX_ID });
    }
    return { fresh, transactions };
  } finally {
    await db.query('COMMIT');
  }
}

/**
 * Fails with 1227 (access denied) unless the user has the PROCESS privilege, which reading INNODB_TRX needs.
 * The gap proof reads PROCESSLIST, which without that privilege quietly shows only the user's own
 * connections: this is how it learns that it cannot prove anything.
 */
export async function requireProcessPrivilege(db: SqlExecutor): Promise<void> {
  await db.query('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX');
}

/** The real ids of the open writing transactions, from a snapshot proven fresh or not (see `fresh`). */
export async function probeOpenWriters(db: SqlExecutor): Promise<OpenWriters> {
  const snapshot = await readTransactionSnapshot(db);
  return { fresh: snapshot.fresh, writers: new Set(snapshot.transactions.filter((t) => t.realId).map((t) => t.trxId.toString())) };
}
