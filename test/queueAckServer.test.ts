// Queue consumers refuse a server that cannot run their ack (a MariaDB anonymous block) with a sentence that says
// what to use instead, rather than failing with a syntax error at the first ack. No database: the version query's
// answer is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SqlExecutor } from '../src/system/types.ts';
import { assertQueueAckSupported } from '../src/system/sql/mariadb/queueTable.ts';

const answering = (version: string): SqlExecutor => ({
  query: async <T>() => [{ v: version }] as T,
  execute: async <T>() => [] as T,
});

test('a queue consumer starts on MariaDB and refuses MySQL, naming offset mode', async () => {
  await assertQueueAckSupported(answering('10.11.19-MariaDB-0+deb12u1'));
  await assertQueueAckSupported(answering('10.11.9-MariaDB-log'));
  await assert.rejects(assertQueueAckSupported(answering('8.4.3')), /queue mode needs MariaDB.*this server is 8\.4\.3; use offset mode \(--mode offset\) on MySQL/);
});
