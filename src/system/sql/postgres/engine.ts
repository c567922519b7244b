// The PostgreSQL engine behind the seam in ../engine.ts: each operation delegates to the module that owns the
// table's SQL (this file holds none). What differs from MariaDB is offset mode: a group's position is the pair
// (transaction_id, offset) and the read takes only rows below the snapshot's xmin (messagesTable.ts says why that
// never steps over a message), so the subscriber needs no gap proof and no timeout here.
import type { Message } from '../../types.ts';
import type { SqlEngine } from '../engine.ts';
import { createPgMessagesTable, deletePgMessagesUpTo, insertPgMessagesStatement, lockAndSelectPgMessagesStatement, MAX_MESSAGES_PER_INSERT, selectAllPgMessages, toPgMessage, type PgMessage, type PgMessageRow } from './messagesTable.ts';
import { createPgOffsetsTable, ensurePgGroupRow, selectLowestPgPosition, selectPgPosition, writePgPositionStatement } from './offsetsTable.ts';
import { claimPgUnackedStatement, createPgQueueTable, deletePgAckedQueueRows, insertPgQueueMessagesStatement, markPgAckedStatement, selectAllPgQueueMessages, toQueueMessages, type QueueRow } from './queueTable.ts';
import { claimPgRequestIds, createPgDedupTable, deletePgDedupRowsOlderThan, MAX_PG_DEDUP_REQUEST_ID_LENGTH } from './dedupTable.ts';
import { countPgPoisoned, createPgPoisonTable, pgPoisonTable, poisonPgMessageStatement, selectPgPoisoned } from './poisonTable.ts';
import { addToPgCountersStatement, createPgCounterTable, selectAllPgCounters, selectPgCounterValue, setPgCounterValue, sumPgCounters } from './counterTable.ts';
import { selectPgServerVersion } from './sessions.ts';
import { pgProgressReader, selectPgConsumption, selectPgProgress, truncatePgTopic } from './observation.ts';
import { assertTopicName } from '../topicName.ts';

function transactionIdOf(message: Message): string {
  const id = (message as Partial<PgMessage>).transactionId;
  if (typeof id !== 'string') throw new Error(`message ${message.offset} was not read from PostgreSQL (no transaction id): cannot ack it here`);
  return id;
}

/** Chunks of at most `size`, in order. */
function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export const postgresEngine: SqlEngine = {
  name: 'postgres',
  ensureSchema: async (db, p) => {
    assertTopicName(p.topic);
    if (p.mode === 'offset') await createPgMessagesTable(db, p.topic);
    else await createPgQueueTable(db, p.topic);
    await createPgCounterTable(db);
    if (p.dedup) await createPgDedupTable(db, p.topic);
  },
  ensureGroup: async (db, p) => {
    await createPgMessagesTable(db, p.topic);
    await createPgOffsetsTable(db, p.topic);
    await ensurePgGroupRow(db, p.topic, p.consumerGroup);
    await createPgPoisonTable(db, p.topic);
  },
  ensureQueue: async (db, p) => {
    await createPgQueueTable(db, p.topic);
    await createPgPoisonTable(db, p.topic);
  },
  ensureTopicTable: (db, p) => (p.mode === 'offset' ? createPgMessagesTable(db, p.topic) : createPgQueueTable(db, p.topic)),
  maxMessagesPerInsert: MAX_MESSAGES_PER_INSERT,
  publish: async (db, p) => {
    for (const part of chunks(p.messages, MAX_MESSAGES_PER_INSERT)) {
      const { sql, values } = p.mode === 'offset' ? insertPgMessagesStatement(p.topic, part) : insertPgQueueMessagesStatement(p.topic, part);
      await db.query(sql, values);
    }
  },
  maxDedupRequestIdLength: MAX_PG_DEDUP_REQUEST_ID_LENGTH,
  claimRequestIds: (tx, p) => claimPgRequestIds(tx, p.topic, p.claims),
  offsetReadStatements: (p) => [lockAndSelectPgMessagesStatement(p.topic, p.consumerGroup, p.limit, p.visibility === 'closed-prefix' ? 'xmin' : 'none')],
  // The lock and the read are one statement, which returns messages only: the acked offset is not needed here.
  offsetReadResult: ([rows]) => ({ ackedOffset: undefined, messages: (rows as PgMessageRow[]).map(toPgMessage) }),
  offsetAckStatement: (p, last) => writePgPositionStatement(p.topic, p.consumerGroup, { transactionId: transactionIdOf(last), offset: last.offset }),
  offsetReadIsGapFree: true,
  selectAckedOffset: async (db, p) => (await selectPgPosition(db, p.topic, p.consumerGroup))?.offset ?? 0,
  claimUnackedStatement: (p) => claimPgUnackedStatement(p.topic, p.limit),
  claimedMessages: (rows) => toQueueMessages(rows as QueueRow[]),
  markAckedStatement: (p) => markPgAckedStatement(p.topic, p.offsets),
  poisonMessageStatement: (origin, entry) =>
    poisonPgMessageStatement(origin, {
      offset: entry.offset,
      error: entry.error,
      failedDeliveries: entry.failedDeliveries,
      ...(entry.message !== undefined && typeof (entry.message as Partial<PgMessage>).transactionId === 'string'
        ? { transactionId: (entry.message as PgMessage).transactionId }
        : {}),
    }),
  poisonTableName: pgPoisonTable,
  selectPoisoned: (db, p) => selectPgPoisoned(db, p.topic, p.filter),
  countPoisoned: (db, p) => countPgPoisoned(db, p.topic),
  addToCountersStatement: addToPgCountersStatement,
  selectCounterValue: selectPgCounterValue,
  setCounterValue: setPgCounterValue,
  pruneOffsetTopic: async (db, p, each) => {
    const { lowest, groups } = await selectLowestPgPosition(db, p.topic);
    const result = { removed: 0, floor: lowest?.offset, groups, batches: 0 };
    if (lowest === undefined) return result;
    for (let n = 0; n < p.maxBatches; n += 1) {
      const removed = await each(() => deletePgMessagesUpTo(db, p.topic, lowest, p.batchSize));
      result.removed += removed;
      result.batches += 1;
      if (removed < p.batchSize) break;
    }
    return result;
  },
  deleteAckedQueueRows: (db, p) => deletePgAckedQueueRows(db, p.topic, p.limit),
  deleteDedupRowsOlderThan: (db, p) => deletePgDedupRowsOlderThan(db, p.topic, p.windowS, p.limit),
  // undefined_table.
  isMissingTable: (error) => (error as { code?: unknown }).code === '42P01',
  ping: async (db) => {
    await db.query('SELECT 1');
  },
  selectProgress: selectPgProgress,
  progressReader: (p) => {
    const reader = pgProgressReader(p);
    return (db) => reader.read(db);
  },
  selectConsumption: selectPgConsumption,
  selectAllCounters: selectAllPgCounters,
  sumCounters: sumPgCounters,
  selectAllMessages: async (db, p) => (p.mode === 'offset' ? { messages: await selectAllPgMessages(db, p.topic) } : selectAllPgQueueMessages(db, p.topic)),
  truncateTopic: (db, p) => truncatePgTopic(db, p.topic),
  selectServerVersion: selectPgServerVersion,
};
