// The allocator-stall fault: stops one server thread right after InnoDB handed it an auto-increment offset and
// before its transaction registered as a writer, and proves each stop landed in that window.
//
// ha_innobase::write_row calls handler::update_auto_increment() (the offset is allocated, under the table's
// autoinc mutex only) before row_insert_for_mysql() starts the transaction and gives it a read-write id. A
// thread stopped at the return of update_auto_increment holds an offset that no reader can see, and is absent
// from INNODB_TRX (or listed with a 0 / pseudo id): exactly the state a gap proof built on INNODB_TRX alone
// cannot see. gdb in non-stop mode stops only the thread that hit the breakpoint; every other thread runs on.
//
// Attaches to a private server only (started with --no-defaults and its own data directory), never to the
// machine's own service. Needs gdb with Python, ptrace rights over the server, and an x86-64 server; where one
// is missing, startAllocatorStall answers `unavailable` with the reason, so callers can skip with a message.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createPool, executorOf, type Pool, type PoolConnection } from '../../system/db/mariadb/pool.ts';
import { readTransactionSnapshot, INNODB_TRX_CACHE_IDLE_MS } from '../../system/sql/mariadb/innodbTrx.ts';
import { intInRange, nonEmptyString } from '../../validate.ts';
import { createScratchDirectory, deleteNow, deleteOnExit, recordRunDirectoryUser, sweepAbandonedScratchDirectories } from '../privateDirectory.ts';

