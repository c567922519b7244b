// The chaos run's options and their defaults, and the topic and consumer group every case uses.
import type { DockerDeploymentOptions } from '../../harness/dockerDeployment.ts';
import type { EngineName } from '../../harness/engines.ts';
import type { Topology } from '../../harness/systemUnderTest.ts';

export interface ChaosRunOptions {
  /** The engine of each case's private database (a given URL must speak it). */
  engine: EngineName;
  /** single: one private server per case; galera: a private Galera cluster of `nodes` per case (galeraMatrix.ts). */
  topology: Topology;
  nodes: number;
  /** Galera's provider library (config's galeraProvider). */
  galeraProvider: string | undefined;
  /** Use this server (either engine) instead of a private one per case. */
  databaseUrl: string | undefined;
  mariadbBinDir: string | undefined;
  postgresBinDir: string | undefined;
  searchPath: readonly string[];
  /** How long pause and delay faults hold (ms). */
  holdMs: number;
  /** Pause between one fault's recovery and the next injection (ms). */
  intervalMs: number;
  /** Requests before the measured load, so start-up is not what the faults hit first. */
  warmupRequests: number;
  /** Counters must stay unchanged this long, with nothing pending, for the run to count as quiesced (ms). */
  quiesceStableMs: number;
  /** After this the case is checked anyway; its messages still pending make the verdict unknown (ms). */
  quiesceTimeoutMs: number;
  recoveryTimeoutMs: number;
  /** Database sampling period for the timeline and the drain rates (ms). */
  sampleMs: number;
  log: (line: string) => void;
  /** Called as each phase of a case begins (the progress bar names it); undefined: the phase goes to `log`. */
  onPhase?: (caseName: string, phase: string) => void;
  signal: AbortSignal | undefined;
  /** Run each case on containers (BACKEND=docker) instead of local children. */
  docker: DockerTarget | undefined;
  /** Draw every case's fault schedule from this seed (a case's own seed wins); undefined: the fixed round-robin. */
  seed?: number | undefined;
}

/** The docker backend: where the engine is, and the images and ports of the containers each case starts. */
export type DockerTarget = Omit<DockerDeploymentOptions, 'log'>;

export const DEFAULT_CHAOS_RUN_OPTIONS: ChaosRunOptions = {
  engine: 'mariadb',
  topology: 'single',
  nodes: 3,
  galeraProvider: undefined,
  databaseUrl: undefined,
  mariadbBinDir: undefined,
  postgresBinDir: undefined,
  searchPath: [],
  // 1 s: longer than a batch transaction here (a few ms to ~100 ms), so the fault is felt mid-batch.
  holdMs: 1_000,
  intervalMs: 500,
  warmupRequests: 50,
  // 2 s: ten times the worker's slowest idle poll plus a batch; a moving drain changes the sum well within it.
  quiesceStableMs: 2_000,
  quiesceTimeoutMs: 120_000,
  // 20 s: the slowest recovery seen in the standard run was ~3 s (worker restart under load).
  recoveryTimeoutMs: 20_000,
  sampleMs: 250,
  log: () => undefined,
  signal: undefined,
  docker: undefined,
};
export const TOPIC = 'counter';
export const GROUP = 'counter';
