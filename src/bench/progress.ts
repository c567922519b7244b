// Progress of a long run: a bar on a terminal (which point, how far, elapsed / remaining), nothing at all when
// stdout is not a terminal or config says CI, so logs and CI output stay clean.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Moves to point `done` of `total` and names what runs now. */
  update(done: number, label: string): void;
  /** Writes a line above the bar (or to stderr when silent), e.g. a warning. */
  log(line: string): void;
  stop(): void;
}

export function createProgress(total: number, options: { ci: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.ci || stream.isTTY !== true) {
    return { update: () => undefined, log: (line) => void process.stderr.write(`${line}\n`), stop: () => undefined };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'bench [{bar}] {value}/{total} points | {duration_formatted} elapsed, ~{eta_formatted} left | {label}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 4,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: 'starting' });
  return {
    update: (done, label) => bar.update(done, { label }),
    log: (line) => {
      // Clear the bar's line, write, and let the next update redraw it.
      stream.write(`\r\x1b[2K${line}\n`);
    },
    stop: () => bar.stop(),
  };
}
