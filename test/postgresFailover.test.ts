// Exactly-once across a failover, CI-sized, on PostgreSQL: a primary and a streaming standby behind the virtual
// address (chaos --topology primary-replica --engine postgres), with the HTTP server, the worker and raw SQL
// publishers all connected through it.
// - failover-eo-offset-sync: two failovers (SIGKILL the primary under load, pg_promote, move the address, rebuild
//   a fresh standby from the promoted node): valid, no acknowledged publish lost, the server and the worker
//   reconnected by themselves;
// - failover-ctl-async: the standby held (its WAL receiver stopped) 1.5 s before the kill: must be caught losing
//   acknowledged publishes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { failoverCaseRunner } from './support/failoverCase.ts';

describe('exactly-once across a failover (PostgreSQL primary and standby)', () => {
  const logs: string[] = [];
  const run = failoverCaseRunner('postgres', logs);

  it('sync: valid across two failovers, nothing acknowledged lost, server and worker reconnect by themselves', async (t) => {
    const r = await run('failover-eo-offset-sync');
    assert.equal(r.error, undefined, r.why);
    assert.ok(r.passed, r.why);
    assert.equal(r.verdict?.verdict, 'valid', r.why);
    assert.equal(r.verdict?.lostRequests.length, 0);
    const failovers = r.faults.filter((f) => f.fault === 'primary-failover');
    assert.ok(failovers.length >= 2, `two failovers at least (${failovers.length})`);
    for (const f of failovers) {
      assert.equal(f.error, undefined, f.detail);
      assert.notEqual(f.recoveryMs, undefined, `recovered after ${f.detail}`);
      t.diagnostic(`${f.detail}; recovered in ${f.recoveryMs} ms`);
    }
    const [first, second] = failovers;
    assert.ok(
      r.history.some((a) => a.via === 'http' && a.outcome === 'ok' && a.startMs > (first!.recoveredMs ?? Infinity) && a.startMs < second!.startMs),
      'HTTP publishes succeeded after the first failover',
    );
    assert.equal(r.topology, 'primary-replica (sync)');
    assert.deepEqual(logs.filter((l) => /exited unexpectedly/.test(l)), [], 'the server and the worker stayed up through the failovers');
  });

  it('async, the control: the standby held back at the kill, acknowledged publishes are caught lost', async (t) => {
    const r = await run('failover-ctl-async');
    assert.equal(r.error, undefined, r.why);
    assert.ok(r.passed, r.why);
    // lostRequests is a capped list of examples; `lost` counts them all (and lost effects, none here).
    t.diagnostic(`lost: ${r.verdict?.lost} of ${r.verdict?.requests.ok} acknowledged`);
    assert.ok((r.verdict?.lostRequests.length ?? 0) > 0, r.why);
  });
});
