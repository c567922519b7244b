// Offset mode: a consumer group reads the topic log after its acked position and moves that position in the
// same transaction as the handler's effects. What is read and how holes are treated is the engine's: on MariaDB
// a contiguous prefix with holes passed by the gap proof, on PostgreSQL a closed prefix (the xmin rule) with no
// holes to handle.
import type { Message, SqlExecutor, Statement } from '../types.ts';
import { ProofInterrupted, type GapProbes } from '../sql/gapProbes.ts';
import type { Database } from '../db/database.ts';
import { databaseOf, type DatabaseTarget } from '../db/openDatabase.ts';
import type { ClusterGapProver, GroupParams, OffsetReadParams, PeerConnection } from '../sql/engine.ts';
import { intInRange, matches, oneOf, OptionsError } from '../../validate.ts';
import { GAP_PROOFS, GapTracker, type GapPassReason, type GapProof } from './gapTracker.ts';
import {
  createBatchConsumer,
  DEFAULT_CONSUMER_OPTIONS,
  emptyStats,
  startConsumeLoop,
  validateConsumerOptions,
  type BatchConsumer,
  type BatchSource,
  type ConsumeLoopOptions,
  type ConsumerOptions,
  type ReadResult,
} from './consumeLoop.ts';
import type { SubscriberStats, Subscription } from './types.ts';

/**
 * - contiguous: ack only through offsets seen without holes; pass a hole once it is proven permanent
 *   (GapTracker, `gapProof`), or after the bound `gapTimeoutMs`, which is recorded. Safe whoever publishes,
 *   up to that bound. On PostgreSQL: the xmin rule, which needs neither proof nor bound.
 * - none: ack through the last message read, as watermill-sql's MySQL subscriber does. Loses messages whose
 *   offset commits after a higher one was read (measured: 4 of 4,000 with 16 concurrent publishers). On
 *   PostgreSQL: the read without the xmin rule, which loses a transaction that inserts first and commits last.
 *   Kept as the control.
 */
export type GapHandling = 'contiguous' | 'none';
export const GAP_HANDLINGS: readonly GapHandling[] = ['contiguous', 'none'];

export interface OffsetSubscriberOptions extends ConsumerOptions {
  consumerGroup: string;
  gapHandling: GapHandling;
  /** What proves a hole permanent: `statements` (covers the allocator window) or `innodb-trx` (the control). */
  gapProof: GapProof;
  /**
   * The bound: a hole that has waited this long is passed WITHOUT proof and counted as passed by timeout (a
   * message whose allocator commits later is then lost). Also the only rule without the PROCESS privilege.
   * Not while a commit on the server waits for a replica's semi-sync acknowledgement: the hole's clock restarts.
   */
  gapTimeoutMs: number;
  /** How soon a blocked read (a hole at the head) is tried again (ms). */
  gapRecheckMs: number;
  /** How long a hole at the head may last before the gap proof starts probing the server (ms). */
  gapProbeDelayMs: number;
  /** Called after each passed hole with the subscriber's stats (the worker reports them to the harness). */
  onGapPassed: (stats: SubscriberStats) => void;
  /**
   * A control: keep the holes proven permanent, and the proof under way, when the connection is replaced. The
   * default forgets them: the new connection may reach another server (a failover moved the address), where a
   * decision proven on the old primary is not true (after an asynchronous failover the promoted node's counter
   * may be below the offsets it covered, and publishes in flight there fill them later).
   */
  keepGapDecisionsAcrossSessions: boolean;
}

