// What a chaos case reads from the database while it runs, through the shared observation layer: the drain
// position, recovery after healing, quiescence.
import { readDrainPosition, sumAllCounters, type DrainPosition, type SqlEngine } from '../../bench/tableReads.ts';
import type { SqlExecutor } from '../../system/pubsub/types.ts';
import { httpStatus } from '../../harness/childService.ts';
import type { TopicMode } from '../../system/pubsub/types.ts';
import { sleep, withTimeout } from '../../system/waiting.ts';
import { type ChaosRunOptions, GROUP, TOPIC } from './options.ts';

/** Offset mode: max offset and the group's acked offset; queue mode: rows and acked rows. */
export function readProgress(db: SqlExecutor, engine: SqlEngine, mode: TopicMode): Promise<DrainPosition> {
  return readDrainPosition(db, engine, { mode, topic: TOPIC, consumerGroup: GROUP });
}

/**
 * Recovered = the server answers /healthz and the drain moves again: the acked position passes where it was
 * when the first reading after healing succeeded, or nothing is left to drain.
 */
export async function waitRecovered(serverBaseUrl: string, progress: () => Promise<DrainPosition>, signal: AbortSignal): Promise<void> {
  let baseline: number | undefined;
  while (!signal.aborted) {
    const healthy = (await httpStatus(`${serverBaseUrl}/healthz`, 1_000)) === 200;
    let p: DrainPosition | undefined;
    try {
      p = await progress();
    } catch {
      p = undefined;
    }
    if (p !== undefined) {
      if (healthy && (p.acked >= p.published || (baseline !== undefined && p.acked > baseline))) return;
      baseline ??= p.acked;
    }
    await sleep(50);
  }
  throw new Error('not recovered');
}

export async function quiesce(db: SqlExecutor, engine: SqlEngine, mode: TopicMode, o: ChaosRunOptions): Promise<boolean> {
  const deadline = Date.now() + o.quiesceTimeoutMs;
  let stableSince: number | undefined;
  let lastTotal: number | undefined;
  while (Date.now() < deadline) {
    try {
      const p = await withTimeout(readProgress(db, engine, mode), PROBE_TIMEOUT_MS, 'progress read');
      const total = await withTimeout(sumAllCounters(db, engine), PROBE_TIMEOUT_MS, 'counter sum');
      if (p.acked >= p.published && total === lastTotal) {
        stableSince ??= Date.now();
        if (Date.now() - stableSince >= o.quiesceStableMs) return true;
      } else {
        stableSince = undefined;
      }
      lastTotal = total;
    } catch {
      stableSince = undefined;
    }
    await sleep(200);
  }
  return false;
}


/**
 * A read of the harness's own that hangs (a connection to a server that died mid-query without a reset) must
 * not hang the case: 5 s is ~100 times a progress read here, and the loops that use it simply try again.
 */
export const PROBE_TIMEOUT_MS = 5_000;
/** The sum of every counter, the effects applied so far: the timeline draws it beside the acked messages. */
export function readCounterTotal(db: SqlExecutor, engine: SqlEngine): Promise<number> {
  return withTimeout(sumAllCounters(db, engine), PROBE_TIMEOUT_MS, 'counter sum');
}
