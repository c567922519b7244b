// The fault registry and the nemesis loop, with a recording stand-in backend (no processes, no database).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOCATOR_STALL_PLAN, CLUSTER_FAULTS, FAULT_NAMES, REPLICATION_FAULTS, failpointsFor, missingRequirements, resolveFaults, runNemesis, skipReason } from '../src/scenarios/chaos/nemesis.ts';
import type { ClusterNodes } from '../src/harness/faults/clusterNodes.ts';
import type { ReplicaPair } from '../src/harness/replication/replicaPair.ts';
import { TcpProxy } from '../src/harness/faults/tcpProxy.ts';
import { checkMachineForAllocatorStall, unavailableStaller, type AllocatorStaller, type AllocatorStallPlan } from '../src/harness/faults/allocatorStallFault.ts';
import type { FaultContext } from '../src/scenarios/chaos/nemesis.ts';
import type { FaultBackend, ServiceRole } from '../src/harness/faults/backend.ts';
import { CHAOS_PROFILES, chaosMatrix, engineSkips } from '../src/scenarios/chaos/chaosMatrix.ts';

function recordingBackend(calls: string[]): FaultBackend {
  const rec = (what: string) => async (role: ServiceRole, arg?: unknown) => {
    calls.push(`${what} ${role}${typeof arg === 'string' ? ` ${arg}` : ''}`);
  };
  return {
    kind: 'local',
    kill: rec('kill'),
    stop: rec('stop'),
    start: rec('start'),
    restart: rec('restart'),
    pause: rec('pause'),
    resume: rec('resume'),
    close: async () => undefined,
  };
}

function context(calls: string[], over: Partial<FaultContext> = {}): FaultContext {
  return {
    backend: recordingBackend(calls),
    proxy: undefined,
    admin: undefined,
    databaseProcess: true,
    crashWorkerAt: undefined,
    ackMode: 'transactional',
    holdMs: 10,
    workerPauseMs: 10,
    ...over,
  };
}

test('an unknown fault name is an error that lists the valid ones', () => {
  assert.throws(() => resolveFaults('worker-kill,db-explode'), (e: Error) => {
    assert.match(e.message, /unknown fault "db-explode"/);
    for (const name of FAULT_NAMES) assert.ok(e.message.includes(name), `lists ${name}`);
    return true;
  });
  assert.deepEqual(
    resolveFaults(' worker-kill, db-kill ,worker-kill').map((f) => f.name),
    ['worker-kill', 'db-kill'],
  );
  assert.deepEqual(resolveFaults([]), []);
});

test('every registered fault has a description and the registry covers the issue list', () => {
  const all = resolveFaults([...FAULT_NAMES]);
  assert.equal(all.length, 16);
  assert.ok(FAULT_NAMES.includes('db-stall-allocator'));
  assert.ok(FAULT_NAMES.includes('primary-failover'));
  for (const f of all) assert.ok(f.description.length > 10);
});

/** A stand-in cluster of `size` nodes that records what the cluster faults do to it. */
function recordingCluster(calls: string[], size = 3): ClusterNodes {
  const down = new Set<number>();
  return {
    size,
    kill: async (n) => {
      calls.push(`kill node ${n}`);
      down.add(n);
    },
    start: async (n) => {
      calls.push(`start node ${n}`);
      down.delete(n);
      return 1;
    },
    running: (n) => !down.has(n),
    pause: (n) => calls.push(`pause node ${n}`),
    resume: (n) => calls.push(`resume node ${n}`),
    paused: () => false,
    isolate: async (n, on) => {
      calls.push(`${on ? 'isolate' : 'rejoin'} node ${n}`);
    },
    waitMembers: async () => undefined,
    waitAllSynced: async () => {
      calls.push('synced');
    },
  };
}

test('cluster faults need a cluster, act on each node in turn, and quorum-loss restarts its two victims together', async () => {
  const calls: string[] = [];
  const [nodeKill, quorumLoss] = resolveFaults('node-kill,quorum-loss');
  assert.equal(skipReason(nodeKill!, context(calls)), 'needs a private cluster (--topology galera)');
  const ctx = context(calls, { cluster: recordingCluster(calls) });
  assert.deepEqual(missingRequirements(nodeKill!, ctx), []);
  for (const round of [0, 1, 2, 3]) await nodeKill!.run(ctx, round);
  assert.deepEqual(calls.splice(0), ['kill node 1', 'start node 1', 'kill node 2', 'start node 2', 'kill node 3', 'start node 3', 'kill node 1', 'start node 1']);
  await quorumLoss!.run(ctx, 1);
  assert.deepEqual(calls.splice(0), ['kill node 1', 'kill node 3', 'start node 1', 'start node 3', 'synced']);
  for (const f of CLUSTER_FAULTS) assert.ok(!chaosMatrix('standard').some((c) => c.faults.includes(f)), `${f} is not in the single-server matrix`);
  for (const f of REPLICATION_FAULTS) assert.ok(!chaosMatrix('standard').some((c) => c.faults.includes(f)), `${f} is not in the single-server matrix`);
});

