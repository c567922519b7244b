// Decides when a hole in the offsets may be stepped over: on a proof that it is permanent, or, named as such,
// after a bounded wait.
//
// THE PROOF (gap proof `statements`, the default). Offsets are allocated at INSERT and become visible at COMMIT,
// in any order. InnoDB allocates the offset (handler::update_auto_increment, under the table's autoinc mutex)
// inside ha_innobase::write_row BEFORE row_insert_for_mysql starts the transaction and registers it as a
// writer with a real trx id; between the two the inserting connection holds an offset and is absent from
// INNODB_TRX. So "every writer in a fresh INNODB_TRX snapshot has ended" is not enough (measured: a thread
// stopped in that window for 300 ms at every 20th insert, 16 publishers x 150 rows: that rule lost 16-17 of
// 2,400). The proof below also covers that window.
//
// Facts used (MariaDB/InnoDB):
//  F1 The auto-increment counter only grows; an offset is handed out once, by one statement of one connection,
//     and is used, if ever, by a row that same statement inserts (a multi-row or INSERT ... SELECT statement may
//     reuse a value of its own failed row; a reserved but unused value stays a hole).
//  F2 A row is written only after the offset was allocated; a statement that inserted a row has, from the end
//     of that write_row call on, a transaction with a real trx id, until it commits or rolls back.
//  F3 information_schema.PROCESSLIST is read live; QUERY_ID is the server-wide, never reused number of the
//     statement (or stored-program sub-statement) a connection is running. It changes, and COMMAND becomes
//     Sleep, only between statements, never inside one write_row call; a connection leaves the list only after
//     its last statement ended.
//  F4 A fresh INNODB_TRX snapshot (it shows the probe's own transaction, so it was taken after the probe began)
//     lists every transaction that holds a real id at that moment; trx ids are never reused.
//  F5 A committing transaction stays in INNODB_TRX (state COMMITTING) until its commit is visible to read views
//     opened afterwards; so once it is gone from a fresh snapshot, any read view opened later (or a locking or
//     READ UNCOMMITTED read, which reads the latest version) sees its rows, at every isolation level.
//
// Steps, for a hole seen by a consume read R0 that also saw a higher offset M (the highest offset R0 returned):
//  0. Every offset g below M was allocated before M (F1) and M's row existed at R0 (F2), so g was allocated
//     before R0 ended; so before P1 below, which runs after R0 on the same connection. `coversBelow` = M: one
//     proof covers every hole below M, not only the first (with 2% of inserts rolled back, proving holes one
//     at a time, ~100 ms each, let the backlog grow to 10,000-20,000 messages).
//  1. P1: read PROCESSLIST; record (ID, QUERY_ID) of every connection inside a statement (not Sleep; see
//     processlist.ts for what else is left out, and why). Re-read until each has left that statement: gone,
//     Sleep, or another QUERY_ID. Call the moment that is seen T1. The allocator X of any g was, at its row of
//     P1, either inside the statement that allocated g (then recorded, and by T1 that statement's write_row of
//     g has returned, F3) or already past it. So after T1 X is past it: g was never used (a hole forever) or
//     its row was written and X's transaction holds a real id or has ended (F2).
//  2. Read INNODB_TRX fresh, after T1 (F4): X's transaction, if still open, is in it. Wait until every real-id
//     writer of that snapshot has gone from a later fresh snapshot (T2). Now X's transaction has committed
//     (g's row is committed) or rolled back (g never exists).
//  3. The decision (pass every hole below `coversBelow`) is applied only by the reads the consume loop takes
//     after it returns, each in a new transaction opened after T2: by F5 a committed g is visible there, so a
//     g still absent is permanent. Offsets at or above M are not covered: their holes wait for a new proof.
// Isolation levels do not enter steps 0-2 (PROCESSLIST and INNODB_TRX are not transactional); step 3 holds at
// every level because the deciding read is always in a transaction that starts after the proof.
//
// Checked and holding: a statement killed mid-way stays listed (COMMAND Killed, same QUERY_ID) until it ends;
// QUERY_ID and connection ids restart after a server restart, which can only make step 1 wait longer, while
// trx ids never go back; the transactions a restart recovers are listed until rolled back; the counter after a
// restart is above every offset whose row was written, so no offset below a visible one is handed out again;
// no step reads a clock (the bound's clock jumps count at most MAX_COUNTED_STEP_MS per look).
//
// NOT covered (named, not proven): an INSERT that writes an explicit offset below the counter (not an
// allocation: it may appear at any time); replication appliers (explicit offsets); Galera; XA transactions left
// PREPARED (they may commit at any later time, after INNODB_TRX stopped listing them if it does not); an
// INNODB_TRX read truncated at its 16 MB memory limit (it then warns; not checked); the PROCESS privilege
// granted or revoked while a proof runs; the counter moved back (TRUNCATE, ALTER TABLE ... AUTO_INCREMENT)
// while consumers run; an event-scheduler statement whose PROCESSLIST row shows COMMAND Daemon with no text.
// (READ UNCOMMITTED has a hazard of its own, outside this proof: a consume read may handle a row that later
// rolls back.) The gap proof `innodb-trx` (the previous rule: step 2 alone, from a snapshot taken at any
// time after first sight) misses the allocator window and is kept only as a control.
//
// THE BOUND (`timeoutMs`). Steps 1 and 2 wait on connections this consumer does not control: an unrelated long
// statement blocks step 1, an idle open transaction step 2, each for as long as it lasts. So a hole that has
// waited `timeoutMs` is passed WITHOUT proof, and recorded as passed by timeout. If its allocator commits
// later, that message is lost: this is a bound, not a proof. Waiting time counts the consumer's own waiting
// only; a pause of over MAX_COUNTED_STEP_MS between two looks (a frozen database or consumer) counts as that
// much, so a freeze of the whole system does not age a hole past the bound at once. Without the PROCESS
// privilege only the bound applies.
import { INNODB_TRX_CACHE_IDLE_MS, type OpenWriters } from '../sql/innodbTrx.ts';
import type { RunningStatements } from '../sql/processlist.ts';

