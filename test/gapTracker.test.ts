// GapTracker on its own: a fake clock and scripted PROCESSLIST / locking-read / INNODB_TRX reads (literal
// fixtures, no db).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GapTracker, judgeRangeLocks, type GapProof } from '../src/system/pubsub/gapTracker.ts';
import type { GapProbes, OffsetRangeLocks, OpenWriters, RunningStatements } from '../src/system/sql/gapProbes.ts';
import { INNODB_TRX_CACHE_IDLE_MS } from '../src/system/sql/mariadb/innodbTrx.ts';

function tracker(clock: { t: number }, proof: GapProof, timeoutMs = 5_000) {
  return new GapTracker({ proof, probeDelayMs: 20, timeoutMs, now: () => clock.t });
}

/** Scripted reads; the last of each list repeats. `log` records the order of the reads, `ranges` their ranges. */
function probes(script: { statements?: RunningStatements[]; writers?: OpenWriters[]; locks?: OffsetRangeLocks[] }) {
  const log: string[] = [];
  const ranges: [number, number][] = [];
  let s = 0;
  let w = 0;
  let l = 0;
  const p: GapProbes = {
    statements: async () => {
      const list = script.statements ?? [new Map()];
      log.push('statements');
      return new Map(list[Math.min(s++, list.length - 1)]!);
    },
    requireProcessPrivilege: async () => undefined,
    rangeLocks: async (from, below) => {
      const list = script.locks ?? [rows()];
      log.push('locks');
      ranges.push([from, below]);
      return list[Math.min(l++, list.length - 1)]!;
    },
    writers: async () => {
      const list = script.writers ?? [fresh()];
      log.push('writers');
      return list[Math.min(w++, list.length - 1)]!;
    },
    writersCacheIdleMs: INNODB_TRX_CACHE_IDLE_MS,
  };
  return { p, log, ranges };
}

const rows = (...offsets: number[]): OffsetRangeLocks => ({ kind: 'rows', offsets });
const locked: OffsetRangeLocks = { kind: 'locked', errno: 1205 };

const fresh = (...ids: string[]): OpenWriters => ({ fresh: true, writers: new Set(ids) });
const stale = (...ids: string[]): OpenWriters => ({ fresh: false, writers: new Set(ids) });
const running = (...pairs: [number, string][]): RunningStatements => new Map(pairs.map(([id, q]) => [String(id), q]));

/** Calls decide every `stepMs` until it skips or `maxSteps` calls were made. */
async function drive(g: GapTracker, clock: { t: number }, p: GapProbes, lowestVisible: number, stepMs = 50, maxSteps = 400) {
  for (let i = 0; i < maxSteps; i += 1) {
    const d = await g.decide(5, lowestVisible, lowestVisible, p);
    if (d.kind === 'skip') return { decision: d, steps: i };
    clock.t += stepMs;
  }
  return { decision: { kind: 'wait' as const }, steps: maxSteps };
}

describe('GapTracker, innodb-trx rule (the control)', () => {
  it('waits on first sight and reads nothing before the probe delay', async () => {
    const clock = { t: 1_000 };
    const g = tracker(clock, 'innodb-trx');
    const s = probes({});
    assert.deepEqual(await g.decide(5, 9, 9, s.p), { kind: 'wait' });
    clock.t += 10;
    assert.deepEqual(await g.decide(5, 9, 9, s.p), { kind: 'wait' });
    assert.deepEqual(s.log, []);
  });

  it('passes the hole once every writer of the first fresh snapshot has ended', async () => {
    const clock = { t: 1_000 };
    const g = tracker(clock, 'innodb-trx');
    const s = probes({ writers: [fresh('7', '8'), fresh('8', '12'), fresh('12')] });
    await g.decide(5, 9, 9, s.p);
    clock.t += 25;
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait'); // suspects 7, 8
    clock.t += 50;
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait', 'no read within 100 ms of the last one');
    assert.equal(s.log.length, 1);
    clock.t += 100;
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait'); // 8 still open; 12 is new, not a suspect
    clock.t += 120;
    assert.deepEqual(await g.decide(5, 9, 9, s.p), { kind: 'skip', from: 5, to: 8, waitedMs: 295, passedBy: 'innodb-trx' });
    assert.ok(!s.log.includes('statements'), 'the control never reads PROCESSLIST');
  });

  it('never trusts a stale snapshot, even an empty one', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'innodb-trx');
    const s = probes({ writers: [stale(), stale(), fresh('3')] });
    await g.decide(5, 6, 6, s.p);
    for (let i = 0; i < 3; i += 1) {
      clock.t += 150;
      assert.equal((await g.decide(5, 6, 6, s.p)).kind, 'wait');
    }
    assert.equal(s.log.length, 3);
  });

  it('forgets a hole that filled, and starts over for a new one', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'innodb-trx');
    const s = probes({});
    await g.decide(5, 9, 9, s.p);
    g.filled(5);
    clock.t += 500;
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait', 'a new first sight');
    assert.deepEqual(s.log, []);
  });
});

