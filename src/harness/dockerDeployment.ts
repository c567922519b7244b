// The system as containers, for chaos on the docker backend: a database container and a server and worker
// containers from the local images (make docker-images), started per case with the case's flags, like the
// local backend's fresh children per case. Host network (the engine runs without a bridge here), so every
// address stays on 127.0.0.1 and the ports are the options' own, never 3306. The containers carry the labels
// Compose gives its services, so DockerBackend (faults/dockerBackend.ts) finds them by service exactly as it
// finds a Compose deployment's.
import Docker from 'dockerode';
import { createPool, executorOf } from '../system/db/mariadb/pool.ts';
import { sleep } from '../system/waiting.ts';
import { httpStatus } from './childService.ts';
import { DEFAULT_DOCKER_OPTIONS } from './faults/dockerBackend.ts';
import { serverArgs, workerArgs, type ServerFlags, type WorkerFlags } from './systemUnderTest.ts';

export interface DockerDeploymentOptions {
  /** The com.docker.compose.project label of every container (and their names' prefix). */
  project: string;
  /** Engine API socket. */
  socketPath: string;
  /** The eob CLI image (docker/app/Dockerfile) and the database image (docker/mariadb/Dockerfile). */
  appImage: string;
  dbImage: string;
  /** Ports on 127.0.0.1 (host network): the project's own, away from the machine's 3306 / 5432. */
  dbPort: number;
  serverPort: number;
  /** How long the database and the server may take to answer after their containers start (ms). */
  readyTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_DOCKER_DEPLOYMENT: DockerDeploymentOptions = {
  project: 'eob-chaos',
  socketPath: '/var/run/docker.sock',
  appImage: 'eob-app:local',
  dbImage: 'eob-mariadb:bookworm',
  dbPort: 13306,
  serverPort: 18080,
  // 60 s: a fresh database container answered in ~1-2 s here, the server in ~2 s; a loaded machine is slower.
  readyTimeoutMs: 60_000,
  log: () => undefined,
};

/** The user the database image creates on every start (docker/mariadb/entrypoint.sh). */
const DB_USER = 'eob';
const DB_PASSWORD = 'eob';
const DB_NAME = 'eob';
/** Compose's service names (docker-compose.yml), which DockerBackend looks for by default. */
const SERVICES = DEFAULT_DOCKER_OPTIONS.services;

export interface DeploymentSpec {
  server: ServerFlags;
  worker: WorkerFlags;
  workers: number;
}

export class DockerDeployment {
  private constructor(
    private readonly docker: Docker,
    readonly options: DockerDeploymentOptions,
    private readonly ids: string[],
  ) {}

  get mysqlUrl(): string {
    return `mysql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${this.options.dbPort}/${DB_NAME}`;
  }

  get serverBaseUrl(): string {
    return `http://127.0.0.1:${this.options.serverPort}`;
  }

  /** Removes what an earlier run of the project left (a killed harness), then starts db, server, workers. */
  static async start(spec: DeploymentSpec, options: Partial<DockerDeploymentOptions> = {}): Promise<DockerDeployment> {
    const o = { ...DEFAULT_DOCKER_DEPLOYMENT, ...options };
    const docker = new Docker({ socketPath: o.socketPath });
    try {
      await docker.ping();
    } catch (error) {
      throw new Error(
        `docker backend: no Docker engine answers at ${o.socketPath} (${(error as Error).message}); start one ` +
          '(eval "export $(docker/dockerd.sh start)") or name its socket with DOCKER_HOST=unix://... or --docker-socket',
      );
    }
    await removeProject(docker, o.project);
    for (const image of [o.appImage, o.dbImage]) {
      try {
        await docker.getImage(image).inspect();
      } catch {
        throw new Error(`docker backend: image ${image} not found in the engine at ${o.socketPath}; build it with make docker-images`);
      }
    }
    const deployment = new DockerDeployment(docker, o, []);
    try {
      await deployment.run(SERVICES.db, `${o.project}-db`, o.dbImage, [], [`EOB_DB_PORT=${o.dbPort}`, `EOB_DB_USER=${DB_USER}`, `EOB_DB_PASSWORD=${DB_PASSWORD}`, `EOB_DB_NAME=${DB_NAME}`], false);
      await deployment.waitDatabase();
      // The URL goes in the environment, not the command line (as for the local children).
      const env = [`MYSQL_URL=${deployment.mysqlUrl}`, 'EOB_LOG=quiet'];
      await deployment.run(SERVICES.server, `${o.project}-server`, o.appImage, serverArgs(o.serverPort, spec.server), env, true);
      await deployment.waitServer();
      for (let i = 1; i <= spec.workers; i++) {
        await deployment.run(SERVICES.worker, `${o.project}-worker-${i}`, o.appImage, workerArgs(spec.worker), env, true);
      }
      o.log(`docker: ${o.project}: db on 127.0.0.1:${o.dbPort}, server on ${deployment.serverBaseUrl}, ${spec.workers} worker(s)`);
      return deployment;
    } catch (error) {
      await deployment.close().catch(() => undefined);
      throw error;
    }
  }

  /** Force-removes the containers (their data goes with them: each case starts on a fresh database). */
  async close(): Promise<void> {
    await removeProject(this.docker, this.options.project);
  }

  private async run(service: string, name: string, image: string, cmd: string[], env: string[], init: boolean): Promise<void> {
    const container = await this.docker.createContainer({
      name,
      Image: image,
      Cmd: cmd.length === 0 ? undefined : cmd,
      Env: env,
      Labels: { 'com.docker.compose.project': this.options.project, 'com.docker.compose.service': service },
      // init: docker-init as PID 1 forwards SIGTERM to node and reaps; mariadbd is PID 1 itself, so a
      // SIGKILL of the container is a crash of the database (db-kill), not of a wrapper.
      HostConfig: { NetworkMode: 'host', Init: init },
    });
    this.ids.push(container.id);
    await container.start();
  }

  private async waitDatabase(): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    for (;;) {
      const pool = createPool({ url: this.mysqlUrl, connectionLimit: 1, connectTimeoutMs: 2_000, role: 'docker-ready' });
      try {
        await executorOf(pool).query('SELECT 1');
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`docker backend: database container not answering on 127.0.0.1:${this.options.dbPort} after ${this.options.readyTimeoutMs} ms: ${(error as Error).message}`);
        }
      } finally {
        await pool.end().catch(() => undefined);
      }
      await sleep(250);
    }
  }

  private async waitServer(): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    while ((await httpStatus(`${this.serverBaseUrl}/healthz`, 1_000)) !== 200) {
      if (Date.now() > deadline) throw new Error(`docker backend: server container not healthy at ${this.serverBaseUrl} after ${this.options.readyTimeoutMs} ms`);
      await sleep(200);
    }
  }
}

async function removeProject(docker: Docker, project: string): Promise<void> {
  const found = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } });
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}
