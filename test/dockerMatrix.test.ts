// The docker backend's cases and the Watermill example's exact-count rule, with no engine: which cases run on containers,
// with which faults, and that a wrong count or a timed-out drain fails the Watermill example's check instead of passing it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOCKER_FAULTS, SEED_CHECK_REQUESTS, chaosMatrix, dockerMatrix } from '../src/scenarios/chaos/chaosMatrix.ts';
import { exactCountMet } from '../src/scenarios/chaos/caseResult.ts';

test("docker cases: exactly-once cases under every container fault, the controls a container can carry, the Watermill example's check", () => {
  for (const profile of ['quick', 'standard'] as const) {
    const cases = dockerMatrix(profile);
    const local = chaosMatrix(profile);
    for (const c of cases) {
      assert.ok(c.faults.every((f) => DOCKER_FAULTS.includes(f)), `${profile} ${c.name}: only container faults (${c.faults.join(',')})`);
    }
    for (const c of local.filter((x) => x.expected === 'valid')) {
      assert.deepEqual(cases.find((x) => x.name === c.name)?.faults, DOCKER_FAULTS, `${profile} ${c.name} under all six`);
    }
    const controls = cases.filter((c) => c.expected !== 'valid').map((c) => c.name);
    assert.deepEqual(controls, ['ctl-nonlocking-read', 'ctl-watermill', 'ctl-no-retry-no-dedup'], `${profile} controls`);
    for (const name of ['ctl-nonlocking-read', 'ctl-watermill']) {
      assert.ok((cases.find((c) => c.name === name)?.requests ?? 0) >= 30_000, `${profile} ${name}: the race needs >= 30,000 on containers`);
    }
    const seed = cases.find((c) => c.name === 'seed-check');
    assert.ok(seed !== undefined);
    assert.equal(seed.requests, SEED_CHECK_REQUESTS);
    assert.equal(seed.exactTotal, SEED_CHECK_REQUESTS);
    assert.equal(seed.counters, 1, 'one counter, as the Watermill example counts');
    assert.deepEqual([...seed.faults].sort(), ['db-restart', 'worker-stop']);
    assert.ok(seed.perFault >= 3, 'restarted a few times');
  }
  assert.deepEqual(dockerMatrix('quick', ['db-kill']).find((c) => c.name === 'seed-check')?.faults, [], "FAULTS= narrows the Watermill example's check too");
});

test("the Watermill example's rule: the exact count, reached in time", () => {
  assert.equal(exactCountMet(10_000, 10_000, true).passed, true);
  assert.equal(exactCountMet(10_000, 9_999, true).passed, false, 'one lost');
  assert.equal(exactCountMet(10_000, 10_001, true).passed, false, 'one counted twice');
  assert.equal(exactCountMet(10_000, undefined, true).passed, false, 'never read');
  const timedOut = exactCountMet(10_000, 10_000, false);
  assert.equal(timedOut.passed, false, 'a timeout fails even when the count happened to be right');
  assert.match(timedOut.why, /timed out/);
});