/** How a hole can be proven permanent: `statements` (covers the allocator window) or `innodb-trx` (control). */
export type GapProof = 'statements' | 'innodb-trx';
export const GAP_PROOFS: readonly GapProof[] = ['statements', 'innodb-trx'];

/** What passed a hole: one of the proofs, or the bound. */
export type GapPassReason = GapProof | 'timeout';

export interface GapTrackerOptions {
  proof: GapProof;
  /**
   * How long a hole at the head may last before the proof starts reading the server. Almost every hole is a
   * publish in flight that commits within a few ms; reading PROCESSLIST/INNODB_TRX for those would only slow
   * the reader.
   */
  probeDelayMs: number;
  /** The bound: a hole that has waited this long is passed without proof, recorded as `timeout` (ms). */
  timeoutMs: number;
  now?: () => number;
}

/** The reads a proof needs; each runs outside any transaction, on the consumer's connection. */
export interface GapProbes {
  statements(): Promise<RunningStatements>;
  writers(): Promise<OpenWriters>;
}

/** What the reader should do about a hole that starts at `expected`. */
export type GapDecision =
  | { kind: 'wait' }
  | { kind: 'skip'; from: number; to: number; waitedMs: number; passedBy: GapPassReason };

/**
 * Longest pause between two looks at a hole that counts in full toward the bound (ms). The consumer looks every
 * few ms while a hole blocks it; a longer pause means the consumer or the database was frozen, and a frozen
 * allocator must not see its hole aged past the bound by the freeze itself.
 */
const MAX_COUNTED_STEP_MS = 1_000;

type Phase =
  | { kind: 'delay' }
  /** Step 1: connections inside a statement at P1, with the statement's QUERY_ID, not yet seen to move on. */
  | { kind: 'statements'; running: RunningStatements }
  /** Step 2: real-id writers of the first fresh snapshot after step 1; null until one was read. */
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

export class GapTracker {
  private pending: PendingGap | undefined;
  private serverReadable = true;
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
    if (gap.waitedMs >= this.options.timeoutMs) return this.skip(gap, lowestVisible - 1, 'timeout');
    if (!this.serverReadable || gap.waitedMs < this.options.probeDelayMs) return { kind: 'wait' };
    try {
      return this.options.proof === 'statements' ? await this.stepStatements(gap, highestVisible, probes) : await this.stepInnodbTrx(gap, lowestVisible, probes);
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno !== undefined && ACCESS_DENIED_ERRNOS.has(errno)) {
        this.serverReadable = false; // no PROCESS privilege: only the bound is left
        return { kind: 'wait' };
      }
      throw error;
    }
  }

  /** The reader got past `expected` without help: forget the hole. */
  filled(expected: number): void {
    if (this.pending !== undefined && this.pending.offset <= expected) this.pending = undefined;
  }

  private async stepStatements(gap: PendingGap, highestVisible: number, probes: GapProbes): Promise<GapDecision> {
    const phase = gap.phase;
    if (phase.kind === 'delay') {
      // P1 runs after the read that saw `highestVisible`: every offset below it was allocated before now.
      gap.coversBelow = highestVisible;
      const running = await probes.statements();
      gap.phase = running.size === 0 ? { kind: 'writers', suspects: null } : { kind: 'statements', running };
      return { kind: 'wait' };
    }
    if (phase.kind === 'statements') {
      const now = await probes.statements();
      for (const [id, queryId] of phase.running) if (now.get(id) !== queryId) phase.running.delete(id);
      if (phase.running.size === 0) gap.phase = { kind: 'writers', suspects: null };
      return { kind: 'wait' };
    }
    // The writers step only starts after step 1 finished, so its first snapshot is taken after T1.
    if (!(await this.narrowWriters(phase, probes))) return { kind: 'wait' };
    return this.skip(gap, gap.coversBelow - 1, 'statements');
  }

  /** The control: INNODB_TRX alone, suspects from the first fresh snapshot after first sight. */
  private async stepInnodbTrx(gap: PendingGap, lowestVisible: number, probes: GapProbes): Promise<GapDecision> {
    if (gap.phase.kind !== 'writers') gap.phase = { kind: 'writers', suspects: null };
    if (!(await this.narrowWriters(gap.phase, probes))) return { kind: 'wait' };
    return this.skip(gap, lowestVisible - 1, 'innodb-trx');
  }

  /** Step 2: true once every writer of the first fresh snapshot has gone from a later fresh one. */
  private async narrowWriters(phase: { kind: 'writers'; suspects: Set<string> | null }, probes: GapProbes): Promise<boolean> {
    const now = this.now();
    if (now < this.nextWritersReadAtMs) return false;
    this.nextWritersReadAtMs = now + INNODB_TRX_CACHE_IDLE_MS + 10;
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
