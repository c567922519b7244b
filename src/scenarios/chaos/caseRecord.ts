// A chaos case as a run directory keeps it (cases/<case>/, docs/history.md), and its re-check: everything the
// checker and the witnesses read, saved as files, so that `eob check <run dir>` judges the case again without a
// database and must reach the run's own verdict. Files of a case:
//   case.json       the case as declared (expected, tolerates), its engine, the harness's facts, and the run's
//                   verdict, anomaly counts and result, to compare against;
//   history.jsonl   every request attempt (history.ts);
//   snapshot.json   the topic's messages (offset, request id, counter, acked, transaction id) and the counters;
//   events.jsonl    the workers' event logs (absent when the case had none);
//   faults.json     the fault log: each injection, its heal and recovery;
//   anomalies.jsonl one witness per anomaly (witnesses.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readHistoryJsonl, writeHistoryJsonl, type RequestAttempt } from './history.ts';
import { check, type AnomalyKind, type Verdict } from './checker.ts';
import type { DbSnapshot, SnapshotMessage } from '../../bench/tableReads.ts';
import { deliveredOffsets, parseEventLog, type EventLogLine } from './consumerEventLog.ts';
import type { FaultEvent } from './nemesis.ts';
import { buildWitnesses, type Witness } from './witnesses.ts';
import { caseFileName, consumerDescription, judgeCase, type CaseFacts, type CaseResult } from './caseResult.ts';
import type { ChaosCase } from './chaosMatrix.ts';
import type { EngineName } from '../../harness/engines.ts';

export const CASES_DIR = 'cases';

/** A case that ended before its snapshot (an error, an interrupted run): its record has nothing to re-check. */
export class NoSnapshotError extends Error {
  override readonly name = 'NoSnapshotError';
  constructor(
    message: string,
    readonly head: CaseRecordHead,
  ) {
    super(message);
  }
}

/** What case.json holds. */
export interface CaseRecordHead {
  format: 1;
  case: ChaosCase;
  engine: EngineName;
  startedAtMs: number;
  /** The checker's end-to-end rule was on (dedup + retrying client). */
  endToEnd: boolean;
  facts: Omit<CaseFacts, 'faults'>;
  /** The fault schedule's seed, when the schedule was drawn from one. */
  seed?: number | undefined;
  /** What the run decided, for eob check to compare with. */
  run: { verdict: string; anomalies: Record<AnomalyKind, number> | undefined; passed: boolean; why: string };
}

export interface CaseRecord {
  head: CaseRecordHead;
  history: RequestAttempt[];
  snapshot: DbSnapshot;
  events: EventLogLine[] | undefined;
  faults: FaultEvent[];
}

/** The checker's options for a case: the same in the run and in the re-check. */
export function checkOptionsFor(c: Pick<ChaosCase, 'retry' | 'server'>, events: readonly EventLogLine[] | undefined) {
  return { endToEnd: c.retry && c.server.dedup === true, delivered: events === undefined ? undefined : deliveredOffsets(events) };
}

/** Writes cases/<case>/ under `runDir`; a case without a snapshot (it failed before one) gets case.json and its history. */
export async function writeCaseRecord(runDir: string, r: CaseResult): Promise<string> {
  const dir = path.join(runDir, CASES_DIR, caseFileName(r));
  mkdirSync(dir, { recursive: true });
  const head: CaseRecordHead = {
    format: 1,
    case: r.case,
    engine: r.engine,
    startedAtMs: r.startedAtMs ?? 0,
    endToEnd: r.case.retry && r.case.server.dedup === true,
    facts: withoutFaults(r.facts),
    ...(r.seed === undefined ? {} : { seed: r.seed }),
    run: { verdict: r.interrupted === true ? 'interrupted' : (r.verdict?.verdict ?? 'error'), anomalies: r.verdict?.anomalies, passed: r.passed, why: r.why },
  };
  writeFileSync(path.join(dir, 'case.json'), `${JSON.stringify(head, null, 2)}\n`);
  await writeHistoryJsonl(path.join(dir, 'history.jsonl'), r.history);
  writeFileSync(path.join(dir, 'faults.json'), `${JSON.stringify(r.faults, null, 2)}\n`);
  if (r.snapshot !== undefined) {
    const s = r.snapshot;
    writeFileSync(
      path.join(dir, 'snapshot.json'),
      `${JSON.stringify({ ackedOffset: s.ackedOffset ?? null, counters: Object.fromEntries(s.counters), messages: s.messages })}\n`,
    );
  }
  if (r.consumerEvents !== undefined) writeFileSync(path.join(dir, 'events.jsonl'), r.consumerEvents.map((e) => JSON.stringify(e)).join('\n') + (r.consumerEvents.length > 0 ? '\n' : ''));
  writeFileSync(path.join(dir, 'anomalies.jsonl'), (r.witnesses ?? []).map((w) => JSON.stringify(w)).join('\n') + ((r.witnesses ?? []).length > 0 ? '\n' : ''));
  return dir;
}

