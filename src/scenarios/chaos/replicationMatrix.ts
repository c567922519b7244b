// The cases `make chaos TOPOLOGY=primary-replica` runs on a primary and a replica behind a virtual address:
// exactly-once across repeated failovers at the engine's synchronous level, and the cases that show what the
// weaker levels cost: the asynchronous control (the replica held back at the kill) and, on MariaDB, semi-sync
// allowed to fall back to asynchronous, both of which must be caught losing acknowledged publishes.
import type { EngineName } from '../../harness/engines.ts';
import { EXACTLY_ONCE_TOLERATES, type ChaosCase, type ChaosProfile, type EngineSkip } from './chaosMatrix.ts';
import type { FaultName } from './nemesis.ts';

interface Sizes {
  requests: number;
  rawRequests: number;
  /** Failovers in the exactly-once case: each promotes the replica and rebuilds a fresh one for the next. */
  failovers: number;
  controlRequests: number;
}

const SIZES: Record<ChaosProfile, Sizes> = {
  // quick: the CI-sized check; two failovers so "repeated" holds even there.
  quick: { requests: 1_500, rawRequests: 600, failovers: 2, controlRequests: 1_200 },
  standard: { requests: 6_000, rawRequests: 2_400, failovers: 4, controlRequests: 3_000 },
  soak: { requests: 30_000, rawRequests: 12_000, failovers: 12, controlRequests: 10_000 },
};

export const REPLICATION_CASE_FAULTS: readonly FaultName[] = ['primary-failover'];

/**
 * How long the controls hold the replica back before the kill: 1.5 s of acknowledged commits the replica never
 * receives (the design's measurement held it 1 s and lost 1,155 of 28,682).
 */
export const CONTROL_HOLD_MS = 1_500;

/**
 * The fallback case's rpl_semi_sync_master_timeout: shorter than the hold, so the primary gives up waiting
 * within it and acknowledges the rest of the hold alone.
 */
export const FALLBACK_TIMEOUT_MS = 500;

/** The synchronous level of each engine: the one whose 204 survives a failover. */
function syncLevel(engine: EngineName): 'semi-sync' | 'sync' {
  return engine === 'postgres' ? 'sync' : 'semi-sync';
}

/** The cases of `engine`; a case this engine cannot run is left out and named by replicationSkips. */
export function replicationMatrix(profile: ChaosProfile, engine: EngineName = 'mariadb', only?: readonly FaultName[]): ChaosCase[] {
  const s = SIZES[profile];
  if (only !== undefined && !only.includes('primary-failover')) return [];
  const level = syncLevel(engine);
  const base = {
    retry: false,
    concurrency: 16,
    ratePerSecond: 0,
    counters: 0,
    mode: 'offset',
    worker: { mode: 'offset', batchSize: 1000 },
    workers: 1,
    server: { topicSchema: 'offset' },
    faults: REPLICATION_CASE_FAULTS,
    tolerates: EXACTLY_ONCE_TOLERATES,
  } as const;
  const cases: ChaosCase[] = [
    {
      ...base,
      name: `failover-eo-offset-${level}`,
      description: `offset mode, HTTP and raw SQL publishers and the worker through the virtual address, ${level} replication, ${s.failovers} failovers (each: SIGKILL the primary, promote, rebuild a fresh replica): must stay valid, no acknowledged publish lost`,
      perFault: s.failovers,
      requests: s.requests,
      raw: { publishers: 8, requests: s.rawRequests, hold: { every: 50, ms: 100 } },
      replication: { level },
      expected: 'valid',
    },
    {
      ...base,
      name: `failover-eo-${level}-held`,
      description: `${level} replication with the replica held back ${CONTROL_HOLD_MS} ms before the kill: commits wait for it instead of being acknowledged (504 or 503, never a 204 the replica lacks): must stay valid`,
      perFault: 1,
      requests: s.controlRequests,
      replication: { level, holdReplicaMs: CONTROL_HOLD_MS },
      expected: 'valid',
    },
    {
      ...base,
      name: 'failover-ctl-async',
      description: `asynchronous replication, the replica held back ${CONTROL_HOLD_MS} ms before the kill (a replica that lags): the primary acknowledged what the replica never received; must be caught losing acknowledged publishes`,
      perFault: 1,
      requests: s.controlRequests,
      replication: { level: 'async', holdReplicaMs: CONTROL_HOLD_MS },
      expected: 'ack-publish-lost',
      tolerates: EXACTLY_ONCE_TOLERATES,
    },
  ];
  if (engine === 'mariadb') {
    cases.push({
      ...base,
      name: 'failover-ctl-semi-sync-fallback',
      description: `semi-sync allowed to fall back to async after ${FALLBACK_TIMEOUT_MS} ms (rpl_semi_sync_master_timeout; MariaDB's default is 10 s), the replica held back ${CONTROL_HOLD_MS} ms before the kill: what the fallback costs; must be caught losing acknowledged publishes`,
      perFault: 1,
      requests: s.controlRequests,
      replication: { level: 'semi-sync', holdReplicaMs: CONTROL_HOLD_MS, semiSyncTimeoutMs: FALLBACK_TIMEOUT_MS },
      expected: 'ack-publish-lost',
      tolerates: EXACTLY_ONCE_TOLERATES,
    });
  }
  return cases;
}

/** What the primary-replica matrix leaves out on an engine, and why. */
export function replicationSkips(engine: EngineName): EngineSkip[] {
  if (engine === 'mariadb') return [];
  return [{ what: 'failover-ctl-semi-sync-fallback', reason: "MariaDB only: PostgreSQL's synchronous replication has no timeout after which it goes on alone" }];
}
