// Progress of a long run (bench points, chaos cases): a bar on a terminal naming the run and the step that runs
// now, with the time left from the plan's own estimate of each step (not an extrapolation of the steps done so
// far, which jumps when a short step follows a long one), and finished steps' lines printed above it. Nothing
// but those lines when the stream is not a terminal or config says CI, so logs and CI output stay clean.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Moves to step `done` of `total` and names what runs now. */
  update(done: number, label: string): void;
  /** Writes a line above the bar (or to the stream when there is no bar), e.g. a finished point or a warning. */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** What runs: "bench" or "chaos"; the bar starts with it. */
  title: string;
  /** What the steps are: "points", "cases". */
  unit: string;
  total: number;
  ci: boolean;
  /**
   * The plan's estimate of each step's seconds (by index); the time left is the estimates of the steps not
   * started plus what is left of the current one's (never below zero). Undefined: no time left is shown.
   */
  estimateS?: (index: number) => number;
  stream?: NodeJS.WriteStream;
  /** Clock in ms (tests pass their own). */
  now?: () => number;
}

/** "45 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Seconds left by the plan: the current step's estimate less its elapsed time (at least 0), plus every later step's. */
export function secondsLeft(estimates: readonly number[], current: number, elapsedInCurrentS: number): number {
  let left = 0;
  for (let i = current + 1; i < estimates.length; i += 1) left += estimates[i] ?? 0;
  if (current < estimates.length) left += Math.max(0, (estimates[current] ?? 0) - elapsedInCurrentS);
  return left;
}

/** How often the bar's time left is recomputed: often enough to count down, rarely enough to cost nothing. */
const REDRAW_MS = 1_000;

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  if (o.ci || stream.isTTY !== true) {
    return { update: () => undefined, log: (line) => void stream.write(`${line}\n`), stop: () => undefined };
  }
  const now = o.now ?? (() => performance.now());
  const estimates = o.estimateS === undefined ? undefined : Array.from({ length: o.total }, (_, i) => o.estimateS!(i));
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${o.title} [{bar}] {value}/{total} ${o.unit} | {duration_formatted} elapsed{left} | {label}`,
      hideCursor: true,
      clearOnComplete: false,
      // Draw even when the text is unchanged: a line written above has just erased the bar.
      forceRedraw: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let current = 0;
  let currentSince = now();
  let label = 'starting';
  const payload = () => ({
    label,
    left: estimates === undefined ? '' : `, ~${formatDuration(secondsLeft(estimates, current, (now() - currentSince) / 1000))} left (plan)`,
  });
  bar.start(o.total, 0, payload());
  // cli-progress draws on its own schedule (`fps`) and drops the updates in between: rendering at once keeps a
  // new step's name, and the bar under a line just written, from waiting for the next draw.
  const redraw = () => {
    bar.update(current, payload());
    bar.render();
  };
  const timer = setInterval(redraw, REDRAW_MS);
  timer.unref();
  return {
    update: (done, text) => {
      if (done !== current) currentSince = now();
      current = done;
      label = text;
      redraw();
    },
    log: (line) => {
      // Clear the bar's line, write the line, redraw the bar below it.
      stream.write(`\r\x1b[2K${line}\n`);
      redraw();
    },
    stop: () => {
      clearInterval(timer);
      bar.stop();
    },
  };
}