function withoutFaults(f: CaseFacts | undefined): Omit<CaseFacts, 'faults'> {
  if (f === undefined) return { error: 'no facts recorded', interrupted: false, quiesced: false, quiesceTimeoutMs: 0, recoveryTimeoutMs: 0 };
  const { faults: _faults, ...rest } = f;
  return rest;
}

/** Reads cases/<case>/ back; a missing or malformed file is an error naming it. */
export async function readCaseRecord(dir: string): Promise<CaseRecord> {
  const head = readJson(path.join(dir, 'case.json')) as CaseRecordHead;
  if (head === null || typeof head !== 'object' || head.format !== 1 || typeof head.case?.name !== 'string') {
    throw new Error(`${path.join(dir, 'case.json')}: not a case record of format 1 (written by eob chaos)`);
  }
  const snapFile = path.join(dir, 'snapshot.json');
  if (!existsSync(snapFile)) throw new NoSnapshotError(`${snapFile}: missing; the case ended before its snapshot (${head.run.why}), so there is nothing to re-check`, head);
  const raw = readJson(snapFile) as { ackedOffset: number | null; counters: Record<string, number>; messages: SnapshotMessage[] };
  if (!Array.isArray(raw.messages) || raw.counters === null || typeof raw.counters !== 'object') throw new Error(`${snapFile}: needs messages (an array) and counters (an object)`);
  const snapshot: DbSnapshot = {
    messages: raw.messages,
    counters: new Map(Object.entries(raw.counters)),
    ...(raw.ackedOffset === null || raw.ackedOffset === undefined ? {} : { ackedOffset: raw.ackedOffset }),
  };
  const eventsFile = path.join(dir, 'events.jsonl');
  const events = existsSync(eventsFile) ? parseEventLog(readFileSync(eventsFile, 'utf8')) : undefined;
  const faults = readJson(path.join(dir, 'faults.json')) as FaultEvent[];
  return { head, history: await readHistoryJsonl(path.join(dir, 'history.jsonl')), snapshot, events, faults };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file}: missing (a case directory of a chaos run holds case.json, history.jsonl, snapshot.json, faults.json)`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
}

export interface Recheck {
  verdict: Verdict;
  passed: boolean;
  why: string;
  witnesses: Witness[];
  /** Whether verdict, anomaly counts and result equal the run's. */
  agrees: boolean;
  differences: string[];
}

/** Judges a saved case again: the same checker, declaration rule and witnesses as the run, no database. */
export function recheckCase(rec: CaseRecord): Recheck {
  const c = rec.head.case;
  const verdict = check(rec.history, rec.snapshot, checkOptionsFor(c, rec.events));
  const judged = judgeCase(c, verdict, { ...rec.head.facts, faults: rec.faults });
  const witnesses = buildWitnesses({
    findings: verdict.findings,
    history: rec.history,
    messages: rec.snapshot.messages,
    events: rec.events,
    startedAtMs: rec.head.startedAtMs,
    faults: rec.faults,
    consumer: consumerDescription(c, rec.head.engine),
  });
  const differences: string[] = [];
  const run = rec.head.run;
  if (run.verdict !== verdict.verdict) differences.push(`verdict ${verdict.verdict}, the run said ${run.verdict}`);
  if (run.passed !== judged.passed) differences.push(`${judged.passed ? 'passes' : 'fails'}, the run ${run.passed ? 'passed' : 'failed'}`);
  for (const [k, n] of Object.entries(verdict.anomalies)) {
    const was = run.anomalies?.[k as AnomalyKind];
    if (was !== n) differences.push(`${k} ${n}, the run counted ${was ?? 'none'}`);
  }
  return { verdict, passed: judged.passed, why: judged.why, witnesses, agrees: differences.length === 0, differences };
}

/** The case directories of a run directory (or the one case directory given), in name order. */
export function caseDirectories(dir: string): string[] {
  if (existsSync(path.join(dir, 'case.json'))) return [dir];
  const cases = path.join(dir, CASES_DIR);
  if (!existsSync(cases)) {
    throw new Error(`${dir}: no ${CASES_DIR}/ folder and no case.json: give a chaos run directory (results/chaos/<time>) written by this version of eob chaos, or one of its cases/<case> folders`);
  }
  return readdirSync(cases, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => path.join(cases, d.name))
    .sort();
}
