// Decides when a hole in the offsets may be stepped over: on a proof that it is permanent, or, named as such,
// after a bounded wait.
//
// THE PROOF (gap proof `statements`, the default). Offsets are allocated at INSERT and become visible at COMMIT,
// in any order. InnoDB allocates the offset (handler::update_auto_increment, under the table's autoinc mutex)
// inside ha_innobase::write_row BEFORE row_insert_for_mysql starts the transaction and registers it as a
// writer with a real trx id; between the two the inserting connection holds an offset and is absent from
// INNODB_TRX, and its row is not in the table yet. So "every writer in a fresh INNODB_TRX snapshot has ended"
// is not enough (measured: a thread stopped in that window for 300 ms at every 20th insert, 16 publishers x 150
// rows: that rule lost 14-25 of 2,400). The proof below also covers that window, and reads no INNODB_TRX.
//
// Facts used (MariaDB/InnoDB):
//  F1 The auto-increment counter only grows; an offset is handed out once, by one statement of one connection,
//     and is used, if ever, by a row that same statement inserts (a multi-row or INSERT ... SELECT statement may
//     reuse a value of its own failed row; a reserved but unused value stays a hole).
//  F2 A statement that allocated g and inserted its row has written that record into the table's clustered
//     index before the statement ends (a failed row is removed again by the statement itself). So once the
//     statement has ended, g's record is in the index, or g will never have one (F1). (The one deferred write,
//     InnoDB's bulk insert into an EMPTY table, buffers rows until commit but holds an exclusive lock on the
//     whole table meanwhile, which step 2 meets like a record lock: checked on 10.11, its NOWAIT read fails
//     with 1205 while such a transaction is open.)
//  F3 information_schema.PROCESSLIST is read live; QUERY_ID is the server-wide, never reused number of the
//     statement (or stored-program sub-statement) a connection is running. It changes, and COMMAND becomes
//     Sleep, only between statements, never inside one write_row call; a connection leaves the list only after
//     its last statement ended. Each execution of a prepared statement is a statement of its own here (COMMAND
//     Execute, a new QUERY_ID each time: read on 10.11), and the publishers' INSERT is one.
//  F4 A record written by a transaction that has not ended is locked by that transaction: InnoDB keeps an
//     implicit exclusive lock (the record's DB_TRX_ID names an active transaction), and a locking read by
//     another transaction that reaches the record converts it into an explicit lock of the writer and must
//     wait for it (with NOWAIT it fails at once: MariaDB 10.11 reports error 1205). The lock lasts until the
//     writer commits (its changes are then visible to every read view opened afterwards: the commit marks the
//     transaction committed before it releases its locks) or until its rollback has removed the record (a
//     transaction that is rolling back is still active and keeps its locks; undoing an insert deletes the
//     record from the index). A statement rolled back on its own (an error, ROLLBACK TO SAVEPOINT) removes its
//     records the same way, under the same lock. A record delete-marked by a DELETE not yet committed is locked
//     likewise; a committed delete-marked or purged record is just absent (only prune deletes, below every
//     group's acked offset, so never in a range read here). Transactions a server restart recovers keep their
//     records locked until the background rollback of each has finished.
//
// Steps, for a hole seen by a consume read R0 that also saw a higher offset M (the highest offset R0 returned):
//  0. Every offset g below M was allocated before M (F1) and M's row existed at R0, so g was allocated before
//     R0 ended; so before P1 below, which runs after R0 on the same connection. `coversBelow` = M: one proof
//     covers every hole below M, not only the first (with 2% of inserts rolled back, proving holes one at a
//     time let the backlog grow to 10,000-20,000 messages).
//  1. P1: read PROCESSLIST; record (ID, QUERY_ID) of every connection inside a statement (not Sleep; see
//     processlist.ts for what else is left out, and why). Re-read until each has left that statement: gone,
//     Sleep, or another QUERY_ID. Call the moment that is seen T1. The allocator X of any g was, at its row of
//     P1, either inside the statement that allocated g (then recorded, and by T1 that statement has ended, F3)
//     or already past it. So after T1 g's record is in the clustered index, under X's lock while X's
//     transaction lasts, or never will be (F2).
//  2. After T1, in a new short transaction at READ COMMITTED, a locking read of every row with offset in
//     [first hole, M), LOCK IN SHARE MODE NOWAIT (messagesTable.ts, lockOffsetRangeNowait):
//     - a lock error: some row of the range is still held by a transaction that has not ended, maybe X's:
//       wait, and read again later (step 1 is not repeated: what it established holds from T1 on);
//     - a row below the lowest offset the consume read saw: the head hole has filled since R0: wait, the next
//       consume read takes it (no proof is needed for a row that is there);
//     - otherwise (call it T2): every offset of the range the read did not return has no record and no lock
//       (F4): X never wrote it, or X's transaction rolled it back and removed it; by F1 nobody will write it
//       later. Permanent. The rows it did return are committed (F4) and visible to any later read view.
//     At READ COMMITTED a locking read takes record locks only, no gap locks: it never blocks an INSERT, so
//     publishers never wait for the probe (the record locks of the rows read last for its few ms; only a
//     writer that UPDATEs or DELETEs a message row could meet them). NOWAIT because the probe runs on the
//     consumer's only connection: waiting there (up to innodb_lock_wait_timeout, 50 s) for a publisher that
//     holds its transaction open would stall the whole consumer; a lock error is an answer, asked again later.
//  3. The decision (pass every hole below `coversBelow`) is applied only by the reads the consume loop takes
//     after it returns, each in a new transaction opened after T2: a committed g is visible there (F4), and a
//     g still absent is permanent. Offsets at or above M are not covered: their holes wait for a new proof.
// Isolation levels do not enter steps 0-2 (PROCESSLIST is not transactional; step 2's read is a locking read
// at READ COMMITTED in a transaction of its own, whatever the consumer's level); step 3 holds at every level
// because the deciding read is always in a transaction that starts after the proof.
//
// Step 2 was, before, "wait until every writer of a fresh INNODB_TRX snapshot has ended". INNODB_TRX comes from
// a cache that is not refilled while anyone reads it more often than every 100 ms, and "fresh" was judged by
// the snapshot holding a row of the probe's own connection, which an old snapshot does whenever that connection
// had another transaction open when it was taken. Measured: with a second connection reading INNODB_TRX every
// 40 ms, a publisher's BEGIN; INSERT; (3 s); COMMIT was passed as "never committed (proof: statements)" within
// 31 ms and lost, at READ COMMITTED and at REPEATABLE READ. The cache is also cut short silently past 16 MB.
// Step 2 now asks the one thing the proof needs, whether g's record exists or is held, from the table itself.
//
// Narrowing step 1 by start time (TIME_MS against a server timestamp of R0, or QUERY_ID against the probe's
// own) was considered and not done: P1 runs right after the read whose offsets it covers and statements that
// start after P1 are never waited on, so only a statement begun in the few ms between R0 and P1 could be
// dropped. The statements that hurt liveness (a report, a SELECT SLEEP, a metadata-lock wait) began before R0
// and may have allocated the hole, so no start-time rule can drop them. (TIME_MS is also measured with the
// server's monotonic timer, NOW(6) with its wall clock: comparing them would add a clock assumption.)
//
// Checked and holding: a statement killed mid-way stays listed (COMMAND Killed, same QUERY_ID) until it ends;
// QUERY_ID and connection ids restart after a server restart, which can only make step 1 wait longer; the
// counter after a restart is above every offset whose row was written, so no offset below a visible one is
// handed out again; no step reads a clock (the bound's clock jumps count at most MAX_COUNTED_STEP_MS per look).
//
// NOT covered (named, not proven): an INSERT or UPDATE that writes an explicit offset below the counter (not an
// allocation: it may appear at any time); replication appliers (explicit offsets, in the primary's commit order):
// on a server whose applier runs, the proof `statements` refuses to start (REPLICA_REFUSAL; measured: the same
// proof without that check, on a replica, passed a hole that the primary's open transaction filled later, and
// lost it), but a replica whose applier is stopped is not recognised; a decision (and a proof under way) lives only
// as long as the connection it was made on: the offset subscriber forgets it when its connection is replaced,
// which a failover always does (measured: kept across an asynchronous failover, a decision covering offsets
// 1-10 made on the old primary passed a hole on the promoted node, whose counter had restarted at 1, and lost
// the row that filled it later; keepGapDecisionsAcrossSessions is that control); Galera; the PROCESS privilege
// granted or revoked after the consumer's first proof; the counter moved back (TRUNCATE, ALTER TABLE ... AUTO_INCREMENT)
// while consumers run; an event-scheduler statement whose PROCESSLIST row shows COMMAND Daemon with no text.
// Bounds, not proofs (see THE BOUND): an XA transaction left PREPARED (for example by a client that
// disconnected) keeps its record locked forever, so step 2 waits until the bound passes the hole, and a later
// XA COMMIT loses that message; an unrelated long statement running at P1 keeps step 1 waiting. (READ
// UNCOMMITTED has a hazard of its own, outside this proof: a consume read may handle a row that later rolls
// back.) The gap proof `innodb-trx` (the previous rule: "every writer of a fresh INNODB_TRX snapshot taken
// after first sight has ended", no step 1) misses the allocator window and is kept only as a control; its
// freshness check now requires the probe's own statement in the snapshot (see innodbTrx.ts).
//
// THE BOUND (`timeoutMs`). Step 1 waits on statements this consumer does not control, step 2 on transactions
// holding a row of the range: an unrelated long statement blocks step 1, and a publisher's transaction left
// open (idle, or XA PREPARED) step 2, each for as long as it lasts. So a hole that has waited `timeoutMs` is
// passed WITHOUT proof, and recorded as passed by timeout. If its allocator commits later, that message is
// lost: this is a bound, not a proof. Waiting time counts the consumer's own waiting only; a pause of over
// MAX_COUNTED_STEP_MS between two looks (a frozen database or consumer) counts as that much, so a freeze of
// the whole system does not age a hole past the bound at once. A commit that waits for a replica's semi-sync
// acknowledgement (commitsAwaitingReplica) holds its offset, invisible, for as long as the replica is away (no
// fallback to asynchronous replication): while any does when the bound comes due, the hole is not passed and
// its clock restarts (measured: without this, a COMMIT held 6 s by an absent replica was passed by a 3 s bound
// and its row, committed when the replica came back, was never consumed). A commit that enters that wait in the
// instant after the read is not seen: a bound, not a proof. Without the PROCESS privilege (PROCESSLIST then
// shows only the user's own connections, which proves nothing) only the bound applies.
import { ProofInterrupted, type GapProbes, type OffsetRangeLocks, type RunningStatements } from '../sql/gapProbes.ts';

