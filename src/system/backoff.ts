// Retry delays for expected database errors (deadlock, lock wait timeout, lost connection, restart).

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/**
 * Doubles from initialMs to maxMs with full jitter, so consumers that failed together (a database restart)
 * do not come back in lockstep. Reset after a success.
 */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions) {}

  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** A sleep that `wake()` ends early, so close() does not wait out a poll interval. */
export class Sleeper {
  private timer: NodeJS.Timeout | undefined;
  private resolveSleep: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.resolveSleep = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  wake(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.resolveSleep?.();
  }
}
