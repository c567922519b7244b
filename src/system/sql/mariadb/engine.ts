// The MariaDB (and MySQL) engine behind the seam in ../engine.ts: each operation delegates to the module that
// owns the table's SQL, so this file holds no SQL of its own.
import { toMessage, type MessageRow } from '../rows.ts';
import type { SqlEngine } from '../engine.ts';
import { ensureSchema } from './schema.ts';
import {
  createOffsetsTable,
  ensureGroupRow,
  lockAckedOffsetStatement,
  ackedOffsetOf,
  writeAckedOffsetStatement,
  selectAckedOffset,
  selectLowestAckedOffset,
} from './offsetsTable.ts';
import { createMessagesTable, deleteMessagesInRange, insertMessages, insertMessagesStatement, writeMessages, lockOffsetRangeNowait, selectAllMessages, selectMessagesAfterAckedStatement, selectMinOffset } from './messagesTable.ts';
import {
  assertQueueAckSupported,
  claimUnackedStatement,
  createQueueTable,
  deleteAckedQueueRows,
  markAckedStatement,
  selectAllQueueMessages,
  selectAckedQueueOffsets,
} from './queueTable.ts';
import { poisonTable, queueTable } from './identifiers.ts';
import { claimRequestIds, deleteDedupRowsOlderThan, MAX_DEDUP_REQUEST_ID_LENGTH } from './dedupTable.ts';
import { countPoisoned, createPoisonTable, poisonMessageStatement, poisonTableExists, selectPoisoned } from './poisonTable.ts';
import { addToCountersStatement, selectCounterValue, selectAllCounters, setCounterValue, sumCounters } from './counterTable.ts';
import { INNODB_TRX_CACHE_IDLE_MS, probeOpenWriters, requireProcessPrivilege } from './innodbTrx.ts';
import { readReplicationApplying, readRunningStatements } from './processlist.ts';
import { readSemiSyncCommitWaits } from './semiSyncWaits.ts';
import { readGaleraStatus } from './galera.ts';
import { GaleraProver } from './galeraGapProbes.ts';
import { selectConsumption, selectProgress, selectServerVersion, truncateTopic } from './observation.ts';
import { ping } from './sessions.ts';

/** mysql2 puts the values into the statement's text itself: no parameter cap, only max_allowed_packet. */
const MAX_MESSAGES_PER_INSERT = Number.POSITIVE_INFINITY;