/**
 * How a hole can be proven permanent: `statements` (covers the allocator window; on a Galera node it runs on every
 * member of the cluster), `statements-node-local` (the same proof on the consumer's node only, what it was before
 * it knew clusters: a control, which loses messages published through other nodes) or `innodb-trx` (INNODB_TRX
 * alone, misses the allocator window: a control).
 */
export type GapProof = 'statements' | 'statements-node-local' | 'innodb-trx';
export const GAP_PROOFS: readonly GapProof[] = ['statements', 'statements-node-local', 'innodb-trx'];

/** What passed a hole: one of the proofs, or the bound. */
export type GapPassReason = GapProof | 'timeout';

export interface GapTrackerOptions {
  proof: GapProof;
  /**
   * How long a hole at the head may last before the proof starts reading the server. Almost every hole is a
   * publish in flight that commits within a few ms; probing those would only slow the reader.
   */
  probeDelayMs: number;
  /** The bound: a hole that has waited this long is passed without proof, recorded as `timeout` (ms). */
  timeoutMs: number;
  now?: () => number;
}

/** What the reader should do about a hole that starts at `expected`. */
export type GapDecision =
  /** `reason`: why a proof that spans servers cannot go on now (a node unreachable, not synced, ...). */
  | { kind: 'wait'; reason?: string }
  | { kind: 'skip'; from: number; to: number; waitedMs: number; passedBy: GapPassReason };

