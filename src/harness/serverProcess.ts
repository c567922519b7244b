// The process of a private database server (mariadbd, or PostgreSQL's postmaster) as its launcher runs it:
// not started while it runs already or its port is taken; spawned detached and under `setpriv --pdeathsig KILL`
// when setpriv exists, so it dies with this process even if this process is SIGKILLed; recorded in its run
// directory, and in its data directory when a process made that one for it, so that no later sweep removes
// either while it runs (without setpriv it outlives us); the tail of its stderr kept for error messages; polled
// until it answers; stopped with a signal that turns into SIGKILL after a deadline; paused and resumed with
// SIGSTOP / SIGCONT. Around the process, the private server's lifecycle both launchers share: the options every
// launcher validates alike, the data directory prepared once (refused when not ours, reused, or made fresh), the
// run directory made once, the superuser's password and OS user, removal. The engines' arguments, readiness
// checks, how a data directory is made, and SQL stay in their launchers; what differs in how their processes
// are named and take signals is a ServerKind.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { childPids } from './childPids.ts';
import { ensureWritableDirectory, inspectDataDirectory, readPidFile, removeDataDirectory, DataDirectoryError } from './dataDirectory.ts';
import { killOnExit } from './killOnExit.ts';
import { isPortFree } from './ports.ts';
import { createRunDirectory, defaultCacheDirectory, deleteNow, deleteOnExit, recordRunDirectoryUser, sweepAbandonedRunDirectories } from './privateDirectory.ts';
import { PASSWORD_FILE } from './password.ts';
import { intInRange, nonEmptyString, OptionsError } from '../validate.ts';
import { statCommand, statFieldsAfterComm } from './procStat.ts';
import { waitUntilStopped } from './processStopped.ts';
import type { OsUser } from './serverUser.ts';

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

/** What a launcher says about its engine's server process. */
export interface ServerKind {
  /** Starts its error messages. */
  component: string;
  /** Starts its lifecycle log lines (spawned, exited, still running). */
  logPrefix: string;
  /** Starts the log lines copied from its stderr. */
  stderrPrefix: string;
  /** The names (/proc comm) a live server process has. */
  commands: readonly string[];
  /** Its pid file, in the data directory. */
  pidFile: string;
  /** The signal of a clean shutdown (MariaDB: SIGTERM, InnoDB flushes and closes; PostgreSQL: SIGINT, "fast"). */
  stopSignal: NodeJS.Signals;
  /** A process per session whose SIGKILL, SIGSTOP and SIGCONT must reach each of them, not just the parent. */
  forks: boolean;
  /** The launcher's error for a server that does not start, runs already, or whose processes outlive a SIGKILL. */
  StartError: new (message: string) => Error;
  /** The server as a message names it (a data directory "in use by a running <serverName>"). */
  serverName: string;
  /** What a data directory in use by another live server is told to do about it. */
  inUseAdvice(datadir: string): string;
}

export interface ServerCommand {
  command: string;
  args: readonly string[];
  cwd: string;
  /** undefined passes on this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** The OS user it runs as; undefined runs it as this process's user. */
  account: OsUser | undefined;
  /** Its run directory (socket, temp files): the server is recorded there, so no sweep removes it while it runs. */
  runDirectory: string;
}

export interface ServerOptions {
  /** TCP port on 127.0.0.1. */
  port: number;
  datadir: string;
  /** Lifecycle lines and the server's stderr. */
  log: (line: string) => void;
  /** Deadline for a start to answer (crash recovery included). */
  startTimeoutMs: number;
  /** How long a clean shutdown may take before the server is SIGKILLed. */
  stopTimeoutMs: number;
  /** Delete an existing data directory of ours and start from a fresh one; otherwise an existing one is reused. */
  fresh: boolean;
  /** A directory holding the engine's binaries; undefined searches for them. */
  binDir: string | undefined;
  /** Where a fresh data directory's template is cached (undefined: no cache, every one made from scratch). */
  templateCacheDir: string | undefined;
}

/** The defaults every launcher shares; the data directory follows the port (`.eob/<dirPrefix>-<port>`). */
export function defaultServerOptions(dirPrefix: string, port: number, cwd: string): ServerOptions {
  return {
    port,
    datadir: path.join(cwd, '.eob', `${dirPrefix}-${port}`),
    binDir: undefined,
    startTimeoutMs: 60_000,
    stopTimeoutMs: 60_000,
    fresh: false,
    templateCacheDir: defaultCacheDirectory(),
    log: () => undefined,
  };
}