export const mariadbEngine: SqlEngine = {
  name: 'mariadb',
  ensureSchema: (db, p) => ensureSchema(db, { topic: p.topic, topicSchema: p.mode, dedup: p.dedup }),
  ensureGroup: async (db, p) => {
    await createMessagesTable(db, p.topic);
    await createOffsetsTable(db, p.topic);
    await ensureGroupRow(db, p.topic, p.consumerGroup);
    await createPoisonTable(db, p.topic);
  },
  ensureQueue: async (db, p) => {
    await assertQueueAckSupported(db);
    await createQueueTable(db, p.topic);
    await createPoisonTable(db, p.topic);
  },
  ensureTopicTable: (db, p) => (p.mode === 'offset' ? createMessagesTable(db, p.topic) : createQueueTable(db, p.topic)),
  maxMessagesPerInsert: MAX_MESSAGES_PER_INSERT,
  publish: async (db, p) => {
    if (p.mode === 'offset') return insertMessages(db, p.topic, p.messages);
    await writeMessages(db, insertMessagesStatement(queueTable(p.topic), p.messages));
  },
  maxDedupRequestIdLength: MAX_DEDUP_REQUEST_ID_LENGTH,
  claimRequestIds: (tx, p) => claimRequestIds(tx, p.topic, p.claims, p.token),
  // Committed rows in offset order with holes where an allocated offset has not committed (yet): the
  // subscriber's gap handling decides about them, whatever `visibility` asks for.
  offsetReadStatements: (p) => [lockAckedOffsetStatement(p.topic, p.consumerGroup), selectMessagesAfterAckedStatement(p.topic, p.consumerGroup, p.limit, p.causal === true)],
  offsetReadResult: ([lockRows, messageRows], p) => ({
    ackedOffset: ackedOffsetOf(lockRows, p.topic, p.consumerGroup),
    messages: (messageRows as MessageRow[]).map(toMessage),
  }),
  offsetAckStatement: (p, last) => writeAckedOffsetStatement(p.topic, p.consumerGroup, last.offset),
  offsetReadIsGapFree: false,
  gapProbes: (session, p) => ({
    statements: () => readRunningStatements(session),
    replicating: () => readReplicationApplying(session),
    commitsAwaitingReplica: () => readSemiSyncCommitWaits(session),
    requireProcessPrivilege: () => requireProcessPrivilege(session),
    rangeLocks: (from, below) => lockOffsetRangeNowait(session, p.topic, from, below),
    writers: () => probeOpenWriters(session),
    writersCacheIdleMs: INNODB_TRX_CACHE_IDLE_MS,
  }),
  clusterGapProver: async (session, p) => ((await readGaleraStatus(session)).enabled ? new GaleraProver(p) : undefined),
  selectAckedOffset: (db, p) => selectAckedOffset(db, p.topic, p.consumerGroup),
  claimUnackedStatement: (p) => claimUnackedStatement(p.topic, p.limit),
  claimedMessages: (rows) => (rows as MessageRow[]).map(toMessage),
  markAckedStatement: (p) => markAckedStatement(p.topic, p.offsets),
  poisonMessageStatement: (origin, entry) => poisonMessageStatement(origin, { offset: entry.offset, error: entry.error, failedDeliveries: entry.failedDeliveries }),
  poisonTableName: poisonTable,
  selectPoisoned: async (db, p) => ((await poisonTableExists(db, p.topic)) ? selectPoisoned(db, p.topic, p.filter) : undefined),
  countPoisoned: (db, p) => countPoisoned(db, p.topic),
  addToCountersStatement,
  selectCounterValue,
  setCounterValue,
  pruneOffsetTopic: async (db, p, each) => {
    const { lowest, groups } = await selectLowestAckedOffset(db, p.topic);
    const result = { removed: 0, floor: lowest, groups, batches: 0 };
    if (lowest === undefined) return result;
    const min = await selectMinOffset(db, p.topic);
    if (min === undefined) return result;
    // Ranges of batchSize offsets: holes (rolled-back offsets, earlier prunes) make some DELETEs remove fewer rows.
    for (let from = min, n = 0; from <= lowest && n < p.maxBatches; from += p.batchSize, n += 1) {
      const to = Math.min(lowest, from + p.batchSize - 1);
      result.removed += await each(() => deleteMessagesInRange(db, p.topic, from, to));
      result.batches += 1;
    }
    return result;
  },
  deleteAckedQueueRows: (db, p) => deleteAckedQueueRows(db, p.topic, p.limit),
  deleteDedupRowsOlderThan: (db, p) => deleteDedupRowsOlderThan(db, p.topic, p.windowS, p.limit),
  // ER_NO_SUCH_TABLE.
  isMissingTable: (error) => (error as { errno?: number }).errno === 1146,
  ping,
  selectProgress,
  progressReader: (p) => (db) => selectProgress(db, p),
  selectConsumption,
  selectAllCounters,
  sumCounters,
  selectAllMessages: async (db, p) => {
    if (p.mode === 'offset') return { messages: await selectAllMessages(db, p.topic) };
    const [messages, ackedOffsets] = await Promise.all([selectAllQueueMessages(db, p.topic), selectAckedQueueOffsets(db, p.topic)]);
    return { messages, ackedOffsets };
  },
  truncateTopic: (db, p) => truncateTopic(db, p.topic),
  selectServerVersion,
};