export interface AllocatorStallOptions {
  /** pid of a private mariadbd (ManagedDatabase.pid). */
  serverPid: number;
  /** URL of that server, for the evidence queries (needs the PROCESS privilege). */
  mysqlUrl: string;
  /** Stall every Nth successful allocation (1 = every one). */
  every: number;
  /** How long a stalled thread stays stopped (ms). */
  stallMs: number;
  /** Stop stalling after this many stalls (0 = no limit). */
  maxStalls: number;
  /**
   * Only allocations made by these connections (PROCESSLIST.ID) count and stall; undefined = every connection.
   * Mapped to OS threads once at start (one thread per connection, the server's default thread handling).
   */
  onlyConnectionIds: readonly number[] | undefined;
  /**
   * Check every Nth stall against PROCESSLIST and a fresh INNODB_TRX read while its thread is stopped (1 = each,
   * 0 = none). Each check reads INNODB_TRX, which keeps its cache from refreshing for other readers for 100 ms:
   * checking every stall slows the consumer's own INNODB_TRX reads (4 and 2 losses of 2,400 instead of 16-17).
   */
  evidenceEvery: number;
  gdbPath: string;
  /** How long gdb may take to attach and set its breakpoints (ms). */
  attachTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_ALLOCATOR_STALL_OPTIONS: Omit<AllocatorStallOptions, 'serverPid' | 'mysqlUrl'> = {
  // One insert in 20 held for 300 ms: with 16 publishers x 150 single-row inserts the INNODB_TRX-only gap rule
  // lost 16-17 of 2,400 messages in each of 4 runs; 50 ms stalls lost 1, too few for a test to rely on.
  every: 20,
  stallMs: 300,
  maxStalls: 0,
  onlyConnectionIds: undefined,
  evidenceEvery: 1,
  gdbPath: 'gdb',
  attachTimeoutMs: 30_000,
  log: () => undefined,
};

export function validateAllocatorStallOptions(o: AllocatorStallOptions): AllocatorStallOptions {
  const c = 'allocator stall';
  intInRange(c, 'serverPid', o.serverPid, 2, 2 ** 22);
  nonEmptyString(c, 'mysqlUrl', o.mysqlUrl);
  intInRange(c, 'every', o.every, 1, 1_000_000);
  intInRange(c, 'stallMs', o.stallMs, 1, 600_000);
  intInRange(c, 'maxStalls', o.maxStalls, 0, 1_000_000);
  if (o.onlyConnectionIds !== undefined) for (const id of o.onlyConnectionIds) intInRange(c, 'onlyConnectionIds[]', id, 1, Number.MAX_SAFE_INTEGER);
  intInRange(c, 'attachTimeoutMs', o.attachTimeoutMs, 100, 600_000);
  nonEmptyString(c, 'gdbPath', o.gdbPath);
  intInRange(c, 'evidenceEvery', o.evidenceEvery, 0, 1_000_000);
  return o;
}

/** What the evidence check found about one stall. */
export type StallVerdict =
  /** The stopped thread's connection runs a statement and has no real transaction id in a fresh INNODB_TRX. */
  | 'in-window'
  /** The connection already had a real id: the stall did not open the window (the statement wrote before). */
  | 'registered'
  /** No proof either way (no fresh snapshot in time, no connection for the thread, not checked). */
  | 'unproven';

export interface StallRecord {
  seq: number;
  /** Linux thread id of the stopped thread (PROCESSLIST.TID). */
  osThreadId: number;
  /** PROCESSLIST.ID of the connection that thread served, when found. */
  connectionId: number | undefined;
  /** The statement it was running (PROCESSLIST.INFO, first 300 characters). */
  statement: string | undefined;
  verdict: StallVerdict;
  /** Why, in words (what the fresh snapshot showed for the connection, or why there is no proof). */
  reason: string;
  /** How long the thread was held (ms); undefined while it still is. */
  heldMs: number | undefined;
}

export interface AllocatorStallCounts {
  /** Successful allocations that reached the breakpoint (known exactly after stop()). */
  allocations: number;
  stalls: number;
  /** Stalls proven to have landed in the window (verdict in-window). */
  stallsInWindow: number;
  stallsUnproven: number;
  stallsRegistered: number;
}

export interface AllocatorStall {
  counts(): AllocatorStallCounts;
  readonly stalls: readonly StallRecord[];
  /** Resumes every stalled thread, removes the breakpoints, detaches; the server runs on. Idempotent. */
  stop(): Promise<AllocatorStallCounts>;
}

export type AllocatorStallStart = { kind: 'started'; stall: AllocatorStall } | { kind: 'unavailable'; reason: string };

/** The exported symbol of the function that allocates the offset (nm -D mariadbd lists it). */
const ALLOCATOR_SYMBOL = '_ZN7handler21update_auto_incrementEv';
const PREFIX = 'EOB-STALL ';

/**
 * Runs inside gdb. Breakpoints on every `ret` of update_auto_increment (its return value in rax is 0 when an
 * offset was allocated); Breakpoint.stop() decides, in gdb's event loop, whether the thread stays stopped.
 * Resuming is left to the caller (eob_resume), so the evidence check can finish while the thread is held.
 */
function gdbScript(o: AllocatorStallOptions): string {
  return `
import gdb
EVERY = ${o.every}
MAX_STALLS = ${o.maxStalls}
state = {"hits": 0, "stalls": 0}
# OS thread ids whose allocations count; empty = every thread.
only = set()
bps = []
# Threads this script holds; every other stopped thread is the attach's doing and is resumed by eob_run.
held = set()

def say(text):
    print("${PREFIX}" + text, flush=True)

def rets():
    text = gdb.execute("disassemble '${ALLOCATOR_SYMBOL}'", to_string=True)
    found = []
    for line in text.splitlines():
        parts = line.replace("=>", "").split()
        if len(parts) >= 3 and parts[2].startswith("ret"):
            found.append(int(parts[0], 16))
    return found

class ReturnBreakpoint(gdb.Breakpoint):
    def stop(self):
        if int(gdb.parse_and_eval("$rax")) != 0:
            return False
        if only and gdb.selected_thread().ptid[1] not in only:
            return False
        state["hits"] += 1
        if state["hits"] % EVERY != 0:
            return False
        if MAX_STALLS > 0 and state["stalls"] >= MAX_STALLS:
            return False
        state["stalls"] += 1
        th = gdb.selected_thread()
        held.add(th.num)
        say("stopped %d %d %d" % (state["stalls"], th.num, th.ptid[1]))
        return True

def resume_others():
    left = 0
    for th in gdb.selected_inferior().threads():
        if th.is_valid() and th.is_stopped() and th.num not in held:
            th.switch()
            gdb.execute("continue &", to_string=True)
            left += 1
    return left

# In non-stop mode attach stops every thread, but reports those stops one by one after the attach command
# returns: threads are resumed until a pass finds none stopped that this script does not hold.
def eob_only(tids):
    only.clear()
    only.update(tids)
    say("only %d" % len(only))

def eob_run():
    say("running %d" % resume_others())

def eob_resume(num):
    held.discard(num)
    for th in gdb.selected_inferior().threads():
        if th.num == num and th.is_valid() and th.is_stopped():
            th.switch()
            gdb.execute("continue &", to_string=True)
            say("resumed %d" % num)
            return
    say("resume-missing %d" % num)

def eob_finish():
    for b in bps:
        b.delete()
    del bps[:]
    held.clear()
    try:
        resume_others()
    except gdb.error:
        pass
    say("finished %d" % state["hits"])

def main():
    try:
        gdb.execute("attach ${o.serverPid}", to_string=True)
    except gdb.error as e:
        say("unavailable attach " + str(e).replace("\\n", " "))
        return
    arch = gdb.selected_inferior().architecture().name()
    if "x86-64" not in arch:
        say("unavailable architecture " + arch + " (the stall reads the return value from rax)")
        gdb.execute("detach", to_string=True)
        return
    try:
        addresses = rets()
    except gdb.error as e:
        say("unavailable symbol " + str(e).replace("\\n", " "))
        gdb.execute("detach", to_string=True)
        return
    if len(addresses) == 0:
        say("unavailable symbol no ret instruction found in ${ALLOCATOR_SYMBOL}")
        gdb.execute("detach", to_string=True)
        return
    for a in addresses:
        b = ReturnBreakpoint("*0x%x" % a, internal=True)
        b.silent = True
        bps.append(b)
    say("attached %d" % len(addresses))

main()
`;
}

/** Refuses anything but a server this harness started (its own defaults and data directory). */
async function assertPrivateServer(pid: number): Promise<string | undefined> {
  let cmdline: string[];
  try {
    cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  } catch {
    return `no process ${pid}`;
  }
  const binary = path.basename(cmdline[0] ?? '');
  if (binary !== 'mariadbd' && binary !== 'mysqld') return `process ${pid} is ${binary || 'unknown'}, not mariadbd`;
  if (!cmdline.includes('--no-defaults')) return `process ${pid} was not started with --no-defaults: not a private server, refusing to attach`;
  const datadir = cmdline.find((a) => a.startsWith('--datadir='))?.slice('--datadir='.length);
  if (datadir === undefined || path.resolve(datadir).startsWith('/var/lib/mysql')) {
    return `process ${pid} uses the system data directory: refusing to attach`;
  }
  return undefined;
}

/** Starts gdb on the server and begins stalling; `unavailable` (never a throw) when the machine cannot. */
export async function startAllocatorStall(options: AllocatorStallOptions): Promise<AllocatorStallStart> {
  const o = validateAllocatorStallOptions(options);
  const notPrivate = await assertPrivateServer(o.serverPid);
  if (notPrivate !== undefined) return { kind: 'unavailable', reason: notPrivate };
  await sweepAbandonedScratchDirectories({ log: (line) => o.log(`allocator stall: ${line}`) });
  const dir = await createScratchDirectory('eob-stall-');
  deleteOnExit(dir);
  const scriptPath = path.join(dir, 'stall.py');
  await writeFile(scriptPath, gdbScript(o), { mode: 0o600 });
  let gdb: ChildProcessWithoutNullStreams;
  try {
    gdb = spawn(
      o.gdbPath,
      ['-nx', '-q', '-ex', 'set pagination off', '-ex', 'set confirm off', '-ex', 'set non-stop on', '-ex', 'set print thread-events off',
        '-ex', 'set print inferior-events off', '-ex', 'handle all nostop noprint pass', '-ex', `source ${scriptPath}`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
  } catch (error) {
    await deleteNow(dir);
    return { kind: 'unavailable', reason: `gdb could not be started (${(error as Error).message}); install gdb (apt-get install gdb)` };
  }
  // gdb can outlive a SIGKILL of this process: until it is gone, no sweep may take its script away. A record
  // that cannot be written only leaves that window open.
  if (gdb.pid !== undefined) await recordRunDirectoryUser(dir, gdb.pid).catch(() => undefined);
  let only: number[] | undefined;
  if (o.onlyConnectionIds !== undefined) {
    const resolved = await threadsOf(o.mysqlUrl, o.onlyConnectionIds);
    if (typeof resolved === 'string') {
      await deleteNow(dir);
      gdb.kill('SIGKILL');
      throw new Error(`allocator stall: ${resolved}`);
    }
    only = resolved;
  }
  const session = new StallSession(gdb, o, dir, only);
  const ready = await session.ready();
  if (ready !== undefined) {
    await session.stop();
    return { kind: 'unavailable', reason: ready };
  }
  return { kind: 'started', stall: session };
}

interface LiveStall {
  record: StallRecord;
  threadNumber: number;
  stoppedAtMs: number;
  /** Set once eob_resume was sent: evidence that arrives later proves nothing. */
  resumed: boolean;
  evidence: Promise<void>;
}

class StallSession implements AllocatorStall {
  readonly stalls: StallRecord[] = [];
  private readonly live = new Map<number, LiveStall>();
  private allocations = 0;
  private readonly output: string[] = [];
  private exited = false;
  private readonly exitPromise: Promise<void>;
  private readyResolve: ((reason: string | undefined) => void) | undefined;
  private readonly readyPromise: Promise<string | undefined>;
  private finishedResolve: (() => void) | undefined;
  private runPasses = 0;
  private onlySent = false;
  private stopping: Promise<AllocatorStallCounts> | undefined;
  private pool: Pool | undefined;
  private probeConn: Promise<PoolConnection> | undefined;
  /** Evidence checks run one at a time: concurrent INNODB_TRX reads would keep its cache from refreshing. */
  private evidenceChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly gdb: ChildProcessWithoutNullStreams,
    private readonly o: AllocatorStallOptions,
    private readonly dir: string,
    private readonly onlyThreads: number[] | undefined,
  ) {
    this.readyPromise = new Promise((resolve) => (this.readyResolve = resolve));
    this.exitPromise = new Promise((resolve) => {
      gdb.on('error', (error) => {
        this.readyResolve?.(`gdb could not be started (${error.message}); install gdb (apt-get install gdb)`);
        this.exited = true;
        resolve();
      });
      gdb.on('exit', (code, signal) => {
        this.exited = true;
        this.readyResolve?.(`gdb exited (${signal ?? `code ${code}`}) before it was ready: ${this.output.slice(-5).join(' | ') || 'no output'}`);
        this.finishedResolve?.();
        resolve();
      });
    });
    createInterface({ input: gdb.stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: gdb.stderr }).on('line', (line) => this.remember(line));
  }

  async ready(): Promise<string | undefined> {
    const timer = setTimeout(() => this.readyResolve?.(`gdb did not attach within ${this.o.attachTimeoutMs} ms`), this.o.attachTimeoutMs);
    const reason = await this.readyPromise;
    clearTimeout(timer);
    this.readyResolve = undefined;
    if (reason !== undefined && /Python scripting is not supported/i.test(this.output.join('\n'))) {
      return 'this gdb has no Python support; install the distribution gdb package (apt-get install gdb)';
    }
    return reason;
  }

  counts(): AllocatorStallCounts {
    const by = (v: StallVerdict) => this.stalls.filter((s) => s.verdict === v).length;
    return {
      allocations: this.allocations,
      stalls: this.stalls.length,
      stallsInWindow: by('in-window'),
      stallsUnproven: by('unproven'),
      stallsRegistered: by('registered'),
    };
  }

  stop(): Promise<AllocatorStallCounts> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<AllocatorStallCounts> {
    if (!this.exited) {
      const finished = new Promise<void>((resolve) => (this.finishedResolve = resolve));
      // Breakpoints go first, then every thread runs again, then detach: the server must not be left with a
      // breakpoint instruction in its code.
      this.send('python eob_finish()');
      await Promise.race([finished, new Promise((r) => setTimeout(r, 10_000))]);
      for (const s of this.live.values()) s.resumed = true;
      this.send('detach');
      this.send('quit');
      this.gdb.stdin.end();
      const exited = await Promise.race([this.exitPromise.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!exited) {
        this.o.log(`allocator stall: gdb (pid ${this.gdb.pid}) did not exit 10 s after detach; killing it`);
        this.gdb.kill('SIGKILL');
        await this.exitPromise;
      }
    }
    await Promise.allSettled([...this.live.values()].map((s) => s.evidence));
    await this.evidenceChain.catch(() => undefined);
    const conn = await this.probeConn?.catch(() => undefined);
    conn?.release();
    await this.pool?.end().catch(() => undefined);
    await deleteNow(this.dir);
    return this.counts();
  }

  private send(command: string): void {
    if (!this.exited && this.gdb.stdin.writable) this.gdb.stdin.write(`${command}\n`);
  }

  private remember(line: string): void {
    this.output.push(line);
    if (this.output.length > 40) this.output.shift();
  }

  private onLine(line: string): void {
    const at = line.indexOf(PREFIX);
    if (at < 0) {
      this.remember(line);
      return;
    }
    const [event, ...rest] = line.slice(at + PREFIX.length).split(' ');
    if (event === 'attached' || (event === 'running' && rest[0] !== '0')) {
      // Resume what the attach stopped until a pass finds nothing left; bounded, checked in ready().
      this.runPasses += 1;
      if (this.runPasses <= MAX_RUN_PASSES) setTimeout(() => this.send('python eob_run()'), 50);
      else this.readyResolve?.(`gdb attached, but server threads were still stopped after ${MAX_RUN_PASSES} passes`);
    } else if (event === 'running') {
      if (this.onlyThreads !== undefined && !this.onlySent) {
        this.onlySent = true;
        this.send(`python eob_only([${this.onlyThreads.join(', ')}])`);
      } else if (this.onlyThreads === undefined) this.readyResolve?.(undefined);
    } else if (event === 'only') this.readyResolve?.(undefined);
    else if (event === 'unavailable') this.readyResolve?.(unavailableReason(rest.join(' ')));
    else if (event === 'stopped') this.onStopped(Number(rest[0]), Number(rest[1]), Number(rest[2]));
    else if (event === 'finished') {
      this.allocations = Number(rest[0]);
      this.finishedResolve?.();
    } else if (event === 'resume-missing') this.o.log(`allocator stall: thread ${rest[0]} was gone when it was to be resumed`);
  }

  private onStopped(seq: number, threadNumber: number, osThreadId: number): void {
    const record: StallRecord = { seq, osThreadId, connectionId: undefined, statement: undefined, verdict: 'unproven', reason: 'not checked (evidenceEvery)', heldMs: undefined };
    this.stalls.push(record);
    const stall: LiveStall = { record, threadNumber, stoppedAtMs: performance.now(), resumed: false, evidence: Promise.resolve() };
    this.live.set(threadNumber, stall);
    // Every stall's connection and statement are looked up (PROCESSLIST is live and cheap); INNODB_TRX is read
    // only for every evidenceEvery-th.
    const readTrx = this.o.evidenceEvery > 0 && seq % this.o.evidenceEvery === 0;
    {
      stall.evidence = this.evidenceChain = this.evidenceChain.then(() => this.checkEvidence(stall, readTrx)).catch((error: unknown) => {
        record.reason = `evidence query failed: ${(error as Error).message}`;
      });
    }
    // The thread is held for stallMs, and a little longer (bounded) if its evidence check is still running,
    // so that check can finish while the thread provably has not moved.
    setTimeout(() => {
      void Promise.race([stall.evidence, new Promise((r) => setTimeout(r, EVIDENCE_GRACE_MS))]).then(() => this.resume(stall));
    }, this.o.stallMs);
  }

  private resume(stall: LiveStall): void {
    if (stall.resumed) return;
    stall.resumed = true;
    stall.record.heldMs = Math.round(performance.now() - stall.stoppedAtMs);
    this.live.delete(stall.threadNumber);
    this.send(`python eob_resume(${stall.threadNumber})`);
  }

  private connection(): Promise<PoolConnection> {
    this.pool ??= createPool({ url: this.o.mysqlUrl, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'fault-allocator-stall' });
    this.probeConn ??= this.pool.getConnection();
    return this.probeConn;
  }

  /**
   * While the thread is stopped: find its connection by PROCESSLIST.TID (the OS thread id gdb reports), then
   * read INNODB_TRX in a snapshot proven fresh. A connection running a statement with no real trx id holds an
   * offset (the stop is at the allocator's successful return) that an INNODB_TRX-only proof cannot see.
   */
  private async checkEvidence(stall: LiveStall, readTrx: boolean): Promise<void> {
    const r = stall.record;
    if (stall.resumed) {
      r.reason = 'resumed before the check could run';
      return;
    }
    const db = executorOf(await this.connection());
    const rows = await db.query<{ ID: number; COMMAND: string; INFO: string | null }[]>(
      'SELECT `ID`, `COMMAND`, `INFO` FROM information_schema.PROCESSLIST WHERE `TID` = ?',
      [stall.record.osThreadId],
    );
    const row = rows[0];
    if (row === undefined) {
      r.reason = `no connection has TID ${r.osThreadId}`;
      return;
    }
    r.connectionId = Number(row.ID);
    r.statement = row.INFO?.slice(0, 300) ?? undefined;
    if (!readTrx) return;
    for (let attempt = 1; attempt <= EVIDENCE_SNAPSHOT_ATTEMPTS; attempt += 1) {
      const snapshot = await readTransactionSnapshot(db);
      if (stall.resumed) {
        r.reason = 'resumed before the INNODB_TRX read returned';
        return;
      }
      if (!snapshot.fresh) {
        r.reason = 'every INNODB_TRX read came from its cache (someone else read it within 100 ms)';
        await new Promise((resolve) => setTimeout(resolve, INNODB_TRX_CACHE_IDLE_MS + 20));
        if (stall.resumed) return;
        continue;
      }
      const own = snapshot.transactions.find((t) => t.connectionId === r.connectionId);
      // `Execute`: a prepared statement (the publishers' INSERT is one) runs under that command.
      if (row.COMMAND !== 'Query' && row.COMMAND !== 'Execute') {
        r.reason = `its connection ${r.connectionId} is in COMMAND ${row.COMMAND}, not running a statement`;
      } else if (own?.realId === true) {
        r.verdict = 'registered';
        r.reason = `connection ${r.connectionId} already holds trx id ${own.trxId} in a fresh INNODB_TRX read`;
      } else {
        r.verdict = 'in-window';
        r.reason = own === undefined
          ? `connection ${r.connectionId} holds an allocated offset and is absent from a fresh INNODB_TRX read`
          : `connection ${r.connectionId} holds an allocated offset and has no real trx id (${own.trxId}) in a fresh INNODB_TRX read`;
      }
      return;
    }
  }
}

/** PROCESSLIST.TID of each connection, or what is wrong. */
async function threadsOf(mysqlUrl: string, connectionIds: readonly number[]): Promise<number[] | string> {
  if (connectionIds.length === 0) return 'onlyConnectionIds is empty: pass undefined to stall every connection';
  const pool = createPool({ url: mysqlUrl, connectionLimit: 1, connectTimeoutMs: 5_000, role: 'fault-allocator-stall' });
  try {
    const rows = await executorOf(pool).query<{ ID: number; TID: number }[]>(
      `SELECT \`ID\`, \`TID\` FROM information_schema.PROCESSLIST WHERE \`ID\` IN (${connectionIds.map(() => '?').join(', ')})`,
      [...connectionIds],
    );
    const missing = connectionIds.filter((id) => !rows.some((r) => Number(r.ID) === id));
    if (missing.length > 0) return `connections ${missing.join(', ')} are not in PROCESSLIST`;
    return rows.map((r) => Number(r.TID));
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** Resume passes after attach (50 ms apart; one or two were enough here). */
const MAX_RUN_PASSES = 100;
/** Fresh INNODB_TRX reads tried per stall: each stale one costs 120 ms of a 300 ms stall. */
const EVIDENCE_SNAPSHOT_ATTEMPTS = 3;
/** How much longer than stallMs a thread may be held while its evidence check finishes (ms). */
const EVIDENCE_GRACE_MS = 300;

function unavailableReason(text: string): string {
  if (/ptrace|Operation not permitted/i.test(text)) {
    return `ptrace refused: ${text} (run as root or with CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope=0)`;
  }
  return text;
}
