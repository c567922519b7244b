// What a fault can do to a part of the system, whatever runs it: local child processes (localBackend.ts) or
// Docker Compose services (dockerBackend.ts). Faults in nemesis.ts are written against this interface only.

export type ServiceRole = 'db' | 'server' | 'worker';
export const SERVICE_ROLES: readonly ServiceRole[] = ['db', 'server', 'worker'];

export interface FaultBackend {
  readonly kind: 'local' | 'docker';
  /** Sends `signal` (SIGKILL by default) to every process of the role; does not start it again. */
  kill(role: ServiceRole, signal?: NodeJS.Signals): Promise<void>;
  /** Graceful stop (SIGTERM, then wait for exit). */
  stop(role: ServiceRole): Promise<void>;
  /** Starts the role again and resolves when it is running. */
  start(role: ServiceRole): Promise<void>;
  /** clean: graceful stop then start; otherwise SIGKILL then start (crash restart on the same data). */
  restart(role: ServiceRole, options: { clean: boolean }): Promise<void>;
  /** SIGSTOP / SIGCONT (docker pause / unpause). */
  pause(role: ServiceRole): Promise<void>;
  resume(role: ServiceRole): Promise<void>;
  close(): Promise<void>;
}
