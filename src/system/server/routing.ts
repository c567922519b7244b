// How the server reads a request before any database work: the route a URL names (and the methods each
// allows), and a body check that discards the body and stops at the first byte over the limit.
import type { IncomingMessage } from 'node:http';

export type Route =
  | { kind: 'count'; id: string }
  | { kind: 'noop'; id: string }
  | { kind: 'healthz' }
  | { kind: 'metrics' };

export const ALLOWED: Record<Route['kind'], string> = { count: 'GET, POST', noop: 'POST', healthz: 'GET', metrics: 'GET' };

export function route(rawUrl: string): Route | undefined {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (path === '/healthz') return { kind: 'healthz' };
  if (path === '/metrics') return { kind: 'metrics' };
  for (const kind of ['count', 'noop'] as const) {
    const prefix = `/${kind}/`;
    if (path.startsWith(prefix)) {
      const id = path.slice(prefix.length);
      if (id === '' || id.includes('/')) return undefined;
      return { kind, id };
    }
  }
  return undefined;
}
export type BodyCheck = 'ok' | 'too-large' | 'aborted';

/** Reads and discards the body, stopping at the first byte over `limit`. */
export function checkBody(req: IncomingMessage, limit: number): BodyCheck | Promise<BodyCheck> {
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > limit) return 'too-large';
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return 'ok';
  return new Promise((resolve) => {
    let seen = 0;
    const settle = (result: BodyCheck): void => {
      req.removeAllListeners('data');
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) {
        req.pause();
        settle('too-large');
      }
    });
    req.on('end', () => settle('ok'));
    req.on('error', () => settle('aborted'));
    req.on('aborted', () => settle('aborted'));
  });
}
