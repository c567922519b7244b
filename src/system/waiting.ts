// Waiting, bounded: a pause of a given length, and a promise raced against a deadline. The server's health
// check, the chaos harness's probes and the load loops all wait this way.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * `promise`, or a TimeoutError naming `what` after `ms`. The promise itself is not cancelled: the caller
 * stops waiting for it, and its late result or error is dropped.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
