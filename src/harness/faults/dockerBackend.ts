// The docker backend of the fault registry: the system runs as containers labelled like Compose services
// (mysql, server, worker: a Compose deployment, or harness/dockerDeployment.ts's per-case containers) and faults
// act on them through the Docker Engine API (dockerode). Containers are found by the labels Compose puts on
// them, so scaled services (worker x N) are all reached. test/dockerBackend.test.ts checks the API calls
// against a stand-in of the Engine API; test/docker/engine.test.ts (make test-docker) runs them on a real one.
import Docker from 'dockerode';
import type { ContainerInfo } from 'dockerode';
import type { FaultBackend, ServiceRole } from './backend.ts';

export interface DockerBackendOptions {
  /** The Compose project name (com.docker.compose.project); by default the directory name of the compose file. */
  project: string;
  /** Compose service name per role. */
  services: Record<ServiceRole, string>;
  /** Engine API: a unix socket path, or host/port for a TCP endpoint. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** Seconds `docker stop` waits before SIGKILL (the worker's graceful shutdown finishes a batch well within it). */
  stopTimeoutS: number;
  /** How long to wait for a container to be running again after start/restart/unpause (ms). */
  readyTimeoutMs: number;
}

export const DEFAULT_DOCKER_OPTIONS: DockerBackendOptions = {
  project: 'exactly-once-bench',
  services: { db: 'mysql', server: 'server', worker: 'worker' },
  socketPath: '/var/run/docker.sock',
  stopTimeoutS: 10,
  readyTimeoutMs: 60_000,
};

export class DockerBackend implements FaultBackend {
  readonly kind = 'docker' as const;
  private readonly docker: Docker;
  private readonly options: DockerBackendOptions;

  constructor(options: Partial<DockerBackendOptions> = {}) {
    this.options = { ...DEFAULT_DOCKER_OPTIONS, ...options };
    if (this.options.project.trim() === '') throw new Error('docker backend: project must name the Compose project');
    this.docker =
      this.options.host !== undefined
        ? new Docker({ host: this.options.host, port: this.options.port ?? 2375, protocol: 'http' })
        : new Docker({ socketPath: this.options.socketPath ?? DEFAULT_DOCKER_OPTIONS.socketPath ?? '/var/run/docker.sock' });
  }

  /** The containers of one role's Compose service, running or not. Throws if there are none. */
  async containers(role: ServiceRole): Promise<ContainerInfo[]> {
    const service = this.options.services[role];
    const found = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`com.docker.compose.project=${this.options.project}`, `com.docker.compose.service=${service}`],
      },
    });
    if (found.length === 0) {
      throw new Error(
        `docker backend: no container of service "${service}" in Compose project "${this.options.project}"; ` +
          'start it with `docker compose up -d` or pass the project name (COMPOSE_PROJECT_NAME)',
      );
    }
    return found;
  }

  async kill(role: ServiceRole, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.each(role, (c) => c.kill({ signal }));
  }

  async stop(role: ServiceRole): Promise<void> {
    await this.each(role, (c) => c.stop({ t: this.options.stopTimeoutS }));
  }

  async start(role: ServiceRole): Promise<void> {
    await this.each(role, (c) => c.start());
    await this.waitRunning(role);
  }

  /**
   * `clean` is `docker restart` (SIGTERM, then start); otherwise SIGKILL then start, which is how db-kill
   * crash-restarts MySQL on its volume.
   */
  async restart(role: ServiceRole, options: { clean: boolean }): Promise<void> {
    if (options.clean) {
      await this.each(role, (c) => c.restart({ t: this.options.stopTimeoutS }));
    } else {
      await this.kill(role, 'SIGKILL');
      await this.each(role, (c) => c.start());
    }
    await this.waitRunning(role);
  }

  async pause(role: ServiceRole): Promise<void> {
    await this.each(role, (c) => c.pause());
  }

  async resume(role: ServiceRole): Promise<void> {
    await this.each(role, (c) => c.unpause());
  }

  async close(): Promise<void> {
    // dockerode keeps no connection open between calls.
  }

  private async each(role: ServiceRole, action: (c: Docker.Container) => Promise<unknown>): Promise<void> {
    const containers = await this.containers(role);
    await Promise.all(containers.map((info) => action(this.docker.getContainer(info.Id))));
  }

  private async waitRunning(role: ServiceRole): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    for (;;) {
      const containers = await this.containers(role);
      const states = await Promise.all(containers.map((c) => this.docker.getContainer(c.Id).inspect()));
      if (states.every((s) => s.State.Running && !s.State.Paused)) return;
      if (Date.now() > deadline) {
        throw new Error(`docker backend: service ${this.options.services[role]} not running ${this.options.readyTimeoutMs} ms after start`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