export const DEFAULT_OFFSET_SUBSCRIBER_OPTIONS: Omit<OffsetSubscriberOptions, 'handler' | 'topic'> = {
  ...DEFAULT_CONSUMER_OPTIONS,
  consumerGroup: 'counter',
  // A plain consistent read: it locks nothing in the topic table, so a consumer that stalls mid-transaction
  // cannot hold up a publisher (the FOR UPDATE on the group's offsets row is the only lock, and it is enough
  // for one consumer per group). Rows not yet committed are holes, which contiguity handles. SERIALIZABLE
  // turns the read into a locking one up to the end of the topic: a worker frozen for 12 s under ~170 req/s
  // left 741 of ~2,100 publishes answered 503 after the 10 s publish timeout; at READ COMMITTED, none.
  isolation: 'READ COMMITTED',
  gapHandling: 'contiguous',
  gapProof: 'statements',
  // Long enough that no stall seen here comes near it (publishers stalled 300 ms in the allocator window, the
  // chaos faults' holds of a few seconds), short enough that an idle open transaction or an unrelated long
  // statement delays consumption by seconds, not forever.
  gapTimeoutMs: 10_000,
  // A hole at the head is almost always a publish in flight that commits within a millisecond or two; 2 ms
  // re-reads it soon without spinning.
  gapRecheckMs: 2,
  // Chosen by reasoning, not tuned: a publish in flight commits in about 0.3 ms here (one connection's autocommit
  // INSERTs run at ~3,100/s, measured here), so a hole still open after 20 ms is a long or rolled-back transaction,
  // worth a probe; correctness does not depend on it, only how soon a rolled-back offset is passed.
  gapProbeDelayMs: 20,
  onGapPassed: () => undefined,
  keepGapDecisionsAcrossSessions: false,
};

export function validateOffsetSubscriberOptions(o: OffsetSubscriberOptions): OffsetSubscriberOptions {
  const c = 'offset subscriber';
  validateConsumerOptions(c, o);
  matches(c, 'consumerGroup', o.consumerGroup, /^.{1,255}$/, 'a name of 1-255 characters');
  oneOf(c, 'gapHandling', o.gapHandling, GAP_HANDLINGS);
  oneOf(c, 'gapProof', o.gapProof, GAP_PROOFS);
  intInRange(c, 'gapTimeoutMs', o.gapTimeoutMs, 0, 86_400_000);
  intInRange(c, 'gapRecheckMs', o.gapRecheckMs, 0, 60_000);
  intInRange(c, 'gapProbeDelayMs', o.gapProbeDelayMs, 0, 60_000);
  if (typeof o.keepGapDecisionsAcrossSessions !== 'boolean') throw new OptionsError(`${c}: keepGapDecisionsAcrossSessions must be true or false (got ${JSON.stringify(o.keepGapDecisionsAcrossSessions)})`);
  return o;
}

/** Creates the topic's tables and the group's offsets row if missing. */
export async function prepareOffsetTopic(target: DatabaseTarget, topic: string, group: string): Promise<void> {
  const db = databaseOf(target);
  await db.engine.ensureGroup(db.executor(), { topic, consumerGroup: group });
}

/**
 * Keeps the longest run of `rows` that continues `acked` without a hole, except holes that end at or below
 * `passableThrough` (proven permanent). Pure, so the rule is tested on its own.
 */
export function contiguousPrefix(rows: readonly Message[], acked: number, passableThrough: number): Message[] {
  const taken: Message[] = [];
  let expected = acked + 1;
  for (const row of rows) {
    if (row.offset !== expected && row.offset - 1 > passableThrough) break;
    taken.push(row);
    expected = row.offset + 1;
  }
  return taken;
}

/** A proof that waits on the same reason logs it again after this long (ms). */
const WAIT_REASON_LOG_MS = 5_000;

class OffsetSource implements BatchSource {
  private passableThrough = 0;
  /** What allowed passing holes up to each `through` (ascending), until those holes are counted. */
  private passes: { through: number; by: GapPassReason }[] = [];
  /** Holes at or below this have been counted in the stats (a batch read again after a rollback is not). */
  private countedThrough = 0;
  private headGap: { expected: number; lowestVisible: number; highestVisible: number } | undefined;
  private readonly gaps: GapTracker;
  private readonly group: GroupParams;
  /** Decided at the first hole: the server's own probes, or a prover over every member of its cluster. */
  private prover: { kind: 'server' } | { kind: 'cluster'; prover: ClusterGapProver } | undefined;
  /** The group's acked offset as the latest read found it. */
  private lastAcked = 0;
  private lastWaitReason = '';
  private lastWaitLogMs = 0;

  constructor(
    private readonly db: Database,
    private readonly o: OffsetSubscriberOptions,
    private readonly stats: SubscriberStats,
  ) {
    this.gaps = new GapTracker({ proof: o.gapProof, probeDelayMs: o.gapProbeDelayMs, timeoutMs: o.gapTimeoutMs });
    this.group = { topic: o.topic, consumerGroup: o.consumerGroup };
  }