test('requirements: network faults need the proxy, db faults a database process', () => {
  const calls: string[] = [];
  const ctx = context(calls, { databaseProcess: false });
  const [netReset, dbKill, workerKill, failpoint] = resolveFaults('net-reset,db-kill,worker-kill,failpoint');
  assert.deepEqual(missingRequirements(netReset!, ctx), ['proxy']);
  assert.deepEqual(missingRequirements(dbKill!, ctx), ['database-process']);
  assert.deepEqual(missingRequirements(workerKill!, ctx), []);
  assert.deepEqual(missingRequirements(failpoint!, ctx), ['failpoints']);
});

test('the nemesis interleaves faults, heals each one and records recovery', async () => {
  const calls: string[] = [];
  const ctx = context(calls);
  const t0 = performance.now();
  const events = await runNemesis(
    ctx,
    {
      faults: resolveFaults('worker-kill,db-kill,worker-pause'),
      perFault: 2,
      intervalMs: 1,
      initialDelayMs: 1,
      recoveryTimeoutMs: 1_000,
      recovered: async () => new Promise((r) => setTimeout(r, 5)),
      t0,
      log: () => undefined,
    },
    new AbortController().signal,
  );
  assert.deepEqual(
    events.map((e) => `${e.fault}#${e.round}`),
    ['worker-kill#0', 'db-kill#0', 'worker-pause#0', 'worker-kill#1', 'db-kill#1', 'worker-pause#1'],
  );
  assert.deepEqual(calls.slice(0, 6), ['kill worker SIGKILL', 'start worker', 'kill db SIGKILL', 'start db', 'pause worker', 'resume worker']);
  for (const e of events) {
    assert.ok(e.recoveryMs !== undefined && e.recoveryMs >= 4, `${e.fault} recovery ${e.recoveryMs}`);
    assert.ok(e.healStartMs >= e.startMs);
  }
});

test('a fault that does not recover in time is recorded as such, and the schedule goes on', async () => {
  const calls: string[] = [];
  const events = await runNemesis(
    context(calls),
    {
      faults: resolveFaults('server-kill'),
      perFault: 2,
      intervalMs: 0,
      initialDelayMs: 0,
      recoveryTimeoutMs: 30,
      recovered: (_since, signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('timeout')), { once: true })),
      t0: performance.now(),
      log: () => undefined,
    },
    new AbortController().signal,
  );
  assert.equal(events.length, 2);
  assert.deepEqual(events.map((e) => e.recoveryMs), [undefined, undefined]);
});

test('the failpoint fault cycles through the points the ack mode reaches, the hazard first for the controls', () => {
  assert.equal(failpointsFor('after-commit')[0], 'consume-between-commits');
  assert.ok(!failpointsFor('transactional').includes('consume-between-commits'));
});

test('faults go on past the planned rounds while the load still runs, then stop', async () => {
  const calls: string[] = [];
  let injected = 0;
  const events = await runNemesis(
    context(calls),
    {
      faults: resolveFaults('worker-kill,db-kill'),
      perFault: 1,
      intervalMs: 0,
      initialDelayMs: 0,
      recoveryTimeoutMs: 1_000,
      recovered: async () => {
        injected += 1;
      },
      t0: performance.now(),
      log: () => undefined,
      // The "load" lasts for five faults: two planned, three more while it runs.
      continueWhile: () => injected < 5,
    },
    new AbortController().signal,
  );
  assert.deepEqual(
    events.map((e) => `${e.fault}#${e.round}`),
    ['worker-kill#0', 'db-kill#0', 'worker-kill#1', 'db-kill#1', 'worker-kill#2'],
  );
});

test('every profile runs every control, quick included', () => {
  const controlsOf = (p: (typeof CHAOS_PROFILES)[number]) => chaosMatrix(p).filter((c) => c.expected !== 'valid').map((c) => c.name).sort();
  const standard = controlsOf('standard');
  assert.ok(standard.length >= 5, `standard has the controls (${standard.join(', ')})`);
  for (const p of CHAOS_PROFILES) assert.deepEqual(controlsOf(p), standard, `${p} runs every control`);
});

