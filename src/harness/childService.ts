// One child process of the system under test (the server, a worker, or a stand-in), with the lifecycle the
// bench and the chaos harness need: start until ready, stop gracefully with a deadline, kill, pause/resume,
// restart, its pid and CPU, and the tail of its output for error messages.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { processTreeCpuSeconds } from './processCpu.ts';
import { killOnExit } from './killOnExit.ts';

/** How a service says it is ready: an HTTP GET answering 200, or a line of output matching a pattern. */
export type Readiness = { kind: 'http'; url: string } | { kind: 'line'; pattern: RegExp };

export interface ChildServiceSpec {
  /** For messages: "server", "worker 2". */
  name: string;
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  readiness: Readiness;
  /** How long start() waits for readiness before it kills the child and fails. */
  startTimeoutMs: number;
  /** How long stop() waits after SIGTERM before it sends SIGKILL. */
  stopTimeoutMs: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Lines of output kept for error messages; enough for a stack trace and the lines before it. */
const TAIL_LINES = 60;
/** Readiness poll interval: a node child starts in ~0.5-1 s here, so 100 ms adds little to start-up. */
const READY_POLL_MS = 100;

/**
 * Why a process ended, as the harness sees it: `stopped` by stop()/kill(), `planned` (it was started to die:
 * a failpoint armed in it, see expectExit), or `unexpected`.
 */
export type ExitCause = 'stopped' | 'planned' | 'unexpected';

export class ChildServiceError extends Error {
  override readonly name = 'ChildServiceError';
}

export class ChildService {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<ExitStatus> | undefined;
  private lastExit: ExitStatus | undefined;
  private readonly tail: string[] = [];
  private partial = '';
  private lineWaiters: ((line: string) => void)[] = [];
  private readonly lineListeners: ((line: string) => void)[] = [];
  private exitListeners: ((status: ExitStatus, expected: boolean, cause: ExitCause) => void)[] = [];
  private stopping = false;
  private planned: string | undefined;

  constructor(readonly spec: ChildServiceSpec) {
  }

  get name(): string {
    return this.spec.name;
  }

  /** The pid of the running process, undefined when it is not running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.lastExit === undefined;
  }

  /** How the last process ended (undefined while it runs or before the first start). */
  get exitStatus(): ExitStatus | undefined {
    return this.lastExit;
  }

  /** Resolves when the current process exits (immediately if none runs). */
  exited(): Promise<ExitStatus> {
    return this.exitPromise ?? Promise.resolve(this.lastExit ?? { code: null, signal: null });
  }

  /** Called on every exit; `expected` is true when stop()/kill() caused it or it was planned (expectExit). */
  onExit(listener: (status: ExitStatus, expected: boolean, cause: ExitCause) => void): void {
    this.exitListeners.push(listener);
  }

  /**
   * Says that this process may end by itself and that this is the plan (a failpoint armed in it kills it on
   * purpose), so its exit is reported as planned, `why`, not as unexpected. Holds across restarts.
   */
  expectExit(why: string): void {
    this.planned = why;
  }

  /** Why the process may end by itself (expectExit), if it was said. */
  get plannedExit(): string | undefined {
    return this.planned;
  }

  /** Called with every line the process writes (stdout and stderr), across restarts. */
  onLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  /** The last lines the process wrote (stdout and stderr interleaved as they arrived). */
  outputTail(lines = TAIL_LINES): string {
    return this.tail.slice(-lines).join('\n');
  }

  /** CPU seconds of the current process and its descendants, undefined when it is not running. */
  cpuSeconds(): number | undefined {
    const pid = this.pid;
    return pid === undefined ? undefined : processTreeCpuSeconds(pid);
  }

