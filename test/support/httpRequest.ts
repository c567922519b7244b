// One HTTP request to a server under test, on a connection of its own, with the whole answer: what the server
// tests on either engine and the hostile-clients suite's ordinary requests send (POST /count, GET /count,
// /healthz).
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** From the moment the connection was open to the end of the answer. */
  sinceConnectMs: number;
}

/** One request on its own connection; rejects on a socket error (no answer at all) or after 20 s. */
export function request(url: string, method: string, headers: http.OutgoingHttpHeaders = {}, body?: string | Buffer, chunked = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let openedAt = Date.now();
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), sinceConnectMs: Date.now() - openedAt }),
      );
      res.on('error', reject);
    });
    req.on('socket', (s) => s.once('connect', () => (openedAt = Date.now())));
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${method} ${url} within 20 s`)));
    if (body !== undefined && chunked) {
      // No Content-Length: the server has to count the bytes itself.
      req.write(body.slice(0, Math.floor(body.length / 2)));
      req.end(body.slice(Math.floor(body.length / 2)));
    } else req.end(body);
  });
}
