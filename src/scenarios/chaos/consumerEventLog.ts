// The workers' event logs as a chaos case reads them back (the worker writes them: system/workerEventLog.ts):
// the lines of every worker process of the case, and what the checker and the witnesses need from them: the
// offsets read in any batch, and for an offset, the batch that read it and the hole pass that stepped over it.
import { readFileSync } from 'node:fs';
import type { EventLogLine } from '../../system/workerEventLog.ts';

export type { EventLogLine };

/**
 * The lines of one event log file. A line cut short (a worker killed in the middle of its write) is left out,
 * as is anything that is not an event: the log is evidence, and a partial line proves nothing.
 */
export function parseEventLog(text: string): EventLogLine[] {
  const out: EventLogLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (isEventLine(v)) out.push(v);
  }
  return out;
}

export function readEventLog(path: string): EventLogLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return parseEventLog(text);
}

function isEventLine(v: unknown): v is EventLogLine {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'number' || typeof o.p !== 'number') return false;
  if (o.e === 'read') return typeof o.batch === 'number' && Array.isArray(o.offsets);
  if (o.e === 'commit') return typeof o.batch === 'number' && typeof o.what === 'string';
  if (o.e === 'rollback') return typeof o.batch === 'number';
  if (o.e === 'pass') return typeof o.from === 'number' && typeof o.to === 'number' && typeof o.by === 'string';
  return false;
}

/** Every offset some worker read in a batch at least once. */
export function deliveredOffsets(events: readonly EventLogLine[]): Set<number> {
  const out = new Set<number>();
  for (const e of events) {
    if (e.e !== 'read') continue;
    for (const [a, b] of e.offsets) for (let o = a; o <= b; o++) out.add(o);
  }
  return out;
}
