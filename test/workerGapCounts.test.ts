// The worker's `worker gaps {...}` lines summed over worker processes, restarts included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerGapCounts } from '../src/harness/workerGapCounts.ts';
import { gapCounts, parseGapLine } from '../src/system/workerGapLine.ts';
import { emptyStats } from '../src/system/pubsub/consumeLoop.ts';

function fakeChild() {
  const listeners: ((line: string) => void)[] = [];
  return { onLine: (l: (line: string) => void) => listeners.push(l), emit: (line: string) => listeners.forEach((l) => l(line)) };
}

const line = (passed: number, byTimeout: number, conflictRetries = 0) =>
  `worker gaps ${JSON.stringify(gapCounts({ ...emptyStats(), gapsPassed: passed, gapsPassedByTimeout: byTimeout, gapsPassedByStatements: passed - byTimeout, conflictRetries }))}`;

test('a process\'s last line is its total; a restart starts a new process; children add up', () => {
  const counts = new WorkerGapCounts();
  const a = fakeChild();
  const b = fakeChild();
  counts.watch(a);
  counts.watch(b);
  a.emit('worker started {}');
  a.emit(line(1, 0));
  a.emit(line(3, 1));
  a.emit('worker started {}'); // restarted: the first process passed 3, 1 of them by timeout
  a.emit(line(2, 0));
  b.emit('worker started {}');
  b.emit(line(5, 2));
  b.emit(line(5, 2, 4)); // a queue consumer's conflict retries come on the same line
  b.emit('some other line');
  assert.deepEqual(counts.totals(), { gapsPassed: 10, gapsPassedByTimeout: 3, gapsPassedByStatements: 7, gapsPassedByInnodbTrx: 0, conflictRetries: 4 });
});

test('other lines and broken JSON are not gap lines', () => {
  assert.equal(parseGapLine('worker started {"gapsPassed":3}'), undefined);
  assert.equal(parseGapLine('worker gaps {oops'), undefined);
  assert.deepEqual(parseGapLine('worker gaps {"gapsPassed":2}'), { gapsPassed: 2, gapsPassedByTimeout: 0, gapsPassedByStatements: 0, gapsPassedByInnodbTrx: 0, conflictRetries: 0 });
});