describe('GapTracker, statements proof (the default)', () => {
  it('the allocator window: the old rule passes on an empty fresh INNODB_TRX, the new one waits for the statement', async () => {
    // Connection 42 has taken offset 5 and is stopped before its transaction registered: INNODB_TRX is empty,
    // PROCESSLIST shows it inside statement 1001 for the next 400 ms, then a new statement (it committed).
    const script = {
      statements: [running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1001']), running([42, '1002'])],
      writers: [fresh()],
      locks: [rows()],
    };
    const oldClock = { t: 0 };
    const old = await drive(tracker(oldClock, 'innodb-trx'), oldClock, probes(script).p, 9);
    assert.equal(old.decision.kind, 'skip', 'the INNODB_TRX-only rule passes the hole');
    assert.ok(old.steps <= 2, `it passes at once (step ${old.steps}), while offset 5 is still to come`);

    const clock = { t: 0 };
    const s = probes(script);
    const now = await drive(tracker(clock, 'statements'), clock, s.p, 9);
    assert.equal(now.decision.kind, 'skip');
    assert.ok(now.steps >= 9, `the statements proof waits for statement 1001 to end (passed at step ${now.steps})`);
    assert.deepEqual(s.log.slice(0, 9), Array(9).fill('statements'), 'the range is read only after every recorded statement moved on');
    assert.equal(s.log[9], 'locks');
    assert.ok(!s.log.includes('writers'), 'the statements proof never reads INNODB_TRX');
    if (now.decision.kind === 'skip') assert.equal(now.decision.passedBy, 'statements');
  });

  it('a statement has moved on when its connection is gone, sleeps, or runs another QUERY_ID', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements');
    const s = probes({
      statements: [
        running([1, '10'], [2, '20'], [3, '30']),
        running([1, '10'], [2, '21'], [3, '30']), // 2: another statement
        running([1, '10'], [4, '40']), // 3: gone or Sleep (absent); 4 is new and not waited for
        running([4, '40']), // 1 gone
      ],
    });
    await g.decide(5, 9, 9, s.p);
    for (let i = 0; i < 4; i += 1) {
      clock.t += 30;
      assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait', `step ${i}`);
    }
    assert.deepEqual(s.log, ['statements', 'statements', 'statements', 'statements']);
    clock.t += 30;
    assert.deepEqual(await g.decide(5, 9, 9, s.p), { kind: 'skip', from: 5, to: 8, waitedMs: 150, passedBy: 'statements' });
  });

  it('step 2 decides from the locking read: lock error -> wait, rows below the lowest visible -> filled, none -> pass', () => {
    // Literal fixtures: hole 5-8 below the lowest visible offset 9, the range read was [5, 12).
    assert.deepEqual(judgeRangeLocks({ kind: 'locked', errno: 1205 }, 9), { kind: 'held', errno: 1205 });
    assert.deepEqual(judgeRangeLocks(rows(6, 9, 10), 9), { kind: 'filled', offsets: [6] });
    assert.deepEqual(judgeRangeLocks(rows(), 9), { kind: 'permanent', committed: 0 });
    assert.deepEqual(judgeRangeLocks(rows(9, 10, 11), 9), { kind: 'permanent', committed: 3 }, 'rows at or above the lowest visible fill no head hole');
  });

  it('then reads [first hole, highest visible at step 1) until no row is held, and waits for rows that filled', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements');
    const s = probes({ statements: [running()], locks: [locked, locked, rows(7), rows(9)] });
    await g.decide(5, 9, 12, s.p);
    clock.t += 25;
    assert.equal((await g.decide(5, 9, 12, s.p)).kind, 'wait'); // step 1: nobody inside a statement
    clock.t += 5;
    assert.equal((await g.decide(5, 9, 20, s.p)).kind, 'wait', 'held: a writer of the range has not ended');
    clock.t += 5;
    assert.equal((await g.decide(5, 9, 20, s.p)).kind, 'wait', 'not read again within 20 ms');
    assert.equal(s.log.filter((x) => x === 'locks').length, 1);
    clock.t += 20;
    assert.equal((await g.decide(5, 9, 20, s.p)).kind, 'wait', 'held again');
    clock.t += 20;
    assert.equal((await g.decide(5, 9, 20, s.p)).kind, 'wait', '7 committed since the read: filled, the next read takes it');
    clock.t += 5;
    assert.equal((await g.decide(5, 7, 20, s.p)).kind, 'wait', 'after a fill, not read again within 20 ms either');
    clock.t += 20;
    const d = await g.decide(5, 7, 20, s.p); // the read now sees 7; 5 and 6 are still holes
    assert.deepEqual(d, { kind: 'skip', from: 5, to: 11, waitedMs: 100, passedBy: 'statements' }, 'to = 12 - 1: offsets first seen above 12 are not covered');
    assert.deepEqual(s.ranges, Array(4).fill([5, 12]));
  });

  it('one proof covers every hole below the highest offset the read returned; the control only the first hole', async () => {
    for (const [proof, to] of [['statements', 39], ['innodb-trx', 8]] as const) {
      const clock = { t: 0 };
      const g = tracker(clock, proof);
      const s = probes({});
      let d = await g.decide(5, 9, 40, s.p);
      for (let i = 0; i < 5 && d.kind === 'wait'; i += 1) {
        clock.t += 150;
        d = await g.decide(5, 9, 40, s.p);
      }
      assert.equal(d.kind === 'skip' ? d.to : undefined, to, proof);
    }
  });

  it('liveness: an unrelated statement that never ends is passed after the bound, recorded as timeout', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements', 2_000);
    const s = probes({ statements: [running([77, '5000'])] });
    const r = await drive(g, clock, s.p, 9);
    assert.deepEqual(r.decision, { kind: 'skip', from: 5, to: 8, waitedMs: 2_000, passedBy: 'timeout' });
    assert.ok(!s.log.includes('locks'));
  });

  it('liveness: a row of the range held forever (an XA transaction left PREPARED) is passed after the bound, recorded as timeout', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements', 2_000);
    const r = await drive(g, clock, probes({ statements: [running()], locks: [locked] }).p, 9);
    assert.deepEqual(r.decision, { kind: 'skip', from: 5, to: 8, waitedMs: 2_000, passedBy: 'timeout' });
  });

  it('a commit waiting for a semi-sync acknowledgement keeps the bound from passing the hole; it passes once none waits', async () => {
    // The row held at COMMIT by an absent replica is locked (step 2 waits) and may commit any time later.
    const clock = { t: 0 };
    const g = tracker(clock, 'statements', 2_000);
    const s = probes({ statements: [running()], locks: [locked] });
    let awaiting = 1;
    let asked = 0;
    const p: GapProbes = { ...s.p, commitsAwaitingReplica: async () => { asked += 1; return awaiting; } };
    const held = await drive(g, clock, p, 9, 50, 200); // 10 s of looks, five times the bound
    assert.equal(held.decision.kind, 'wait');
    assert.ok(asked >= 4, `asked at each bound: ${asked}`);
    awaiting = 0;
    const r = await drive(g, clock, p, 9);
    assert.deepEqual(r.decision, { kind: 'skip', from: 5, to: 8, waitedMs: 2_000, passedBy: 'timeout' });
  });

  it('an idle open transaction that holds no row of the range does not hold the proof up', async () => {
    // The previous step 2 waited for every writer in INNODB_TRX, on any table; the locking read meets only the
    // range's own rows, so the scripted INNODB_TRX writer 55 is irrelevant and never read.
    const clock = { t: 0 };
    const s = probes({ statements: [running()], writers: [fresh('55')], locks: [rows()] });
    const r = await drive(tracker(clock, 'statements', 2_000), clock, s.p, 9);
    assert.equal(r.decision.kind === 'skip' ? r.decision.passedBy : r.decision.kind, 'statements');
    assert.ok(!s.log.includes('writers'));
  });

  it('a freeze between two looks counts as at most 1 s toward the bound', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements', 5_000);
    const s = probes({ statements: [running([77, '5000'])] });
    await g.decide(5, 9, 9, s.p);
    clock.t += 60_000; // database or consumer frozen for a minute
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait');
    clock.t += 3_000;
    assert.equal((await g.decide(5, 9, 9, s.p)).kind, 'wait', '1 s + 1 s counted');
  });

  it('without the PROCESS privilege only the bound is left (PROCESSLIST alone would show only our own connections)', async () => {
    const clock = { t: 0 };
    const g = tracker(clock, 'statements', 5_000);
    const denied = async (): Promise<never> => {
      throw Object.assign(new Error('Access denied; you need the PROCESS privilege'), { errno: 1227 });
    };
    const s = probes({ statements: [running()], locks: [rows()] });
    const p: GapProbes = { ...s.p, requireProcessPrivilege: denied };
    const r = await drive(g, clock, p, 9, 100);
    assert.deepEqual(r.decision, { kind: 'skip', from: 5, to: 8, waitedMs: 5_000, passedBy: 'timeout' });
    assert.deepEqual(s.log, [], 'nothing read: the privilege check comes first');
  });
});
