// Named points in the worker and the publisher where a process can be made to die abruptly on the Nth time
// it gets there, so a test or the chaos harness lands a crash exactly where it hurts (between the effects and
// the ack, between two commits). Armed from `--failpoint name=N` or EOB_FAILPOINTS (read by config.ts).

export const FAILPOINTS = [
  'publish-before-insert',
  'publish-after-insert',
  'consume-after-read',
  'consume-after-effects',
  'consume-after-ack',
  'consume-before-commit',
  'consume-after-commit',
  'consume-between-commits',
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

const armed = new Map<FailpointName, { remaining: number }>();
let onTrigger: (name: FailpointName) => never = (name) => {
  process.stderr.write(`failpoint ${name} reached: killing the process (SIGKILL)\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL to oneself is delivered before kill() returns on Linux; this line is never reached.
  throw new Error(`failpoint ${name}`);
};

/** Parses `name=N[,name=N]`; names and counts are validated so a typo fails loudly instead of never firing. */
export function parseFailpointSpec(spec: string): Map<FailpointName, number> {
  const result = new Map<FailpointName, number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [name, countText = '1'] = part.split('=');
    if (!(FAILPOINTS as readonly string[]).includes(name ?? '')) {
      throw new Error(`unknown failpoint "${name}"; valid ones: ${FAILPOINTS.join(', ')}`);
    }
    const count = Number(countText);
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`failpoint ${name}: the count must be a whole number >= 1 (got "${countText}")`);
    }
    result.set(name as FailpointName, count);
  }
  return result;
}

export function armFailpoints(spec: Map<FailpointName, number>): void {
  armed.clear();
  for (const [name, count] of spec) armed.set(name, { remaining: count });
}

/** For tests: replace the crash with something observable. */
export function setFailpointAction(action: (name: FailpointName) => never): void {
  onTrigger = action;
}

/** True when any failpoint is armed: callers then keep apart steps they would otherwise send together. */
export function failpointsArmed(): boolean {
  return armed.size > 0;
}

export function failpoint(name: FailpointName): void {
  if (armed.size === 0) return;
  const state = armed.get(name);
  if (state === undefined) return;
  state.remaining -= 1;
  if (state.remaining === 0) onTrigger(name);
}
