// A bench point's result for the tests of rows and reports: every measurement blank unless the test gives it,
// so that each test names only the numbers it is about.
import type { Point } from '../../src/scenarios/throughput/plan.ts';
import type { PointResult } from '../../src/scenarios/throughput/points.ts';

export function pointResult(point: Point, over: Partial<PointResult>): PointResult {
  return {
    point, resolvedIsolation: point.isolation, gapHandling: undefined, drainMsgsPerS: undefined, publishReqPerS: undefined, load: undefined,
    lagP50Ms: undefined, lagP99Ms: undefined, cpuLoadgenS: undefined, cpuServerS: undefined, cpuWorkerS: undefined, cpuDbS: undefined,
    cpuUsPerMsg: { loadgen: undefined, server: undefined, worker: undefined, db: undefined }, interrupted: false,
    messagesPublished: undefined, messagesConsumed: undefined, ackedOffset: undefined, maxOffset: undefined, drained: undefined,
    check: undefined, gapsPassed: undefined, gapsPassedByTimeout: undefined, durationS: 1, note: '', ...over,
  };
}