/** What step 2's locking read says about the holes below `coversBelow` (see the argument above). */
export type RangeVerdict =
  /** A row of the range is held by a transaction that has not ended: read again later. */
  | { kind: 'held'; errno: number }
  /** Rows the consume read did not see are there now, below its lowest visible offset: let it read them. */
  | { kind: 'filled'; offsets: number[] }
  /** Every offset of the range without a row is permanent. */
  | { kind: 'permanent'; committed: number };

/** Step 2's decision, from the locking read and the lowest offset the latest consume read returned. Pure. */
export function judgeRangeLocks(read: OffsetRangeLocks, lowestVisible: number): RangeVerdict {
  if (read.kind === 'locked') return { kind: 'held', errno: read.errno };
  const filled = read.offsets.filter((o) => o < lowestVisible);
  return filled.length > 0 ? { kind: 'filled', offsets: filled } : { kind: 'permanent', committed: read.offsets.length };
}

/**
 * Longest pause between two looks at a hole that counts in full toward the bound (ms). The consumer looks every
 * few ms while a hole blocks it; a longer pause means the consumer or the database was frozen, and a frozen
 * allocator must not see its hole aged past the bound by the freeze itself.
 */
const MAX_COUNTED_STEP_MS = 1_000;

/**
 * How often step 2's locking read is repeated while a row of the range is held (ms). Chosen by reasoning: a
 * read that meets a lock costs the consume connection ~1 ms (NOWAIT answers at once, measured 1 ms here), so
 * at most ~5% of its time while a publisher holds a transaction open; a rolled-back insert's record is
 * already gone when its ROLLBACK returns, so such holes pass at the first read and do not wait for this.
 */
