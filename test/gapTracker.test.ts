// GapTracker on its own: a fake clock and scripted INNODB_TRX snapshots.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GapTracker } from '../src/system/pubsub/gapTracker.ts';
import type { OpenWriters } from '../src/system/sql/mariadb/innodbTrx.ts';

function tracker(clock: { t: number }) {
  return new GapTracker({ probeDelayMs: 20, fallbackTimeoutMs: 5_000, now: () => clock.t });
}

function snapshots(...list: OpenWriters[]) {
  let calls = 0;
  const probe = async () => {
    const s = list[Math.min(calls, list.length - 1)]!;
    calls += 1;
    return s;
  };
  return { probe, calls: () => calls };
}

const fresh = (...ids: string[]): OpenWriters => ({ fresh: true, writers: new Set(ids) });
const stale = (...ids: string[]): OpenWriters => ({ fresh: false, writers: new Set(ids) });

describe('GapTracker', () => {
  it('waits on first sight and does not read INNODB_TRX before the probe delay', async () => {
    const clock = { t: 1_000 };
    const g = tracker(clock);
    const s = snapshots(fresh());
    assert.deepEqual(await g.decide(5, 9, s.probe), { kind: 'wait' });
    clock.t += 10;
    assert.deepEqual(await g.decide(5, 9, s.probe), { kind: 'wait' });
    assert.equal(s.calls(), 0);
  });

  it('passes the gap once every writer open at first sight has ended', async () => {
    const clock = { t: 1_000 };
    const g = tracker(clock);
    const s = snapshots(fresh('7', '8'), fresh('8', '12'), fresh('12'));
    await g.decide(5, 9, s.probe);
    clock.t += 25;
    assert.equal((await g.decide(5, 9, s.probe)).kind, 'wait'); // suspects 7, 8
    clock.t += 50;
    assert.equal((await g.decide(5, 9, s.probe)).kind, 'wait', 'no read within 100 ms of the last one');
    assert.equal(s.calls(), 1);
    clock.t += 100;
    assert.equal((await g.decide(5, 9, s.probe)).kind, 'wait'); // 8 still open; 12 is new, not a suspect
    clock.t += 120;
    assert.deepEqual(await g.decide(5, 9, s.probe), { kind: 'skip', from: 5, to: 8, waitedMs: 295, proof: 'innodb-trx' });
  });

  it('never trusts a stale snapshot, even an empty one', async () => {
    const clock = { t: 0 };
    const g = tracker(clock);
    const s = snapshots(stale(), stale(), fresh('3'));
    await g.decide(5, 6, s.probe);
    for (let i = 0; i < 3; i += 1) {
      clock.t += 150;
      assert.equal((await g.decide(5, 6, s.probe)).kind, 'wait');
    }
    assert.equal(s.calls(), 3);
  });

  it('forgets a gap that filled, and starts over for a new one', async () => {
    const clock = { t: 0 };
    const g = tracker(clock);
    const s = snapshots(fresh());
    await g.decide(5, 9, s.probe);
    g.filled(5);
    clock.t += 500;
    assert.equal((await g.decide(5, 9, s.probe)).kind, 'wait', 'a new first sight');
    assert.equal(s.calls(), 0);
  });

  it('falls back to the bounded wait when INNODB_TRX is not readable', async () => {
    const clock = { t: 0 };
    const g = tracker(clock);
    const denied = async (): Promise<OpenWriters> => {
      throw Object.assign(new Error('Access denied; you need the PROCESS privilege'), { errno: 1227 });
    };
    await g.decide(5, 9, denied);
    clock.t += 30;
    assert.equal((await g.decide(5, 9, denied)).kind, 'wait');
    clock.t += 4_000;
    assert.equal((await g.decide(5, 9, denied)).kind, 'wait');
    clock.t += 1_000;
    assert.deepEqual(await g.decide(5, 9, denied), { kind: 'skip', from: 5, to: 8, waitedMs: 5_030, proof: 'timeout' });
  });
});
