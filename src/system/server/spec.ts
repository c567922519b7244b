// The server's process spec: the typed options a parent (the harness) gives `eob server`, and the flag that
// carries each one, so the harness's argv is derived from typed options rather than written by hand. Defaults
// live in DEFAULT_SERVER_OPTIONS (options.ts), which the CLI's flags also fall back to. The URL is not part of
// the spec: it travels in MYSQL_URL, because a command line is world-readable and the URL carries the password.
import type { ServerOptions } from './options.ts';

/** What a parent may set; undefined fields take the server's defaults. */
export type ServerSpec = Partial<Pick<ServerOptions, 'topic' | 'topicSchema' | 'coalesce' | 'coalesceMaxBatch' | 'coalesceLingerMs' | 'dedup' | 'poolSize' | 'metrics'>> & {
  /** Failpoints to arm (`name=N`), one --failpoint each. */
  failpoints?: readonly string[];
};

type FlagOf<K extends keyof ServerSpec> = (value: NonNullable<ServerSpec[K]>) => string[];

/** Each field's flag on `eob server`, in the order argv lists them (test/processSpec.test.ts checks the CLI has them). */
export const SERVER_FLAGS: { [K in keyof ServerSpec]-?: FlagOf<K> } = {
  topic: (v) => ['--topic', v],
  topicSchema: (v) => ['--mode', v],
  coalesce: (v) => [v ? '--coalesce' : '--no-coalesce'],
  coalesceMaxBatch: (v) => ['--coalesce-max-batch', String(v)],
  coalesceLingerMs: (v) => ['--coalesce-linger-ms', String(v)],
  // Off is the default: said only when on.
  dedup: (v) => (v ? ['--dedup'] : []),
  poolSize: (v) => ['--pool-size', String(v)],
  // On is the default: said only when off.
  metrics: (v) => (v ? [] : ['--no-metrics']),
  // The server takes the flag repeated (the worker takes one comma-separated value).
  failpoints: (v) => v.flatMap((fp) => ['--failpoint', fp]),
};

/** `eob server` argv listening on 127.0.0.1:`port`, with only the fields of `spec` given. */
export function serverArgv(port: number, spec: ServerSpec): string[] {
  const args = ['server', '--host', '127.0.0.1', '--port', String(port)];
  for (const key of Object.keys(SERVER_FLAGS) as (keyof ServerSpec)[]) {
    const value = spec[key];
    if (value === undefined) continue;
    args.push(...(SERVER_FLAGS[key] as (v: unknown) => string[])(value));
  }
  return args;
}