const RANGE_LOCK_RETRY_MS = 20;

type Phase =
  | { kind: 'delay' }
  /** Before step 1 on a cluster: until no node can allocate below coversBelow any more. */
  | { kind: 'fence' }
  /** Step 1: connections inside a statement at P1, with the statement's QUERY_ID, not yet seen to move on. */
  | { kind: 'statements'; running: RunningStatements }
  /** Step 2: the locking read of the range, repeated while a row of it is held. */
  | { kind: 'locks'; nextReadAtMs: number }
  /** After step 2 on a cluster: until the consumer's node shows every row the nodes' step 2 returned. */
  | { kind: 'confirm' }
  /** The control: real-id writers of the first fresh snapshot; null until one was read. */
  | { kind: 'writers'; suspects: Set<string> | null };

interface PendingGap {
  offset: number;
  waitedMs: number;
  lastLookMs: number;
  /** Offsets below this are covered by the proof under way (the highest offset read when it began). */
  coversBelow: number;
  phase: Phase;
}

const ACCESS_DENIED_ERRNOS = new Set([1227, 1044, 1142]);

/** Why a hole waits on a replica (logged). */
export const REPLICA_REFUSAL =
  "this server is a replica (a replication applier is running): its holes may be filled by transactions still open on the primary, so none is proven here; the hole waits (only the bound passes it). Consume on the primary";

/** Why the bound did not pass a hole (logged). */
export function semiSyncHold(awaiting: number, timeoutMs: number): string {
  return `${awaiting} commit(s) on this server wait for a replica's semi-sync acknowledgement and one may fill this hole, so the ${timeoutMs} ms bound does not pass it: its clock restarts (the hole waits as long as the replica is away)`;
}

export class GapTracker {
  private pending: PendingGap | undefined;
  private serverReadable = true;
  private privilegeChecked = false;
  /** INNODB_TRX is read at most this often, or its cache is never refreshed (see innodbTrx.ts). */
  private nextWritersReadAtMs = 0;
  private readonly now: () => number;

