// A process's /metrics on a port of its own (the worker's `--metrics-port`): 127.0.0.1 only, GET /metrics in
// Prometheus text format, anything else 404. The server needs none: it answers /metrics on its own port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/** Answers one GET /metrics from `registry` (also the server's route). */
export function answerMetrics(registry: Registry, res: http.ServerResponse): void {
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    },
    (error: unknown) => {
      const text = JSON.stringify({ error: `metrics unavailable: ${error instanceof Error ? error.message : String(error)}` });
      res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    },
  );
}

/** Listens on 127.0.0.1:`port` (0: any free port). */
export async function listenForMetrics(registry: Registry, port: number): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') answerMetrics(registry, res);
    else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('only GET /metrics here\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`metrics port ${port} on 127.0.0.1 is already in use; pass another --metrics-port`) : error),
    );
    server.listen({ port, host: '127.0.0.1' }, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
