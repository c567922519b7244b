// The /proc/<pid>/stat reader: a command name holding spaces and parentheses neither cuts the name short nor
// shifts the fields after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { statCommand, statFieldsAfterComm } from '../src/harness/procStat.ts';

test('the command name runs from the first ( to the last ), and the fields start after it', () => {
  const line = '4242 (a) b (c)) Z 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0\n';
  assert.equal(statCommand(line), 'a) b (c)');
  const fields = statFieldsAfterComm(line);
  assert.equal(fields?.[0], 'Z');
  assert.equal(fields?.[19], '123456');
});

test('a line that is not a stat line has neither', () => {
  assert.equal(statCommand('no parentheses here'), undefined);
  assert.equal(statFieldsAfterComm('no parentheses here'), undefined);
});

test("this process's own stat line: the name /proc/self/comm gives, and state R (it is running)", () => {
  const line = readFileSync('/proc/self/stat', 'utf8');
  assert.equal(statCommand(line), readFileSync('/proc/self/comm', 'utf8').trimEnd());
  assert.equal(statFieldsAfterComm(line)?.[0], 'R');
});