  /** Spawns the process and resolves once it is ready; a child that dies first fails with its output tail. */
  async start(): Promise<void> {
    if (this.running) throw new ChildServiceError(`${this.name}: start() while it is already running (pid ${this.pid})`);
    this.lastExit = undefined;
    this.stopping = false;
    this.partial = '';
    const child = spawn(this.spec.command, [...this.spec.args], {
      env: { ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    killOnExit(child);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.record(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.record(chunk));
    this.exitPromise = new Promise<ExitStatus>((resolve) => {
      child.once('error', (error) => {
        this.record(`spawn error: ${error.message}\n`);
      });
      child.once('close', (code, signal) => {
        if (this.partial !== '') this.pushLine(this.partial);
        this.partial = '';
        const status = { code, signal };
        this.lastExit = status;
        const cause: ExitCause = this.stopping ? 'stopped' : this.planned !== undefined ? 'planned' : 'unexpected';
        for (const listener of this.exitListeners) listener(status, cause !== 'unexpected', cause);
        resolve(status);
      });
    });
    try {
      await this.waitUntilReady(child);
    } catch (error) {
      if (this.running) await this.kill('SIGKILL');
      throw error;
    }
  }

  /** SIGTERM, wait up to stopTimeoutMs for the exit, then SIGKILL. Resolves with how it ended. */
  async stop(): Promise<ExitStatus> {
    if (!this.running) return this.lastExit ?? { code: null, signal: null };
    this.stopping = true;
    this.signal('SIGCONT'); // a paused process cannot handle SIGTERM
    this.signal('SIGTERM');
    const deadline = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), this.spec.stopTimeoutMs);
      t.unref();
    });
    const first = await Promise.race([this.exited(), deadline]);
    if (first === 'timeout') {
      this.record(`${this.name}: no exit ${this.spec.stopTimeoutMs} ms after SIGTERM, sending SIGKILL\n`);
      this.signal('SIGKILL');
    }
    return this.exited();
  }

  /** Sends `signal` (SIGKILL by default) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    if (!this.running) return this.lastExit ?? { code: null, signal: null };
    this.stopping = true;
    this.signal(signal);
    return this.exited();
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  /** Graceful stop (if running), then start again with the same command line. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // exited in between
    }
  }

  private record(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.pushLine(line);
  }

  private pushLine(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES * 2) this.tail.splice(0, this.tail.length - TAIL_LINES);
    for (const waiter of this.lineWaiters) waiter(line);
    for (const listener of this.lineListeners) listener(line);
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const readiness = this.spec.readiness;
    let settled = false;
    const died = this.exitPromise!.then((status) => {
      if (settled) return;
      throw new ChildServiceError(
        `${this.name} exited (${status.signal ?? `code ${status.code}`}) before it was ready; ` +
          `command: ${this.spec.command} ${this.spec.args.join(' ')}\n--- last output ---\n${this.outputTail()}`,
      );
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ChildServiceError(
              `${this.name} was not ready within ${this.spec.startTimeoutMs} ms (waiting for ${describeReadiness(readiness)}); ` +
                `pid ${child.pid}\n--- last output ---\n${this.outputTail()}`,
            ),
          ),
        this.spec.startTimeoutMs,
      );
    });
    const ready =
      readiness.kind === 'line'
        ? new Promise<void>((resolve) => {
            if (this.tail.some((l) => readiness.pattern.test(l))) resolve();
            this.lineWaiters.push((line) => {
              if (readiness.pattern.test(line)) resolve();
            });
          })
        : this.pollHttp(readiness.url, () => settled);
    try {
      await Promise.race([ready, died, timeout]);
    } finally {
      settled = true;
      clearTimeout(timer);
      this.lineWaiters = [];
    }
  }

  private async pollHttp(url: string, cancelled: () => boolean): Promise<void> {
    while (!cancelled()) {
      if ((await httpStatus(url, 1_000)) === 200) return;
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
  }
}

function describeReadiness(r: Readiness): string {
  return r.kind === 'http' ? `GET ${r.url} to answer 200` : `a line matching ${r.pattern}`;
}

/** The status code of a GET, or undefined if there was no answer within `timeoutMs`. */
export function httpStatus(url: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}