  /**
   * The engine's safe read, except with gap handling `none` on an engine whose safe read is gap-free
   * (PostgreSQL): then the read without its visibility rule, the control that must lose messages.
   */
  private visibility(): OffsetReadParams['visibility'] {
    return this.o.gapHandling === 'none' && this.db.engine.offsetReadIsGapFree ? 'committed' : 'closed-prefix';
  }

  readStatements(batchSize: number): Statement[] {
    // A cluster-wide decision is applied by causal reads only (see OffsetReadParams.causal).
    const causal = this.prover?.kind === 'cluster' && this.passableThrough > this.lastAcked;
    return this.db.engine.offsetReadStatements({ ...this.group, limit: batchSize, visibility: this.visibility(), causal });
  }

  readResult(results: unknown[]): ReadResult {
    const { ackedOffset, messages: rows } = this.db.engine.offsetReadResult(results, this.group);
    if (rows.length === 0) return { kind: 'empty' };
    if (this.o.gapHandling === 'none' || this.db.engine.offsetReadIsGapFree) return { kind: 'messages', messages: rows };
    const acked = ackedOffset;
    if (acked === undefined) throw new Error(`${this.db.engine.name}: an offset read with holes must return the acked offset`);
    this.lastAcked = acked;
    const taken = contiguousPrefix(rows, acked, this.passableThrough);
    if (taken.length > 0) {
      this.gaps.filled(acked + 1);
      this.countPassedHoles(acked, taken);
      return { kind: 'messages', messages: taken };
    }
    this.headGap = { expected: acked + 1, lowestVisible: rows[0]!.offset, highestVisible: rows[rows.length - 1]!.offset };
    return { kind: 'blocked', retryInMs: this.o.gapRecheckMs };
  }

  ackStatements(messages: readonly Message[]): Statement[] {
    const last = messages[messages.length - 1];
    return last === undefined ? [] : [this.db.engine.offsetAckStatement(this.group, last)];
  }

  sessionOpened(): void {
    if (this.o.keepGapDecisionsAcrossSessions) return;
    // Holes already stepped over were counted when they were taken; the rest must be proven again, here.
    this.passableThrough = 0;
    this.passes = [];
    this.headGap = undefined;
    this.gaps.forget();
  }

  async unblock(session: SqlExecutor): Promise<void> {
    const gap = this.headGap;
    if (gap === undefined) return;
    this.headGap = undefined;
    const probes = await this.probes(session);
    const decision = await this.gaps.decide(gap.expected, gap.lowestVisible, gap.highestVisible, probes);
    if (decision.kind === 'wait' && decision.reason !== undefined) this.logWaitReason(decision.reason);
    if (decision.kind === 'skip' && decision.to > this.passableThrough) {
      // Applied by the next reads, each in a new transaction started after the proof completed.
      this.passableThrough = decision.to;
      this.passes.push({ through: decision.to, by: decision.passedBy });
      this.o.onEvent?.({ e: 'pass', from: decision.from, to: decision.to, by: decision.passedBy, waitedMs: decision.waitedMs });
      const what = decision.passedBy === 'timeout' ? `NOT proven permanent; passed by the ${this.o.gapTimeoutMs} ms bound (timeout)` : `never committed; passed after ${decision.waitedMs} ms (proof: ${decision.passedBy})`;
      this.o.log(`${this.o.topic}/${this.o.consumerGroup}: holes in offsets ${decision.from}-${decision.to} ${what}`);
    }
  }

  /**
   * The gap proof's reads on `session`. On the first hole the engine says whether the server is one node of a
   * multi-primary cluster; if so (and the proof is not the node-local control) every later proof covers all
   * members, through connections of the prover's own.
   */
  private async probes(session: SqlExecutor): Promise<GapProbes> {
    if (this.prover === undefined) {
      const engine = this.db.engine;
      const cluster = this.o.gapProof === 'innodb-trx' ? undefined : await engine.clusterGapProver?.(session, { topic: this.o.topic, connectPeer: (address) => this.connectPeer(address) });
      if (cluster !== undefined && this.o.gapProof === 'statements-node-local') {
        this.o.log(`${this.o.topic}/${this.o.consumerGroup}: this node is one of a Galera cluster; the gap proof runs on it alone (statements-node-local, a control: holes of rows published through other nodes may be passed before those rows arrive)`);
        await cluster.close();
        this.prover = { kind: 'server' };
      } else if (cluster !== undefined) {
        this.o.log(`${this.o.topic}/${this.o.consumerGroup}: this node is one of a Galera cluster; every gap proof covers each member of its primary component`);
        this.prover = { kind: 'cluster', prover: cluster };
      } else {
        this.prover = { kind: 'server' };
      }
    }
    if (this.prover.kind === 'cluster') return this.prover.prover.probes(session);
    const probes = this.db.engine.gapProbes?.(session, { topic: this.o.topic });
    if (probes === undefined) throw new Error(`${this.db.engine.name}: a hole at the head of an offset read, but the engine has no gap proof`);
    return probes;
  }