test('the exactly-once cases carry raw SQL publishers beside the HTTP load; the end-to-end case does not', () => {
  for (const p of CHAOS_PROFILES) {
    for (const c of chaosMatrix(p).filter((x) => x.name.startsWith('eo-'))) {
      assert.ok(c.raw !== undefined && c.raw.publishers >= 1 && c.raw.requests >= 1, `${p}/${c.name} has raw publishers`);
    }
    // total == distinct request ids needs de-duplication on every publisher; raw INSERTs have none.
    assert.equal(chaosMatrix(p).find((x) => x.name === 'e2e-dedup-retry')?.raw, undefined);
  }
});

test('db-stall-allocator: skipped with the reason when there is no debugger, else run with its proof recorded', async () => {
  const [fault] = resolveFaults('db-stall-allocator');
  assert.ok(fault !== undefined);
  const calls: string[] = [];
  assert.deepEqual(missingRequirements(fault, context(calls)), ['allocator-stall']);
  assert.match(skipReason(fault, context(calls)) ?? '', /gdb/);
  const noPtrace = context(calls, { allocatorStaller: unavailableStaller('ptrace refused: Operation not permitted') });
  assert.equal(skipReason(fault, noPtrace), 'ptrace refused: Operation not permitted');

  const plans: AllocatorStallPlan[] = [];
  const staller = (stalls: number, inWindow: number): AllocatorStaller => ({
    unavailable: undefined,
    async stall(plan) {
      plans.push(plan);
      return { stalls, inWindow, detail: `stalled ${stalls}, ${inWindow} in the window` };
    },
  });
  assert.equal(skipReason(fault, context(calls, { allocatorStaller: staller(3, 3) })), undefined);
  const run = await fault.run(context(calls, { allocatorStaller: staller(12, 11) }), 0);
  assert.deepEqual(run.proof, { stalls: 12, inWindow: 11 });
  assert.match(run.detail, /11 in the window/);
  assert.deepEqual(plans[0], ALLOCATOR_STALL_PLAN);
  // Stalls none of which was proven are recorded as such (the case notes it beside its verdict).
  assert.deepEqual((await fault.run(context(calls, { allocatorStaller: staller(5, 0) }), 0)).proof, { stalls: 5, inWindow: 0 });

  // The nemesis keeps the proof on the fault event (verdict.json's faults).
  const events = await runNemesis(
    context(calls, { allocatorStaller: staller(4, 4) }),
    { faults: [fault], perFault: 1, intervalMs: 0, initialDelayMs: 0, recoveryTimeoutMs: 1_000, recovered: async () => undefined, t0: performance.now(), log: () => undefined },
    new AbortController().signal,
  );
  assert.deepEqual(events[0]?.proof, { stalls: 4, inWindow: 4 });
});

test('db-stall-allocator: the machine check names what is missing (here: a gdb that does not exist)', async () => {
  const reason = await checkMachineForAllocatorStall('/nonexistent/eob-test-gdb');
  assert.match(reason ?? '', /gdb could not be started.*install gdb/);
});

test('ctl-innodb-trx-only: the old gap rule under db-stall-allocator with raw publishers, in every profile, must be caught losing', () => {
  for (const p of CHAOS_PROFILES) {
    const c = chaosMatrix(p).find((x) => x.name === 'ctl-innodb-trx-only');
    assert.ok(c !== undefined, `${p} has ctl-innodb-trx-only`);
    assert.equal(c.expected, 'skipped');
    assert.equal(c.worker.gapProof, 'innodb-trx');
    assert.deepEqual(c.faults, ['db-stall-allocator']);
    assert.ok(c.raw !== undefined && c.raw.publishers >= 16, 'raw publishers: the stall matters for publishers that do not wait');
    assert.ok(c.requests > 0, 'the HTTP load stays too');
  }
  for (const p of CHAOS_PROFILES) {
    const eoOffset = chaosMatrix(p).filter((x) => x.name.startsWith('eo-offset'));
    assert.ok(eoOffset.every((x) => x.faults.includes('db-stall-allocator') && x.worker.gapProof === undefined), `${p}: eo-offset cases run the stall with the default proof`);
  }
});