  constructor(private readonly options: GapTrackerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Called with the offset the reader needs next, the lowest and the highest offsets the read returned above
   * it, after that read. Must be called outside the consuming transaction: that transaction's locks may be what the
   * hole's allocator waits on. A `skip` may only be applied to reads that start after this call returns.
   */
  async decide(expected: number, lowestVisible: number, highestVisible: number, probes: GapProbes): Promise<GapDecision> {
    const now = this.now();
    if (this.pending === undefined || this.pending.offset !== expected) {
      this.pending = { offset: expected, waitedMs: 0, lastLookMs: now, coversBelow: highestVisible, phase: { kind: 'delay' } };
      return { kind: 'wait' };
    }
    const gap = this.pending;
    gap.waitedMs += Math.min(Math.max(0, now - gap.lastLookMs), MAX_COUNTED_STEP_MS);
    gap.lastLookMs = now;
    if (gap.waitedMs >= this.options.timeoutMs) {
      // A commit waiting for a replica's acknowledgement may be the hole's allocator: it becomes visible when the
      // acknowledgement comes, however late (no fallback), so passing the hole now would lose it.
      const awaiting = probes.commitsAwaitingReplica === undefined ? 0 : await probes.commitsAwaitingReplica();
      if (awaiting > 0) {
        gap.waitedMs = 0;
        return { kind: 'wait', reason: semiSyncHold(awaiting, this.options.timeoutMs) };
      }
      return this.skip(gap, lowestVisible - 1, 'timeout');
    }
    if (!this.serverReadable || gap.waitedMs < this.options.probeDelayMs) return { kind: 'wait' };
    try {
      return this.options.proof === 'innodb-trx' ? await this.stepInnodbTrx(gap, lowestVisible, probes) : await this.stepStatements(gap, lowestVisible, highestVisible, probes);
    } catch (error) {
      if (error instanceof ProofInterrupted) {
        gap.phase = { kind: 'delay' };
        return { kind: 'wait', reason: error.message };
      }
      const errno = (error as { errno?: number }).errno;
      if (errno !== undefined && ACCESS_DENIED_ERRNOS.has(errno)) {
        this.serverReadable = false; // no PROCESS privilege: only the bound is left
        return { kind: 'wait' };
      }
      throw error;
    }
  }

  /** Drops the proof under way (its reads were made on a connection that is gone, maybe to another server). */
  forget(): void {
    this.pending = undefined;
  }

  /** The reader got past `expected` without help: forget the hole. */
  filled(expected: number): void {
    if (this.pending !== undefined && this.pending.offset <= expected) this.pending = undefined;
  }

  private async stepStatements(gap: PendingGap, lowestVisible: number, highestVisible: number, probes: GapProbes): Promise<GapDecision> {
    const phase = gap.phase;
    if (phase.kind === 'delay') {
      // Without PROCESS, PROCESSLIST shows only this user's connections and step 1 would prove nothing. Checked
      // once: the check reads INNODB_TRX, and every read of it delays the refresh of its cache for others.
      if (!this.privilegeChecked) {
        await probes.requireProcessPrivilege();
        this.privilegeChecked = true;
      }
      // Asked at the start of every proof: a replica promoted since is then proven on like any primary (its
      // applier has stopped, and its counter is above every offset it applied).
      if (this.options.proof === 'statements' && probes.replicating !== undefined && (await probes.replicating())) {
        return { kind: 'wait', reason: REPLICA_REFUSAL };
      }
      // P1 runs after the read that saw `highestVisible`: every offset below it was allocated before now (on a
      // cluster, once the fence holds).
      gap.coversBelow = highestVisible;
      if (probes.fence !== undefined) {
        gap.phase = { kind: 'fence' };
        return this.stepStatements(gap, lowestVisible, highestVisible, probes);
      }
      return this.readStatementsAtP1(gap, probes);
    }
    if (phase.kind === 'fence') {
      const step = await probes.fence!(gap.coversBelow);
      if (step.kind !== 'ready') return { kind: 'wait', reason: step.reason };
      return this.readStatementsAtP1(gap, probes);
    }
    if (phase.kind === 'statements') {
      const now = await probes.statements();
      for (const [id, queryId] of phase.running) if (now.get(id) !== queryId) phase.running.delete(id);
      if (phase.running.size === 0) gap.phase = { kind: 'locks', nextReadAtMs: 0 };
      return { kind: 'wait' };
    }
    if (phase.kind === 'confirm') {
      const step = await probes.confirm!(gap.offset, gap.coversBelow);
      if (step.kind === 'ready') return this.skip(gap, gap.coversBelow - 1, this.options.proof);
      // A membership change voids the proof: a node that joined may hold an allocation step 1 never saw.
      if (step.kind === 'restart') gap.phase = { kind: 'delay' };
      return { kind: 'wait', reason: step.reason };
    }
    if (phase.kind !== 'locks') throw new Error(`gap proof statements: unexpected phase ${phase.kind}`);
    // Step 2 only starts after step 1 finished, so its read runs after T1.
    const now = this.now();
    if (now < phase.nextReadAtMs) return { kind: 'wait' };
    const verdict = judgeRangeLocks(await probes.rangeLocks(gap.offset, gap.coversBelow), lowestVisible);
    if (verdict.kind === 'held') {
      phase.nextReadAtMs = now + RANGE_LOCK_RETRY_MS;
      return { kind: 'wait' };
    }
    if (verdict.kind === 'filled') {
      // The next consume read takes the row; until then the range is not read again more often than a held one.
      phase.nextReadAtMs = now + RANGE_LOCK_RETRY_MS;
      return { kind: 'wait' };
    }
    if (probes.confirm !== undefined) {
      gap.phase = { kind: 'confirm' };
      return this.stepStatements(gap, lowestVisible, highestVisible, probes);
    }
    return this.skip(gap, gap.coversBelow - 1, this.options.proof);
  }

  /** Step 1's first read (P1); straight on to step 2 when no connection is inside a statement. */
  private async readStatementsAtP1(gap: PendingGap, probes: GapProbes): Promise<GapDecision> {
    const running = await probes.statements();
    gap.phase = running.size === 0 ? { kind: 'locks', nextReadAtMs: 0 } : { kind: 'statements', running };
    return { kind: 'wait' };
  }

  /** The control: INNODB_TRX alone, suspects from the first fresh snapshot after first sight. */
  private async stepInnodbTrx(gap: PendingGap, lowestVisible: number, probes: GapProbes): Promise<GapDecision> {
    if (gap.phase.kind !== 'writers') gap.phase = { kind: 'writers', suspects: null };
    if (!(await this.narrowWriters(gap.phase, probes))) return { kind: 'wait' };
    return this.skip(gap, lowestVisible - 1, 'innodb-trx');
  }

  /** The control's test: true once every writer of the first fresh snapshot has gone from a later fresh one. */
  private async narrowWriters(phase: { kind: 'writers'; suspects: Set<string> | null }, probes: GapProbes): Promise<boolean> {
    const now = this.now();
    if (now < this.nextWritersReadAtMs) return false;
    this.nextWritersReadAtMs = now + probes.writersCacheIdleMs + 10;
    const snapshot = await probes.writers();
    if (!snapshot.fresh) return false; // an old cached snapshot proves nothing; read again later
    if (phase.suspects === null) {
      phase.suspects = snapshot.writers;
    } else {
      for (const id of phase.suspects) if (!snapshot.writers.has(id)) phase.suspects.delete(id);
    }
    return phase.suspects.size === 0;
  }

  private skip(gap: PendingGap, to: number, passedBy: GapPassReason): GapDecision {
    this.pending = undefined;
    return { kind: 'skip', from: gap.offset, to, waitedMs: Math.round(gap.waitedMs), passedBy };
  }
}
