// Exactly-once across a failover, CI-sized: a MariaDB primary and replica behind the virtual address (chaos
// --topology primary-replica), with the HTTP server, the worker and raw SQL publishers all connected through it.
// - failover-eo-offset-semi-sync: two failovers (SIGKILL the primary under load, promote, move the address,
//   rebuild a fresh replica): valid, no acknowledged publish lost, the server and the worker reconnected by
//   themselves;
// - failover-ctl-async: the replica held back 1.5 s before the kill: must be caught losing acknowledged publishes.
// And the options of the topology: a level the engine does not have, a level without the topology, and an engine
// whose pair is not available are refused with errors that say so.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SystemUnderTest } from '../src/harness/systemUnderTest.ts';
import { failoverCaseRunner } from './support/failoverCase.ts';

describe('exactly-once across a failover (MariaDB primary and replica)', () => {
  const logs: string[] = [];
  const run = failoverCaseRunner('mariadb', logs);

  it('semi-sync: valid across two failovers, nothing acknowledged lost, server and worker reconnect by themselves', async () => {
    const r = await run('failover-eo-offset-semi-sync');
    assert.equal(r.error, undefined, r.why);
    assert.ok(r.passed, r.why);
    assert.equal(r.verdict?.verdict, 'valid', r.why);
    assert.equal(r.verdict?.lostRequests.length, 0);
    const failovers = r.faults.filter((f) => f.fault === 'primary-failover');
    assert.ok(failovers.length >= 2, `two failovers at least (${failovers.length})`);
    for (const f of failovers) {
      assert.equal(f.error, undefined, f.detail);
      assert.notEqual(f.recoveryMs, undefined, `recovered after ${f.detail}`);
    }
    // Requests answered between the first failover's recovery and the second: the server published through the
    // promoted node (the load may end before the last one recovers).
    const [first, second] = failovers;
    assert.ok(
      r.history.some((a) => a.via === 'http' && a.outcome === 'ok' && a.startMs > (first!.recoveredMs ?? Infinity) && a.startMs < second!.startMs),
      'HTTP publishes succeeded after the first failover',
    );
    assert.equal(r.topology, 'primary-replica (semi-sync)');
    // Nothing restarted them: a child that died would be logged as exited unexpectedly (and started again by the heal).
    assert.deepEqual(logs.filter((l) => /exited unexpectedly/.test(l)), [], 'the server and the worker stayed up through the failovers');
  });

  it('async, the control: the replica held back at the kill, acknowledged publishes are caught lost', async () => {
    const r = await run('failover-ctl-async');
    assert.equal(r.error, undefined, r.why);
    assert.ok(r.passed, r.why);
    assert.ok((r.verdict?.lostRequests.length ?? 0) > 0, r.why);
  });

  it('refuses options that do not fit the topology, saying what to do', async () => {
    await assert.rejects(SystemUnderTest.start({ engine: 'mariadb', topology: 'primary-replica', replication: 'sync', handleSignals: false }), /replication must be one of async, semi-sync on mariadb \(got "sync"\)/);
    await assert.rejects(SystemUnderTest.start({ engine: 'mariadb', topology: 'single', replication: 'async', handleSignals: false }), /apply to topology primary-replica/);
    await assert.rejects(
      SystemUnderTest.start({ engine: 'mariadb', topology: 'primary-replica', databaseUrl: 'mysql://root:x@127.0.0.1:1/eob', handleSignals: false }),
      /topology primary-replica starts private servers; leave out the database URL/,
    );
  });
});