test('on PostgreSQL: the MariaDB-only fault and control are left out with their reason; every other control runs', () => {
  const skips = engineSkips('postgres');
  assert.deepEqual(skips.map((s) => s.what).sort(), ['ctl-innodb-trx-only', 'db-stall-allocator']);
  for (const s of skips) assert.match(s.reason, /MariaDB only/);
  assert.deepEqual(engineSkips('mariadb'), []);
  for (const p of CHAOS_PROFILES) {
    const pg = chaosMatrix(p, undefined, 'postgres');
    assert.ok(pg.every((c) => !c.faults.includes('db-stall-allocator')), `${p}: no case injects db-stall-allocator on PostgreSQL`);
    assert.equal(pg.find((c) => c.name === 'ctl-innodb-trx-only'), undefined);
    const controls = pg.filter((c) => c.expected !== 'valid').map((c) => c.name).sort();
    assert.deepEqual(controls, ['ctl-after-commit', 'ctl-before-commit', 'ctl-no-retry-no-dedup', 'ctl-nonlocking-read'], `${p}: the controls that apply to PostgreSQL`);
    // watermill-sql's PostgreSQL subscriber reads below xmin: the baseline there, expected valid.
    assert.equal(pg.find((c) => c.name === 'wm-postgres')?.expected, 'valid');
  }
  const quickOffset = chaosMatrix('quick', undefined, 'postgres').find((c) => c.name === 'eo-offset-b1000');
  assert.deepEqual(quickOffset?.faults, ['worker-kill', 'db-kill', 'db-restart']);
  assert.deepEqual(chaosMatrix('quick'), chaosMatrix('quick', undefined, 'mariadb'), 'MariaDB keeps its matrix');
});

test('primary-failover holds the replica first (when planned), kills, promotes, moves the virtual address to the promoted node, rebuilds', async () => {
  const calls: string[] = [];
  const roles: ('primary' | 'replica' | 'down')[] = ['primary', 'replica'];
  const ports = [41001, 41002];
  const pair: ReplicaPair = {
    engine: 'mariadb',
    level: 'async',
    get nodes() {
      return roles.map((role, i) => ({ url: `mysql://root:x@127.0.0.1:${ports[i]}/eob`, port: ports[i]!, pid: role === 'down' ? undefined : 100 + i, role }));
    },
    get primary() {
      return this.nodes.find((n) => n.role === 'primary');
    },
    holdReplica: async () => void calls.push('hold'),
    releaseReplica: async () => void calls.push('release'),
    killPrimary: async () => {
      calls.push('kill');
      roles[roles.indexOf('primary')] = 'down';
    },
    promoteReplica: async () => {
      calls.push('promote');
      roles[roles.indexOf('replica')] = 'primary';
    },
    rebuildReplica: async () => {
      calls.push('rebuild');
      const i = roles.indexOf('down');
      roles[i] = 'replica';
      ports[i] = 41003;
      return 5;
    },
    stop: async () => undefined,
    remove: async () => undefined,
  };
  const vip = await TcpProxy.start({ targetPort: 41001 });
  // The address moves only to a node already promoted: before that, clients would write to a replica (or to
  // nothing); the order of the calls, not only the final target, is what the fault must get right.
  const retarget = vip.retarget.bind(vip);
  vip.retarget = (port: number, host?: string) => {
    calls.push(`retarget :${port} (${roles[ports.indexOf(port)]})`);
    return retarget(port, host);
  };
  try {
    const ctx = { ...context([]), failover: { pair, vip, plan: { holdReplicaMs: 20, rebuild: true } } };
    const [fault] = resolveFaults('primary-failover');
    assert.deepEqual(missingRequirements(fault!, ctx), []);
    assert.match(skipReason(fault!, context([])) ?? '', /primary\/replica pair \(--topology primary-replica\)/);
    const run = await fault!.run(ctx, 0);
    assert.deepEqual(calls, ['hold', 'kill', 'promote', 'retarget :41002 (primary)', 'rebuild']);
    assert.deepEqual(vip.target, { host: '127.0.0.1', port: 41002 });
    assert.match(run.detail, /replica held 20 ms; SIGKILL primary :41001, promoted :41002/);
    assert.match(run.detail, /fresh replica :41003/);
  } finally {
    await vip.close();
  }
});

