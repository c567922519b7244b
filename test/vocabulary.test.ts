// The handler choice is named --handler (worker) and --handlers (bench); the old names --profile and --profiles
// still work for one release, so "profile" can mean only the run size (quick|standard|full|soak).
import test from 'node:test';
import assert from 'node:assert/strict';
import { resolveHandler } from '../src/commands/worker.ts';
import { sweepOptionsFromArgs } from '../src/commands/bench.ts';

test('worker: --handler picks the handler, --profile is its deprecated alias, a disagreement is an error', () => {
  assert.equal(resolveHandler(undefined, undefined), 'batched');
  assert.equal(resolveHandler('watermill', undefined), 'watermill');
  assert.equal(resolveHandler(undefined, 'watermill'), 'watermill');
  assert.equal(resolveHandler('watermill', 'watermill'), 'watermill');
  assert.throws(() => resolveHandler('batched', 'watermill'), /--handler batched and --profile watermill disagree/);
});

test('bench: --handlers sets the handler grid, --profiles is its deprecated alias', () => {
  assert.deepEqual(sweepOptionsFromArgs({ profile: 'quick', handlers: 'watermill' }).grid.handlers, ['watermill']);
  assert.deepEqual(sweepOptionsFromArgs({ profile: 'quick', profiles: 'batched,watermill' }).grid.handlers, ['batched', 'watermill']);
  assert.throws(() => sweepOptionsFromArgs({ profile: 'quick', handlers: 'batched', profiles: 'watermill' }), /--profiles is the old name of --handlers/);
});
