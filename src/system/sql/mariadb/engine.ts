// The MariaDB (and MySQL) engine behind the seam in ../engine.ts: each operation delegates to the module that
// owns the table's SQL, so this file holds no SQL of its own.
import type { SqlEngine } from '../engine.ts';
import { ensureSchema } from './schema.ts';
import { createOffsetsTable, ensureGroupRow, lockAckedOffsetStatement, ackedOffsetOf, writeAckedOffsetStatement, selectAckedOffset } from './offsetsTable.ts';
import { insertMessages, selectMessagesAfterAckedStatement, selectAllMessages } from './messagesTable.ts';
import { claimUnackedStatement, markAckedStatement, selectAllQueueMessages, selectAckedQueueOffsets } from './queueTable.ts';
import { insertMessagesSql } from './messagesTable.ts';
import { queueTable } from './identifiers.ts';
import { claimRequestIds } from './publishDedupTable.ts';
import { poisonMessageStatement } from './poisonTable.ts';
import { addToCountersStatement, selectCounterValue, selectAllCounters } from './counterTable.ts';
import { probeOpenWriters } from './innodbTrx.ts';
import { selectConsumption, selectProgress, selectServerVersion } from './observation.ts';

export const mariadbEngine: SqlEngine = {
  name: 'mariadb',
  ensureSchema: (db, p) => ensureSchema(db, { topic: p.topic, topicSchema: p.mode, dedup: p.dedup }),
  ensureGroup: async (db, p) => {
    await createOffsetsTable(db, p.topic);
    await ensureGroupRow(db, p.topic, p.consumerGroup);
  },
  publish: async (db, p) => {
    if (p.mode === 'offset') return insertMessages(db, p.topic, p.messages);
    const { sql, values } = insertMessagesSql(queueTable(p.topic), p.messages);
    await db.query(sql, values);
  },
  claimRequestIds: (tx, p) => claimRequestIds(tx, p.topic, p.claims, p.token),
  lockAckedOffsetStatement: (p) => lockAckedOffsetStatement(p.topic, p.consumerGroup),
  ackedOffsetOf: (rows, p) => ackedOffsetOf(rows, p.topic, p.consumerGroup),
  selectMessagesAfterAckedStatement: (p) => selectMessagesAfterAckedStatement(p.topic, p.consumerGroup, p.limit),
  writeAckedOffsetStatement: (p) => writeAckedOffsetStatement(p.topic, p.consumerGroup, p.offset),
  selectAckedOffset: (db, p) => selectAckedOffset(db, p.topic, p.consumerGroup),
  claimUnackedStatement: (p) => claimUnackedStatement(p.topic, p.limit),
  markAckedStatement: (p) => markAckedStatement(p.topic, p.offsets),
  poisonMessageStatement,
  addToCountersStatement,
  selectCounterValue,
  probeOpenWriters,
  selectProgress,
  selectConsumption,
  selectAllCounters,
  selectAllMessages: async (db, p) => {
    if (p.mode === 'offset') return { messages: await selectAllMessages(db, p.topic) };
    const [messages, ackedOffsets] = await Promise.all([selectAllQueueMessages(db, p.topic), selectAckedQueueOffsets(db, p.topic)]);
    return { messages, ackedOffsets };
  },
  selectServerVersion,
};