/**
 * The checks every launcher's options share, in place: a port, a data directory (left out, it follows the port:
 * `.eob/<dirPrefix>-<port>`, so two servers on two ports never share one by accident), the start and stop
 * deadlines, the binaries' directory and the log.
 */
export function resolveServerOptions(component: string, options: ServerOptions, datadirGiven: boolean, dirPrefix: string, cwd: string): void {
  intInRange(component, 'port', options.port, 1, 65_535);
  if (!datadirGiven) options.datadir = path.join(cwd, '.eob', `${dirPrefix}-${options.port}`);
  options.datadir = path.resolve(cwd, nonEmptyString(component, 'datadir', options.datadir));
  intInRange(component, 'startTimeoutMs', options.startTimeoutMs, 100, 3_600_000);
  intInRange(component, 'stopTimeoutMs', options.stopTimeoutMs, 100, 3_600_000);
  if (options.binDir !== undefined) nonEmptyString(component, 'binDir', options.binDir);
  if (typeof options.log !== 'function') throw new OptionsError(`${component}: log must be a function`);
}

// Stderr lines kept for the error message of a server that dies on start.
const TAIL_LINES = 20;
const PING_INTERVAL_MS = 25;

let setprivPath: Promise<string | undefined> | undefined;
function findSetpriv(): Promise<string | undefined> {
  setprivPath ??= (async () => {
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // try the next one
      }
    }
    return undefined;
  })();
  return setprivPath;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * True when `pid` is a live server process of `kind`. A zombie does not count: a server killed together with the
 * process that started it stays a zombie until PID 1 reaps it (about a second in a container), and holds no
 * files, ports or shared memory any more.
 */
async function isLiveServer(pid: number, kind: ServerKind): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const command = statCommand(stat);
  const state = statFieldsAfterComm(stat)?.[0];
  return command !== undefined && kind.commands.includes(command) && state !== 'Z' && state !== 'X';
}