  private connectPeer(address: string): PeerConnection {
    const peer = this.db.peer?.(address);
    if (peer === undefined) {
      throw new ProofInterrupted(`cannot open a connection to cluster member ${address}: this database handle was not opened from a URL`);
    }
    return { executor: peer.executor(), close: () => peer.end() };
  }

  /** Logs why a proof waits when the reason changes, and again at most every WAIT_REASON_LOG_MS while it lasts. */
  private logWaitReason(reason: string): void {
    const now = Date.now();
    if (reason === this.lastWaitReason && now - this.lastWaitLogMs < WAIT_REASON_LOG_MS) return;
    this.lastWaitReason = reason;
    this.lastWaitLogMs = now;
    this.o.log(`${this.o.topic}/${this.o.consumerGroup}: a hole waits for its proof: ${reason}`);
  }

  async close(): Promise<void> {
    if (this.prover?.kind === 'cluster') await this.prover.prover.close();
    this.prover = undefined;
  }

  /** Counts the holes `taken` steps over, each under the decision that allowed it, once. */
  private countPassedHoles(acked: number, taken: readonly Message[]): void {
    let expected = acked + 1;
    let counted = false;
    for (const row of taken) {
      let from = Math.max(expected, this.countedThrough + 1);
      const to = row.offset - 1;
      for (const pass of this.passes) {
        if (from > to) break;
        if (pass.through < from) continue;
        const upTo = Math.min(to, pass.through);
        recordPassed(this.stats, pass.by, upTo - from + 1);
        counted = true;
        from = upTo + 1;
      }
      expected = row.offset + 1;
    }
    this.countedThrough = Math.max(this.countedThrough, expected - 1);
    this.passes = this.passes.filter((p) => p.through > this.countedThrough);
    if (counted) this.o.onGapPassed(this.stats);
  }
}

function recordPassed(stats: SubscriberStats, passedBy: GapPassReason, offsets: number): void {
  stats.gapsPassed += offsets;
  if (passedBy === 'timeout') stats.gapsPassedByTimeout += offsets;
  else if (passedBy === 'statements' || passedBy === 'statements-node-local') stats.gapsPassedByStatements += offsets;
  else stats.gapsPassedByInnodbTrx += offsets;
}

function loopOptions(db: Database, o: OffsetSubscriberOptions): ConsumeLoopOptions {
  return { ...o, name: `offset subscriber ${o.topic}/${o.consumerGroup}`, db, poisonOrigin: { topic: o.topic, mode: 'offset', consumerGroup: o.consumerGroup } };
}

/** One batch at a time, with no loop around it: for the micro-benchmarks of one consume transaction. */
export async function createOffsetBatchConsumer(target: DatabaseTarget, options: OffsetSubscriberOptions): Promise<BatchConsumer> {
  const o = validateOffsetSubscriberOptions(options);
  const db = databaseOf(target);
  await prepareOffsetTopic(db, o.topic, o.consumerGroup);
  const stats = emptyStats();
  return createBatchConsumer(loopOptions(db, o), new OffsetSource(db, o, stats), stats);
}

/** `target`: a Database of either engine, or a mysql2 pool (MariaDB). */
export async function subscribeOffset(target: DatabaseTarget, options: OffsetSubscriberOptions): Promise<Subscription> {
  const o = validateOffsetSubscriberOptions(options);
  const db = databaseOf(target);
  await prepareOffsetTopic(db, o.topic, o.consumerGroup);
  const stats = emptyStats();
  return startConsumeLoop(loopOptions(db, o), new OffsetSource(db, o, stats), stats);
}