test('a seeded schedule: the same seed gives the same kinds, order, pauses and targets; another seed another', async () => {
  const { FaultSchedule } = await import('../src/scenarios/chaos/nemesis.ts');
  const kinds = ['worker-kill', 'db-kill', 'net-delay', 'failpoint'] as const;
  // 12 planned injections and 8 past the plan (the load outlasted it): all of them reproduce.
  const steps = (seed: number | undefined) => {
    const s = new FaultSchedule(kinds, 3, 500, seed, 1_000);
    return { initialDelayMs: s.initialDelayMs, steps: Array.from({ length: 20 }, (_, i) => s.step(i)) };
  };
  assert.deepEqual(steps(42), steps(42));
  assert.notDeepEqual(steps(42).steps, steps(43).steps);
  const drawn = steps(42).steps;
  // The planned part holds each kind exactly perFault times, and rounds count each kind's injections.
  const plannedKinds = drawn.slice(0, 12).map((s) => s.fault);
  for (const k of kinds) assert.equal(plannedKinds.filter((f) => f === k).length, 3);
  assert.notDeepEqual(plannedKinds, Array.from({ length: 12 }, (_, i) => kinds[i % 4]), 'shuffled, not round-robin');
  assert.ok(drawn.every((s) => s.gapMs >= 125 && s.gapMs <= 875), 'pauses within a quarter and 1.75 times the interval');
  const firstDb = drawn.filter((s) => s.fault === 'db-kill').map((s) => s.round);
  assert.deepEqual(firstDb.slice(0, 3), [0, 1, 2]);
  // Without a seed: the fixed round-robin, the variant being the round.
  const fixed = steps(undefined);
  assert.equal(fixed.initialDelayMs, 1_000);
  assert.deepEqual(fixed.steps.slice(0, 5).map((s) => [s.fault, s.round, s.variant, s.gapMs]), [
    ['worker-kill', 0, 0, 500], ['db-kill', 0, 0, 500], ['net-delay', 0, 0, 500], ['failpoint', 0, 0, 500], ['worker-kill', 1, 1, 500],
  ]);
  // A control keeps its targets (the failpoint's hazard first); order and pauses are still drawn.
  const control = new FaultSchedule(kinds, 3, 500, 42, 1_000, false);
  assert.ok(Array.from({ length: 12 }, (_, i) => control.step(i)).every((s) => s.variant === s.round));
});

test('soak: run i draws its case from seed base + i, reproducibly, within the faults a soak allows', async () => {
  const { soakCases, soakFaults } = await import('../src/scenarios/chaos/chaosMatrix.ts');
  const a = soakCases('mariadb', 20, 1000);
  assert.deepEqual(a, soakCases('mariadb', 20, 1000));
  assert.deepEqual(soakCases('mariadb', 1, 1007)[0], a[7], 'one run from a failing seed is that run');
  assert.deepEqual(a.map((c) => c.seed), Array.from({ length: 20 }, (_, i) => 1000 + i));
  assert.ok(new Set(a.map((c) => c.faults.join(','))).size > 3, 'the fault sets vary');
  for (const engine of ['mariadb', 'postgres'] as const) {
    const allowed = soakFaults(engine);
    for (const c of soakCases(engine, 30, 7)) {
      assert.ok(c.faults.length >= 1 && c.faults.length <= 3);
      assert.ok(c.faults.every((f) => allowed.includes(f)), `${c.name}: ${c.faults.join(',')}`);
      assert.equal(c.expected, 'valid');
    }
  }
  assert.ok(!soakFaults('postgres').includes('db-stall-allocator'));
});

test('the primary-replica matrix: the synchronous level of each engine must stay valid, the controls must lose acknowledged publishes', async () => {
  const { replicationMatrix, replicationSkips } = await import('../src/scenarios/chaos/replicationMatrix.ts');
  for (const profile of CHAOS_PROFILES) {
    const mariadb = replicationMatrix(profile, 'mariadb');
    assert.deepEqual(mariadb.map((c) => c.name), ['failover-eo-offset-semi-sync', 'failover-eo-semi-sync-held', 'failover-ctl-async', 'failover-ctl-semi-sync-fallback']);
    assert.deepEqual(replicationMatrix(profile, 'postgres').map((c) => c.replication?.level), ['sync', 'sync', 'async']);
    for (const c of [...mariadb, ...replicationMatrix(profile, 'postgres')]) {
      assert.deepEqual(c.faults, ['primary-failover']);
      assert.equal(c.expected, c.name.includes('-ctl-') ? 'ack-publish-lost' : 'valid', c.name);
      if (c.expected === 'ack-publish-lost') assert.ok(c.replication?.holdReplicaMs !== undefined, `${c.name} holds the replica, so its loss is certain`);
    }
    // Repeated failovers even in the CI-sized profile.
    assert.ok(mariadb[0]!.perFault >= 2);
  }
  assert.deepEqual(replicationMatrix('quick', 'mariadb', ['worker-kill']), [], 'FAULTS without primary-failover leaves no case');
  assert.deepEqual(replicationSkips('postgres').map((s) => s.what), ['failover-ctl-semi-sync-fallback']);
});
