// Where a primary/replica pair's two servers live, whichever engine runs them: their ports on 127.0.0.1 and their
// data directories, and which of them has which role now. Both engines' pairs take these options, checked here
// once, place their servers here, and answer nodes / primary / replica from their slots here.
import path from 'node:path';
import { intInRange, nonEmptyString, OptionsError } from '../../validate.ts';
import { findFreePort } from '../ports.ts';
import type { ReplicaPairNode, ReplicaRole } from './replicaPair.ts';

export interface PairPlacement {
  /** Ports on 127.0.0.1 of the primary and then the replica; missing ones are picked free. */
  ports: readonly number[] | undefined;
  /** Parent of the two data directories when nodeDatadirs is not given; default `.eob/<prefix>-<primary port>`. */
  datadir: string | undefined;
  /** The two data directories themselves, primary first (instead of `datadir`; e.g. the tests' scratch directories). */
  nodeDatadirs: readonly string[] | undefined;
}

/** Checks the placement options, naming the bad field. */
export function checkPairPlacement(component: string, o: PairPlacement): void {
  if (o.ports !== undefined) {
    if (!Array.isArray(o.ports) || o.ports.length > 2) throw new OptionsError(`${component}: ports are at most two, the primary's and the replica's (got ${JSON.stringify(o.ports)})`);
    for (const port of o.ports) intInRange(component, 'ports', port, 1, 65_535);
    if (new Set(o.ports).size !== o.ports.length) throw new OptionsError(`${component}: ports must differ (got ${o.ports.join(', ')})`);
  }
  if (o.datadir !== undefined) nonEmptyString(component, 'datadir', o.datadir);
  if (o.nodeDatadirs !== undefined) {
    if (o.datadir !== undefined) throw new OptionsError(`${component}: give datadir or nodeDatadirs, not both`);
    if (!Array.isArray(o.nodeDatadirs) || o.nodeDatadirs.length !== 2) throw new OptionsError(`${component}: nodeDatadirs must be two directories, the primary's and the replica's`);
    for (const d of o.nodeDatadirs) nonEmptyString(component, 'nodeDatadirs', d);
  }
}

export interface PlacedPair {
  ports: [number, number];
  /** The folder that holds both data directories (when nodeDatadirs was not given). */
  parent: string;
  datadirs: [string, string];
}

/**
 * The two servers' ports (given ones, else free ones that differ) and data directories (given ones, else
 * `<parent>/<names[0]>` and `<parent>/<names[1]>`, the parent under `.eob/<prefix>-<primary port>` by default).
 */
export async function placePair(o: PairPlacement, prefix: string, names: readonly [string, string]): Promise<PlacedPair> {
  const first = o.ports?.[0] ?? (await findFreePort());
  const second = o.ports?.[1] ?? (await freePortOtherThan(first));
  const parent = path.resolve(o.datadir ?? path.join('.eob', `${prefix}-${first}`));
  const datadirs: [string, string] = [o.nodeDatadirs?.[0] ?? path.join(parent, names[0]), o.nodeDatadirs?.[1] ?? path.join(parent, names[1])];
  return { ports: [first, second], parent, datadirs };
}

/**
 * The role lookups of a pair that keeps one slot per server (the original primary's first; a rebuilt replica
 * takes the slot of the node that died). An engine's pair says how a slot shows as a node.
 */
export abstract class PairSlots<S extends { role: ReplicaRole }> {
  protected abstract readonly slots: S[];
  protected abstract nodeOf(slot: S): ReplicaPairNode;

  get nodes(): readonly ReplicaPairNode[] {
    return this.slots.map((s) => this.nodeOf(s));
  }

  get primary(): ReplicaPairNode | undefined {
    const slot = this.slots.find((s) => s.role === 'primary');
    return slot === undefined ? undefined : this.nodeOf(slot);
  }

  /** The replica's node, if one runs. */
  get replica(): ReplicaPairNode | undefined {
    const slot = this.slots.find((s) => s.role === 'replica');
    return slot === undefined ? undefined : this.nodeOf(slot);
  }
}

/** A free port on 127.0.0.1 that is none of `taken` (a rebuilt replica's, beside the primary's). */
export async function freePortOtherThan(...taken: readonly (number | undefined)[]): Promise<number> {
  for (;;) {
    const port = await findFreePort();
    if (!taken.includes(port)) return port;
  }
}
