// The phases of a chaos case, in order, each timed on the case clock so the results say where the
// time went and a failure names the phase it happened in.

export const CASE_PHASES = ['setup', 'warmup', 'load', 'heal', 'ready', 'quiesce', 'snapshot', 'check'] as const;
export type CasePhase = (typeof CASE_PHASES)[number];

export interface PhaseTiming {
  phase: CasePhase;
  startMs: number;
  endMs: number;
}

export class PhaseError extends Error {
  override readonly name = 'PhaseError';
  constructor(
    readonly phase: CasePhase,
    cause: unknown,
  ) {
    super(`phase ${phase}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class PhaseClock {
  readonly timings: PhaseTiming[] = [];
  readonly t0 = performance.now();

  constructor(private readonly onPhase: (phase: CasePhase) => void = () => undefined) {}

  /** Milliseconds since the case started. */
  now(): number {
    return Math.round(performance.now() - this.t0);
  }

  /** Runs one phase; an error comes out as a PhaseError naming it. Phases must run in CASE_PHASES order. */
  async run<T>(phase: CasePhase, body: () => Promise<T>): Promise<T> {
    const last = this.timings[this.timings.length - 1];
    if (last !== undefined && CASE_PHASES.indexOf(phase) <= CASE_PHASES.indexOf(last.phase)) {
      throw new Error(`phase ${phase} cannot follow ${last.phase} (order: ${CASE_PHASES.join(', ')})`);
    }
    this.onPhase(phase);
    const timing: PhaseTiming = { phase, startMs: this.now(), endMs: this.now() };
    this.timings.push(timing);
    try {
      return await body();
    } catch (error) {
      throw error instanceof PhaseError ? error : new PhaseError(phase, error);
    } finally {
      timing.endMs = this.now();
    }
  }

  durationMs(phase: CasePhase): number | undefined {
    const t = this.timings.find((x) => x.phase === phase);
    return t === undefined ? undefined : t.endMs - t.startMs;
  }
}
