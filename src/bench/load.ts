// HTTP load for the sweep: autocannon's programmatic API driving POST /count/<uuid> (or the server's
// no-database route /noop/<uuid>) for a fixed time, over many counters, at full speed or a fixed offered rate.
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { intInRange, nonEmptyString, oneOf } from '../validate.ts';

export type LoadRoute = 'count' | 'noop';

export interface LoadOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  route: LoadRoute;
  /** Counter ids requests go to, round-robin: request i goes to counters[i % n]. */
  counters: readonly string[];
  connections: number;
  durationS: number;
  /** Requests per second over all connections; undefined = as fast as the server answers. */
  overallRate: number | undefined;
  /** A request not answered within this many seconds counts as a timeout. */
  timeoutS: number;
}

export const DEFAULT_LOAD_OPTIONS: Omit<LoadOptions, 'baseUrl' | 'counters'> = {
  route: 'count',
  // 50 connections is where the plain HTTP ceiling here (~38,000 req/s) was measured; more only adds
  // queueing on 2 cores.
  connections: 50,
  durationS: 10,
  overallRate: undefined,
  timeoutS: 10,
};

export interface LoadResult {
  requests2xx: number;
  requestsNon2xx: number;
  errors: number;
  timeouts: number;
  /** 2xx answers per second over autocannon's own measured duration. */
  okPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  durationS: number;
}

export function validateLoadOptions(o: LoadOptions): LoadOptions {
  nonEmptyString('load', 'baseUrl', o.baseUrl);
  oneOf('load', 'route', o.route, ['count', 'noop'] as const);
  intInRange('load', 'connections', o.connections, 1, 10_000);
  if (!(o.durationS > 0)) throw new Error(`load: durationS must be > 0 (got ${o.durationS})`);
  if (o.overallRate !== undefined) intInRange('load', 'overallRate', o.overallRate, 1, 10_000_000);
  if (o.counters.length === 0) throw new Error('load: counters must name at least one counter id');
  return o;
}

/** `n` fresh counter ids (UUIDs), the set a load spreads its requests over. */
export function makeCounterIds(n: number): string[] {
  return Array.from({ length: n }, () => randomUUID());
}

export interface RunningLoad {
  /** Ends the load early (Ctrl-C); `result` still resolves with what was measured. */
  stop(): void;
  result: Promise<LoadResult>;
}

export function startLoad(options: LoadOptions): RunningLoad {
  const o = validateLoadOptions(options);
  let next = 0;
  const n = o.counters.length;
  let settle: { resolve: (r: LoadResult) => void; reject: (e: Error) => void } | undefined;
  const result = new Promise<LoadResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const instance = autocannon(
    {
      url: o.baseUrl,
      connections: o.connections,
      duration: o.durationS,
      timeout: o.timeoutS,
      ...(o.overallRate === undefined ? {} : { overallRate: o.overallRate }),
      requests: [
        {
          method: 'POST',
          // One shared cursor across connections, so every counter gets requests at the same pace.
          setupRequest: (req) => {
            const id = o.counters[next % n]!;
            next += 1;
            return { ...req, path: `/${o.route}/${id}` };
          },
        },
      ],
    },
    (error: Error | null, r: autocannon.Result) => {
      if (error) {
        settle?.reject(error);
        return;
      }
      settle?.resolve({
        requests2xx: r['2xx'],
        requestsNon2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        okPerSecond: r.duration > 0 ? r['2xx'] / r.duration : 0,
        latencyP50Ms: r.latency.p50,
        latencyP99Ms: r.latency.p99,
        durationS: r.duration,
      });
    },
  );
  return { stop: () => instance.stop(), result };
}