function sendTo(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** True when `promise` did not settle within `ms`. */
async function timedOut(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  try {
    return await Promise.race([promise.then(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pid in `datadir`'s pid file when it is a live server of `kind`. */
async function liveServerPid(datadir: string, kind: ServerKind): Promise<number | undefined> {
  const pid = await readPidFile(path.join(datadir, kind.pidFile));
  return pid !== undefined && (await isLiveServer(pid, kind)) ? pid : undefined;
}

/** A start failure whose server said its port was taken. */
export function portTaken(message: string, port: number): PortInUseError {
  return new PortInUseError(`${message}\nport ${port} is taken; pick another with --port`);
}

/**
 * Stops the server whose pid file is in `datadir`, one started by another process (e.g. `eob db start`): its
 * clean-shutdown signal, then waits until it is gone. Resolves false when none was running there.
 */
export async function stopServerByPidFile(datadir: string, kind: ServerKind, timeoutMs: number): Promise<boolean> {
  const pid = await liveServerPid(path.resolve(datadir), kind);
  if (pid === undefined) return false;
  // A paused server would keep the shutdown pending forever.
  if (kind.forks) for (const c of childPids(pid)) sendTo(c, 'SIGCONT');
  sendTo(pid, 'SIGCONT');
  sendTo(pid, kind.stopSignal);
  const deadline = performance.now() + timeoutMs;
  while (await isLiveServer(pid, kind)) {
    if (performance.now() > deadline) {
      throw new Error(`${kind.component}: server pid ${pid} in ${datadir} still running ${timeoutMs} ms after ${kind.stopSignal}; kill -9 ${pid} if it must go`);
    }
    await delay(50);
  }
  return true;
}

/**
 * The lifecycle both launchers share; each spawns its own server in start(). One process at a time: a start
 * spawns a new one after the last has exited.
 */
export abstract class ServerProcess<Options extends ServerOptions, Binaries = unknown> {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private paused = false;
  private tail: string[] = [];
  /** The OS user the server runs as when that is not this process's user; chosen before the first start. */
  protected account: OsUser | undefined;
  /** The superuser's password, read from (or made in) the data directory before the first start. */
  protected password: string | undefined;
  /** The run directory (socket, temp files), made before the first start. */
  protected runDir: string | undefined;
  /** The engine's binaries, once found (the first start looks for them). */
  protected binaries: Binaries | undefined;

  protected constructor(
    private readonly kind: ServerKind,
    readonly options: Options,
  ) {}

  /** Validates the options, prepares the data directory and starts the server; resolves once it is ready. */
  static async create<S extends { start(): Promise<number> }, O>(this: new (options?: O) => S, options?: O): Promise<S> {
    const server = new this(options);
    await server.start();
    return server;
  }

  /** Starts the server (the first time: finds the binaries, prepares the data directory); resolves with ms from spawn to ready. */
  abstract start(): Promise<number>;

  /** The engine's part: where its binaries are and what they are. */
  protected abstract locateBinaries(): Promise<Binaries>;

  /** The binaries, looked for on the first call only. */
  protected async findBinaries(): Promise<Binaries> {
    this.binaries ??= await this.locateBinaries();
    return this.binaries;
  }

  get port(): number {
    return this.options.port;
  }
  /** The 0600 file in the data directory that keeps the superuser's password. */
  get passwordFile(): string {
    return path.join(this.options.datadir, PASSWORD_FILE);
  }
  /** The OS user the server runs as. */
  get serverUser(): string {
    return this.account?.name ?? os.userInfo().username;
  }
  /** The superuser's password; known once start() has prepared the data directory. */
  protected get superuserPassword(): string {
    if (this.password === undefined) throw new Error(`${this.kind.component}: the password (and so the URL) is known once start() has prepared the data directory`);
    return this.password;
  }
  /** The run directory; it exists once start() has been called. */
  protected get runDirectory(): string {
    if (this.runDir === undefined) throw new Error(`${this.kind.component}: the run directory exists once start() has been called`);
    return this.runDir;
  }

  /** Stops the server if it runs and deletes its data directory (only one made by this tool) and its run directory. */
  async remove(): Promise<void> {
    await this.stop();
    await removeDataDirectory(this.options.datadir);
    if (this.runDir !== undefined) {
      await deleteNow(this.runDir);
      this.runDir = undefined;
      this.removed();
    }
  }

  /** Called once remove() has deleted the directories: what the launcher must prepare again on its next start. */
  protected removed(): void {}

  /**
   * Before the first start: a data directory this tool did not make is refused; one of ours is reused (or, with
   * `fresh`, removed first, unless a server runs on it); a missing one is made by `create`, the engine's part,
   * which returns what it did for the log.
   */
  protected async prepareDataDirectory(create: () => Promise<string>): Promise<void> {
    const { datadir } = this.options;
    let state = await inspectDataDirectory(datadir);
    if (state === 'foreign') {
      throw new DataDirectoryError(`data directory ${datadir} is not empty and was not created by eob; pick another one with --datadir (or empty it yourself)`);
    }
    if (state === 'managed' && this.options.fresh) {
      await this.refuseDataDirectoryInUse();
      await removeDataDirectory(datadir);
      state = 'missing';
    }
    if (state === 'managed') {
      await ensureWritableDirectory(datadir);
      this.options.log(`${this.kind.logPrefix}: reusing data directory ${datadir}`);
      return;
    }
    const started = performance.now();
    const what = await create();
    this.options.log(`${this.kind.logPrefix}: ${what} in ${Math.round(performance.now() - started)} ms`);
  }

  /** Once per instance: sweeps the run directories killed processes left, then makes this server's own. */
  protected async makeRunDirectory(prefix: 'eob-db-' | 'eob-pg-'): Promise<string> {
    if (this.runDir !== undefined) return this.runDir;
    await sweepAbandonedRunDirectories({ log: (line) => this.options.log(`${this.kind.logPrefix}: ${line}`) });
    const runDir = await createRunDirectory(prefix, this.account);
    deleteOnExit(runDir);
    this.runDir = runDir;
    return runDir;
  }

  /**
   * Another live server on this data directory (two MariaDB servers would wait on each other's InnoDB locks for
   * minutes, then fail; PostgreSQL's lock-file message is less plain): say so before spawning.
   */
  protected async refuseDataDirectoryInUse(): Promise<void> {
    const pid = await this.otherServerPid();
    if (pid !== undefined) {
      throw new this.kind.StartError(`data directory ${this.options.datadir} is in use by a running ${this.kind.serverName} (pid ${pid}); ${this.kind.inUseAdvice(this.options.datadir)}`);
    }
  }
  get datadir(): string {
    return this.options.datadir;
  }
  get pidFilePath(): string {
    return path.join(this.options.datadir, this.kind.pidFile);
  }
  /** The server's pid while it runs (PostgreSQL: the postmaster's). */
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined;
  }
  get isPaused(): boolean {
    return this.paused;
  }
  /** The last lines of the server's stderr (and why a spawn failed). */
  protected get tailText(): string {
    return this.tail.join('\n');
  }

  /**
   * What a start checks before it spawns: this instance's server is not running already (the kind's StartError),
   * and its port is free (PortInUseError: a server that finds its port taken fails later, with a message less
   * plain than this one).
   */
  protected async refuseRunningOrPortTaken(): Promise<void> {
    if (this.running) throw new this.kind.StartError(`the server on port ${this.options.port} is already running (pid ${this.pid})`);
    if (!(await isPortFree(this.options.port))) {
      throw new PortInUseError(`port ${this.options.port} on 127.0.0.1 is already in use; pick another with --port (or stop whatever listens there)`);
    }
  }

  /** The pid of a live server in the data directory's pid file that is not ours: another process's. */
  protected async otherServerPid(): Promise<number | undefined> {
    const pid = await liveServerPid(this.options.datadir, this.kind);
    return pid === this.pid ? undefined : pid;
  }

  /** Adds a line to the tail, e.g. why a readiness check failed in a way the server's own log will not show. */
  protected note(line: string): void {
    this.tail.push(line);
  }

  /**
   * Spawns the server and polls `answer` until it is true; resolves with the milliseconds from spawn until then.
   * When the server exits first, does not answer within startTimeoutMs, or `answer` gives a final refusal (a
   * string), the server is SIGKILLed and this throws what `fail` makes of the reason.
   */
  protected async spawnUntilReady(
    server: ServerCommand,
    answer: () => Promise<boolean | string>,
    fail: (what: string) => Error | Promise<Error>,
  ): Promise<number> {
    const setpriv = await findSetpriv();
    const [command, args]: [string, readonly string[]] =
      setpriv === undefined ? [server.command, server.args] : [setpriv, ['--pdeathsig', 'KILL', '--', server.command, ...server.args]];
    this.tail = [];
    const started = performance.now();
    // Switched to the server's user by the spawn itself (no supplementary groups): setpriv's death signal is
    // set after that, and the kernel clears a death signal when a process changes its own user.
    const child = spawn(command, args, {
      cwd: server.cwd,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(server.env === undefined ? {} : { env: server.env }),
      ...(server.account === undefined ? {} : { uid: server.account.uid, gid: server.account.gid }),
    });
    killOnExit(child);
    this.child = child;
    this.paused = false;
    let exitDescription = '';
    let dead = false;
    const exited = new Promise<void>((resolve) => {
      const onGone = (code: number | null, signal: NodeJS.Signals | null): void => {
        exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        dead = true;
        if (this.child === child) {
          this.child = undefined;
          this.paused = false;
        }
        this.options.log(`${this.kind.logPrefix}: server pid ${child.pid} exited (${exitDescription})`);
        resolve();
      };
      child.once('exit', onGone);
      child.once('error', (error) => {
        this.tail.push(error.message);
        onGone(null, null);
      });
    });
    this.exited = exited;
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.options.log(`${this.kind.stderrPrefix}: ${line}`);
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
      }
    });
    if (child.pid !== undefined) {
      // A data directory without a record (a --datadir a user chose) is left as it is.
      for (const [what, dir] of [['run', server.runDirectory], ['data', this.options.datadir]] as const) {
        try {
          await recordRunDirectoryUser(dir, child.pid);
        } catch (error) {
          await this.kill('SIGKILL');
          throw await fail(`could not record the server in its ${what} directory ${dir}: ${(error as Error).message}`);
        }
      }
    }
    const deadline = started + this.options.startTimeoutMs;
    for (;;) {
      const answered = await answer();
      if (answered === true) return Math.round(performance.now() - started);
      if (typeof answered === 'string') {
        await this.kill('SIGKILL');
        throw await fail(answered);
      }
      if (dead) throw await fail(`the server exited during start (${exitDescription})`);
      if (performance.now() > deadline) {
        await this.kill('SIGKILL');
        throw await fail(`the server did not answer within ${this.options.startTimeoutMs} ms (killed it)`);
      }
      await Promise.race([delay(PING_INTERVAL_MS), exited]);
    }
  }

  /**
   * Sends `signal` (default SIGKILL) and resolves once the server has exited (at once if it is not running);
   * SIGKILL after stopTimeoutMs. A forking server's SIGKILL reaches each of its children.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new Error(`${this.kind.component}: kill(${signal}) would never see the server exit; use pause() / resume()`);
    }
    const exited = this.exited;
    if (this.child === undefined || exited === undefined) return;
    // A stopped process keeps every signal but SIGKILL pending until it continues.
    if (signal !== 'SIGKILL' && this.paused) this.resume();
    const killed = this.signal(signal);
    if (await timedOut(exited, this.options.stopTimeoutMs)) {
      this.options.log(`${this.kind.logPrefix}: still running ${this.options.stopTimeoutMs} ms after ${signal}; sending SIGKILL`);
      killed.push(...this.signal('SIGKILL'));
      await exited;
    }
    await this.waitUntilGone(killed);
  }

  /** Clean shutdown (the kind's stopSignal), SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    await this.kill(this.kind.stopSignal);
  }

  /**
   * Restarts on the same data directory: `clean` shuts down first, otherwise SIGKILL (crash recovery on the
   * way up). Resolves with the milliseconds from spawn until ready; a server that was not running is started.
   */
  async restart(options: { clean: boolean } = { clean: true }): Promise<number> {
    await this.kill(options.clean ? this.kind.stopSignal : 'SIGKILL');
    return this.start();
  }

  /** Resolves when the running server exits, however that happens (at once if none runs). */
  whenExited(): Promise<void> {
    return this.child === undefined || this.exited === undefined ? Promise.resolve() : this.exited;
  }

  /** SIGSTOP (to each process of a forking server): it stops answering but keeps its connections open (a hung database). */
  pause(): void {
    if (this.child === undefined) throw new Error(`${this.kind.component}: pause() while the server is not running`);
    const children = this.signal('SIGSTOP');
    this.paused = true;
    // kill(2) only queues the signal: return once every process has really stopped, or a query may still be answered.
    waitUntilStopped([...(this.child.pid === undefined ? [] : [this.child.pid]), ...children]);
  }

  resume(): void {
    if (this.child === undefined) return;
    this.signal('SIGCONT');
    this.paused = false;
  }

  /**
   * Sends `signal` to the server; a forking server's SIGKILL, SIGSTOP and SIGCONT go to each of its children too
   * (returned). For SIGKILL and SIGSTOP the parent is stopped first so the set of children cannot change; for
   * SIGCONT the children go first, so the parent never runs while a child it waits on is still stopped.
   */
  private signal(signal: NodeJS.Signals): number[] {
    const pid = this.child?.pid;
    if (pid === undefined) return [];
    if (!this.kind.forks || (signal !== 'SIGKILL' && signal !== 'SIGSTOP' && signal !== 'SIGCONT')) {
      sendTo(pid, signal);
      return [];
    }
    if (signal === 'SIGCONT') {
      for (const c of childPids(pid)) sendTo(c, 'SIGCONT');
      sendTo(pid, 'SIGCONT');
      return [];
    }
    sendTo(pid, 'SIGSTOP');
    const children = childPids(pid);
    for (const c of children) sendTo(c, signal);
    sendTo(pid, signal);
    return children;
  }

  /**
   * The parent's exit can be reported before its SIGKILLed children have finished dying, and a PostgreSQL backend
   * that still holds the old shared memory makes the next start fail ("pre-existing shared memory block is still
   * in use"; seen here under load). So a kill resolves only once each of them is gone (or a zombie, which holds
   * nothing).
   */
  private async waitUntilGone(pids: readonly number[]): Promise<void> {
    const deadline = performance.now() + this.options.stopTimeoutMs;
    for (const pid of pids) {
      while (await isLiveServer(pid, this.kind)) {
        if (performance.now() > deadline) throw new this.kind.StartError(`${this.kind.component}: server process ${pid} still running after SIGKILL`);
        await delay(10);
      }
    }
  }
}
