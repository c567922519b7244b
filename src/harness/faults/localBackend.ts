// The local backend of the fault registry: the system is this process's children (SystemUnderTest): the
// private database, the HTTP server and the workers. Worker restarts go through SystemUnderTest so that a
// worker restarted with a failpoint armed is a new child with its own command line.
import type { ChildService } from '../childService.ts';
import type { ServerService, SystemUnderTest, WorkerFlags } from '../systemUnderTest.ts';
import type { FaultBackend, ServiceRole } from './backend.ts';

export interface LocalBackendOptions {
  workerFlags: WorkerFlags;
  /** The URL the workers connect with (the TCP proxy's, so network faults and conn-kill can reach them). */
  workerMysqlUrl: string;
}

export class LocalBackend implements FaultBackend {
  readonly kind = 'local' as const;
  private generation = 0;

  constructor(
    private readonly sut: SystemUnderTest,
    private readonly server: ServerService,
    readonly workers: ChildService[],
    private readonly options: LocalBackendOptions,
  ) {}

  async kill(role: ServiceRole, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (role === 'db') return this.sut.requirePrivateDatabase().kill(signal);
    await Promise.all(this.children(role).map((c) => c.kill(signal)));
  }

  async stop(role: ServiceRole): Promise<void> {
    if (role === 'db') return this.sut.requirePrivateDatabase().stop();
    await Promise.all(this.children(role).map((c) => c.stop()));
  }

  async start(role: ServiceRole): Promise<void> {
    if (role === 'db') {
      await this.sut.requirePrivateDatabase().start();
      return;
    }
    await Promise.all(this.children(role).filter((c) => !c.running).map((c) => withRetries(c.name, () => c.start())));
  }

  async restart(role: ServiceRole, options: { clean: boolean }): Promise<void> {
    if (role === 'db') {
      await this.sut.requirePrivateDatabase().restart(options);
      return;
    }
    if (options.clean) await this.stop(role);
    else await this.kill(role, 'SIGKILL');
    await this.start(role);
  }

  async pause(role: ServiceRole): Promise<void> {
    if (role === 'db') return this.sut.requirePrivateDatabase().pause();
    for (const c of this.children(role)) c.pause();
  }

  async resume(role: ServiceRole): Promise<void> {
    if (role === 'db') return this.sut.requirePrivateDatabase().resume();
    for (const c of this.children(role)) c.resume();
  }

  /**
   * Replaces the first worker with one armed with `spec` (`point=N`), waits until the failpoint kills it (or
   * `timeoutMs` passes: the point was not reached), then starts an unarmed worker in its place.
   */
  async crashWorkerAt(spec: string, timeoutMs: number): Promise<{ fired: boolean }> {
    const old = this.workers[0];
    if (old === undefined) throw new Error('local backend: no worker to arm a failpoint in');
    await this.sut.stopService(old);
    this.generation += 1;
    try {
      const armed = await this.sut.startWorker(
        { ...this.options.workerFlags, failpoints: [spec] },
        `worker 1 (failpoint ${spec})`,
        this.options.workerMysqlUrl,
      );
      let timer: NodeJS.Timeout | undefined;
      const fired = await Promise.race([
        armed.exited().then((s) => s.signal === 'SIGKILL'),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      await this.sut.stopService(armed);
      return { fired };
    } finally {
      // Whatever happened to the armed worker (even a failed start), an unarmed one takes its place.
      this.workers[0] = await withRetries(`worker 1 (gen ${this.generation})`, () =>
        this.sut.startWorker(this.options.workerFlags, `worker 1 (gen ${this.generation})`, this.options.workerMysqlUrl),
      );
    }
  }

  async close(): Promise<void> {
    // The children and the database belong to the SystemUnderTest, which closes them.
  }

  private children(role: 'server' | 'worker'): ChildService[] {
    return role === 'server' ? [this.server.service] : this.workers;
  }
}

/**
 * A restart that fails (the child exits during start-up, e.g. while the database is itself restarting) is
 * tried again, as a supervisor with `restart: unless-stopped` would; 3 attempts 500 ms apart.
 */
async function withRetries<T>(what: string, start: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await start();
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`${what}: did not start in 3 attempts: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}
