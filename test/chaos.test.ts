// One quick chaos case end to end on a private database: worker SIGKILL and database SIGKILL under HTTP and
// raw SQL load must come out valid; and one control (after-commit acks with a crash between the two commits) must be caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCase } from '../src/scenarios/chaos/runCase.ts';
import { chaosMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';
import { readEnvironment } from '../src/config.ts';
import { checkMachineForAllocatorStall } from '../src/harness/faults/allocatorStallFault.ts';

const env = readEnvironment();
// Always the project's own private database, never MYSQL_URL: the case kills the database.
const run = { databaseUrl: undefined, mariadbBinDir: env.mariadbBinDir, searchPath: env.searchPath };

function quickCase(name: string) {
  const c = chaosMatrix('quick').find((x) => x.name === name);
  assert.ok(c !== undefined, `quick profile has ${name}`);
  return c;
}

test('chaos: offset mode under a worker kill and a database kill is valid', { timeout: 180_000 }, async () => {
  const base = quickCase('eo-offset-b1000');
  assert.ok(base.raw !== undefined, 'the exactly-once case has raw SQL publishers');
  const c = { ...base, faults: ['worker-kill', 'db-kill'] as const, perFault: 1, requests: 800, raw: { publishers: 8, requests: 200 } };
  const r = await runCase(c, run);
  assert.equal(r.error, undefined);
  // The planned round first, in order; faults may go on, in the same rotation, while the load still runs.
  const kinds = r.faults.map((f) => f.fault);
  assert.deepEqual(kinds.slice(0, 2), ['worker-kill', 'db-kill']);
  kinds.forEach((k, i) => assert.equal(k, i % 2 === 0 ? 'worker-kill' : 'db-kill'));
  for (const f of r.faults) assert.ok(f.recoveryMs !== undefined, `${f.fault} recovered (${f.detail})`);
  assert.ok(r.verdict !== undefined);
  assert.equal(r.verdict.verdict, 'valid', r.verdict.reasons.join('; '));
  assert.equal(r.passed, true);
  // Every request of the case and its warm-up, and every raw INSERT, is in the history, and the checker saw all of them.
  assert.equal(r.verdict.requests.distinct, 800 + 50 + 200);
  const raw = r.history.filter((a) => a.via === 'sql');
  assert.equal(raw.length, 200);
  assert.ok(raw.some((a) => a.outcome === 'ok'), 'some raw INSERTs committed');
  assert.ok(r.verdict.requests.ok >= 1, 'some requests succeeded');
  assert.equal(r.verdict.messages.pending, 0);
  assert.ok(r.verdict.total >= r.verdict.requests.ok);
});

test('chaos control: after-commit acks with a crash between the commits are caught as duplicates', { timeout: 180_000 }, async () => {
  const c = { ...quickCase('ctl-after-commit'), faults: ['failpoint'] as const, perFault: 1, requests: 600 };
  const r = await runCase(c, run);
  assert.equal(r.error, undefined);
  assert.match(r.faults[0]?.detail ?? '', /died at consume-between-commits/);
  assert.ok(r.verdict !== undefined);
  assert.equal(r.verdict.verdict, 'invalid');
  assert.ok(r.verdict.duplicated > 0, `duplicates detected (${r.verdict.duplicated})`);
  assert.equal(r.verdict.publishDuplicated, 0, 'the worker, not the publisher, is blamed');
  assert.ok(r.verdict.counterViolations.every((v) => v.kind === 'duplicated' && v.offsets.length > 0));
  assert.ok(r.verdict.anomalies['counted-twice'] > 0, 'in the taxonomy: counted twice');
  assert.equal(r.verdict.anomalies['never-counted'] + r.verdict.anomalies.skipped, 0);
  assert.equal(r.passed, true);
});

test('chaos control: the INNODB_TRX-only gap rule under db-stall-allocator with raw publishers is caught losing', { timeout: 180_000 }, async (t) => {
  const unavailable = await checkMachineForAllocatorStall();
  if (unavailable !== undefined) {
    t.skip(`db-stall-allocator cannot run here: ${unavailable}`);
    return;
  }
  // The quick case as it is: one injection of 600 HTTP + 1,200 raw lost 0 in 2 of 5 runs with 300 ms stalls;
  // the quick size with 500 ms stalls lost 34-61 in every run made. In one full-suite run on an idle machine it
  // still came out clean (0 lost, no hole passed at all, every stall proven), and 3 runs of it alone right after
  // lost messages: a clean run of a control is the race not happening, not the rule holding, so a clean first
  // attempt gets one more.
  const c = quickCase('ctl-innodb-trx-only');
  let r = await runCase(c, run);
  if (r.error === undefined && r.verdict !== undefined && r.verdict.lost === 0) {
    t.diagnostic(`first attempt came out clean (gaps passed ${r.gapsPassed}); one more`);
    r = await runCase(c, run);
  }
  assert.equal(r.error, undefined);
  const stalls = r.faults.filter((f) => f.fault === 'db-stall-allocator');
  assert.ok(stalls.length >= c.perFault, `${stalls.length} injections, ${c.perFault} planned`);
  // The planned injections are the ones the load is spread over: each must stall inserts. The nemesis goes on
  // injecting while the load lasts (here the planned ones take ~5 s against the plan's 6.5, so two more follow),
  // and the last of those extras can begin as the final inserts finish and find none to stall (seen: 0 of 0,
  // and 5 of 127 in a passing run).
  const planned = stalls.slice(0, c.perFault);
  assert.ok(planned.every((f) => f.proof !== undefined && f.proof.stalls > 0), `every planned injection stalled inserts (${stalls.map((f) => f.detail).join('; ')})`);
  assert.ok(stalls.some((f) => (f.proof?.inWindow ?? 0) > 0), 'at least one stall proven in the allocator window');
  assert.ok(r.verdict !== undefined);
  assert.ok(r.verdict.lost > 0, `the old rule lost messages (${r.verdict.lost}; gaps passed ${r.gapsPassed}; ${stalls.map((f) => f.detail).join("; ")})`);
  assert.ok((r.gapsPassed ?? 0) > 0, 'the worker reported the holes it passed');
  // The worker's event log tells the skip apart: messages acknowledged by the group that it never read.
  assert.equal(r.verdict.consumerEvidence, true);
  assert.ok(r.verdict.anomalies.skipped > 0, `skipped ${r.verdict.anomalies.skipped}, never-counted ${r.verdict.anomalies['never-counted']}`);
  assert.ok((r.consumerEvents ?? []).some((e) => e.e === 'pass' && e.by === 'innodb-trx'), 'the log names the passes and their proof');
  assert.equal(r.passed, true);
});
