// The request history of a chaos case (docs/ARCHITECTURE.md, "Chaos case to verdict"): one record per publish attempt (an HTTP request, or a raw
// SQL INSERT that bypassed the server), with its request id, the counter it incremented, its outcome and its
// times. Stored as JSON Lines so a run of any length can be
// written and read one line at a time, and so a user can grep it.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * - ok: 2xx, or the raw INSERT returned: the message committed.
 * - fail: definitely not published (connection refused before anything was sent, a 4xx, a 503, which the
 *   server answers only for a request it never sent to the database or that the database refused, or an error
 *   the database answered for the raw INSERT itself, which rolled it back).
 * - unknown: may or may not have been published (timeout, reset after sending, 504 and other 5xx, connection
 *   lost mid-INSERT).
 */
export type RequestOutcome = 'ok' | 'fail' | 'unknown';
export const REQUEST_OUTCOMES: readonly RequestOutcome[] = ['ok', 'fail', 'unknown'];

/** Warm-up requests are checked like the others: the checker sees every message the topic holds. */
export type HistoryPhase = 'warmup' | 'load';

/** How the attempt published: through the HTTP server, or a raw SQL INSERT of its own. */
export type PublishPath = 'http' | 'sql';

export interface RequestAttempt {
  requestId: string;
  counterUuid: string;
  /** 1 for the first send; a retrying client resends `unknown` outcomes with the same request id. */
  attempt: number;
  outcome: RequestOutcome;
  /** HTTP status, when an answer arrived. */
  status?: number;
  /** The error code or message, when no answer arrived (ECONNREFUSED, ECONNRESET, timeout...). */
  error?: string;
  /** Absent in histories written before raw publishers existed: those are all HTTP. */
  via?: PublishPath;
  phase: HistoryPhase;
  /** Milliseconds since the case started (the same clock as fault and drain samples). */
  startMs: number;
  endMs: number;
}

/** One request id's final outcome over all its attempts: ok if any attempt was ok, else unknown if any was. */
export interface RequestSummary {
  requestId: string;
  counterUuid: string;
  outcome: RequestOutcome;
  attempts: number;
}

export function summarizeRequests(history: readonly RequestAttempt[]): Map<string, RequestSummary> {
  const byId = new Map<string, RequestSummary>();
  for (const a of history) {
    const prev = byId.get(a.requestId);
    if (prev === undefined) {
      byId.set(a.requestId, { requestId: a.requestId, counterUuid: a.counterUuid, outcome: a.outcome, attempts: 1 });
      continue;
    }
    if (prev.counterUuid !== a.counterUuid) {
      throw new Error(
        `history: request id ${a.requestId} was sent for two counters (${prev.counterUuid}, ${a.counterUuid}); ` +
          'a retry must resend the same request',
      );
    }
    prev.attempts += 1;
    prev.outcome = combineOutcomes(prev.outcome, a.outcome);
  }
  return byId;
}

// A `fail` attempt proves only that *that* attempt published nothing; an earlier `unknown` attempt of the same
// id may still have been published, so unknown outranks fail, and any ok settles it.
function combineOutcomes(a: RequestOutcome, b: RequestOutcome): RequestOutcome {
  if (a === 'ok' || b === 'ok') return 'ok';
  if (a === 'unknown' || b === 'unknown') return 'unknown';
  return 'fail';
}

export function countOutcomes(summaries: Iterable<RequestSummary>): Record<RequestOutcome, number> {
  const counts: Record<RequestOutcome, number> = { ok: 0, fail: 0, unknown: 0 };
  for (const s of summaries) counts[s.outcome] += 1;
  return counts;
}

export async function writeHistoryJsonl(path: string, history: readonly RequestAttempt[]): Promise<void> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  for (const record of history) {
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export async function readHistoryJsonl(path: string): Promise<RequestAttempt[]> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  const records: RequestAttempt[] = [];
  let lineNo = 0;
  for await (const line of lines) {
    lineNo += 1;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${lineNo}: not JSON (a history line is one request attempt as a JSON object)`);
    }
    records.push(assertAttempt(parsed, `${path}:${lineNo}`));
  }
  return records;
}

function assertAttempt(value: unknown, where: string): RequestAttempt {
  const v = value as Partial<RequestAttempt> | null;
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.requestId !== 'string' ||
    typeof v.counterUuid !== 'string' ||
    typeof v.attempt !== 'number' ||
    !REQUEST_OUTCOMES.includes(v.outcome as RequestOutcome) ||
    typeof v.startMs !== 'number' ||
    typeof v.endMs !== 'number'
  ) {
    throw new Error(`${where}: not a request attempt (needs requestId, counterUuid, attempt, outcome, startMs, endMs)`);
  }
  if (v.via !== undefined && v.via !== 'http' && v.via !== 'sql') throw new Error(`${where}: via must be "http" or "sql" (got ${JSON.stringify(v.via)})`);
  return { phase: 'load', ...v } as RequestAttempt;
}
