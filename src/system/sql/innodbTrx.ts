// The one query on information_schema.INNODB_TRX: which InnoDB transactions that write are open right now.
// The offset subscriber uses it to prove that a gap in the offsets is permanent (DESIGN 4.1, contiguity).
import type { SqlExecutor } from '../pubsub/types.ts';

/**
 * InnoDB serves INNODB_TRX from a cache that is refreshed only when nobody has read it for 100 ms
 * (CACHE_MIN_IDLE_TIME_US in trx0i_s.cc): a reader that polls faster than that, or two readers taking turns,
 * keep getting the same old snapshot, which can predate a transaction that is open now. Measured here: a
 * read 0-99 ms after another returns the old snapshot, one 150 ms after a fresh one. Readers must leave at
 * least this long between reads, and must check that what they got is fresh (see probeOpenWriters).
 */
export const INNODB_TRX_CACHE_IDLE_MS = 100;

/**
 * Ids of read-only transactions are not real ids: InnoDB prints 0 or a pseudo id at or above 2^48 (the
 * trx_t address | max_trx_id + 1). A transaction that allocated an offset has inserted, so it has a real id.
 */
const FIRST_PSEUDO_TRX_ID = 2n ** 48n;

export interface OpenWriters {
  /** True when the snapshot was taken after this call began (it shows the probe's own transaction). */
  fresh: boolean;
  /** Real ids of open transactions, the probe's own excluded. */
  writers: Set<string>;
}

/** One row of INNODB_TRX: a transaction and the connection that runs it. */
export interface OpenTransaction {
  trxId: bigint;
  /** PROCESSLIST ID (CONNECTION_ID()) of the connection that runs it. */
  connectionId: number;
  /** False for the 0 / pseudo ids of a transaction that has not written (or not yet registered as a writer). */
  realId: boolean;
}

export interface TransactionSnapshot {
  /** True when the snapshot was taken after this call began (it shows the probe's own transaction). */
  fresh: boolean;
  /** Every open transaction, the probe's own excluded. */
  transactions: OpenTransaction[];
}

/**
 * Opens a transaction of its own, then reads INNODB_TRX. If the snapshot shows that transaction, it was taken
 * after the probe began, so it includes every transaction open at that moment: that is the proof of freshness
 * the cache otherwise does not give. Needs the PROCESS privilege. Must run outside any other transaction.
 */
export async function readTransactionSnapshot(db: SqlExecutor): Promise<TransactionSnapshot> {
  // WITH CONSISTENT SNAPSHOT starts the InnoDB transaction now, not at its first read.
  await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  try {
    const rows = await db.query<{ trx_id: string | number; thread: string | number; own: number }[]>(
      'SELECT `trx_id`, `trx_mysql_thread_id` AS thread, `trx_mysql_thread_id` = CONNECTION_ID() AS own FROM information_schema.INNODB_TRX',
    );
    const transactions: OpenTransaction[] = [];
    let fresh = false;
    for (const row of rows) {
      if (Number(row.own) === 1) {
        fresh = true;
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

/** The real ids of the open writing transactions, from a snapshot proven fresh or not (see `fresh`). */
export async function probeOpenWriters(db: SqlExecutor): Promise<OpenWriters> {
  const snapshot = await readTransactionSnapshot(db);
  return { fresh: snapshot.fresh, writers: new Set(snapshot.transactions.filter((t) => t.realId).map((t) => t.trxId.toString())) };
}
