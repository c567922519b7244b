// A TCP proxy between a worker and its database, for the net-delay and net-reset faults. The worker is given
// the proxy's port instead of the database's, and the harness turns latency on and off, or resets every live
// connection, without touching either process. In front of a primary/replica pair it is the virtual address
// (what HAProxy, ProxySQL or a floating IP would be): `retarget` points it at the promoted node.
import net from 'node:net';
import { once } from 'node:events';

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  listenHost: string;
  /** 0 picks a free port. */
  listenPort: number;
}

interface Pending {
  chunk: Buffer;
  dueAt: number;
}

/**
 * Delays every chunk in one direction by the current delay while keeping their order: a chunk never overtakes
 * the one before it, so the byte stream stays intact and only its timing changes.
 */
class DelayedPipe {
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ending = false;

  constructor(
    private readonly to: net.Socket,
    private readonly delayMs: () => number,
  ) {}

  push(chunk: Buffer): void {
    const delay = this.delayMs();
    if (delay <= 0 && this.queue.length === 0) {
      this.to.write(chunk);
      return;
    }
    const last = this.queue[this.queue.length - 1];
    this.queue.push({ chunk, dueAt: Math.max(Date.now() + delay, last?.dueAt ?? 0) });
    this.schedule();
  }

  /** Ends the far side once every queued chunk has been written (a half-close keeps its place in the stream). */
  end(): void {
    this.ending = true;
    if (this.queue.length === 0) this.to.end();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const head = this.queue[0];
    if (head === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      while (this.queue[0] !== undefined && this.queue[0].dueAt <= now) {
        const next = this.queue.shift();
        if (next !== undefined && !this.to.destroyed) this.to.write(next.chunk);
      }
      if (this.queue.length === 0 && this.ending) this.to.end();
      this.schedule();
    }, Math.max(0, head.dueAt - Date.now()));
  }
}

export class TcpProxy {
  private readonly server: net.Server;
  private readonly live = new Set<{ client: net.Socket; upstream: net.Socket; pipes: DelayedPipe[] }>();
  private delayMs = 0;
  private boundPort = 0;
  private refusingUntil = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Connections accepted and reset since start, for the fault log. */
  readonly stats = { accepted: 0, reset: 0 };

  private constructor(private options: TcpProxyOptions) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(options: Partial<TcpProxyOptions> & Pick<TcpProxyOptions, 'targetPort'>): Promise<TcpProxy> {
    const full: TcpProxyOptions = { targetHost: '127.0.0.1', listenHost: '127.0.0.1', listenPort: 0, ...options };
    if (!Number.isInteger(full.targetPort) || full.targetPort < 1 || full.targetPort > 65535) {
      throw new Error(`tcp proxy: targetPort must be a port number 1-65535 (got ${full.targetPort})`);
    }
    const proxy = new TcpProxy(full);
    await proxy.listen(full.listenPort);
    return proxy;
  }

  get port(): number {
    return this.boundPort;
  }

  get host(): string {
    return this.options.listenHost;
  }

  get liveConnections(): number {
    return this.live.size;
  }

  /**
   * The local ports of the proxy's live connections to the database. The database sees each proxied session
   * as coming from 127.0.0.1:<one of these>, which is how conn-kill finds exactly the worker's sessions in
   * information_schema.PROCESSLIST.
   */
  upstreamLocalPorts(): number[] {
    const ports: number[] = [];
    for (const conn of this.live) if (conn.upstream.localPort !== undefined) ports.push(conn.upstream.localPort);
    return ports;
  }

  /** Where new connections go. */
  get target(): { host: string; port: number } {
    return { host: this.options.targetHost, port: this.options.targetPort };
  }

  /**
   * Sends new connections to another server from now on, and resets every live one (with a RST, as a floating
   * address moving to another machine does: a session with the old server cannot go on with the new one).
   * Returns how many connections were reset.
   */
  retarget(targetPort: number, targetHost: string = this.options.targetHost): number {
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) {
      throw new Error(`tcp proxy: targetPort must be a port number 1-65535 (got ${targetPort})`);
    }
    this.options = { ...this.options, targetHost, targetPort };
    const count = this.live.size;
    for (const conn of [...this.live]) this.resetConnection(conn);
    this.stats.reset += count;
    return count;
  }

  get currentDelayMs(): number {
    return this.delayMs;
  }

  /** Latency added to every chunk, in both directions, from now on (0 turns it off). */
  setDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`tcp proxy: delay must be >= 0 ms (got ${ms})`);
    this.delayMs = ms;
  }

  /**
   * Destroys every live connection with a TCP RST on both sides (as a crashed middlebox or a cut cable with a
   * reboot would), and, for `refuseForMs`, stops listening so that new connects get ECONNREFUSED. Returns
   * how many connections were reset.
   */
  resetAll(refuseForMs = 0): number {
    const count = this.live.size;
    for (const conn of [...this.live]) this.resetConnection(conn);
    this.stats.reset += count;
    if (refuseForMs > 0 && !this.closed) {
      this.refusingUntil = Date.now() + refuseForMs;
      if (this.server.listening) this.server.close();
      if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer);
      this.reopenTimer = setTimeout(() => {
        this.reopenTimer = undefined;
        if (!this.closed) this.listen(this.boundPort).catch((e: unknown) => process.stderr.write(`tcp proxy: reopen failed: ${String(e)}\n`));
      }, refuseForMs);
    }
    return count;
  }

  get refusing(): boolean {
    return Date.now() < this.refusingUntil;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reopenTimer !== undefined) clearTimeout(this.reopenTimer);
    for (const conn of [...this.live]) {
      conn.client.destroy();
      conn.upstream.destroy();
      for (const p of conn.pipes) p.stop();
    }
    this.live.clear();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async listen(port: number): Promise<void> {
    this.server.listen(port, this.options.listenHost);
    await once(this.server, 'listening');
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('tcp proxy: no TCP address after listen');
    this.boundPort = address.port;
  }

  private accept(client: net.Socket): void {
    this.stats.accepted += 1;
    const upstream = net.connect(this.options.targetPort, this.options.targetHost);
    const toUpstream = new DelayedPipe(upstream, () => this.delayMs);
    const toClient = new DelayedPipe(client, () => this.delayMs);
    const conn = { client, upstream, pipes: [toUpstream, toClient] };
    this.live.add(conn);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (chunk: Buffer) => toUpstream.push(chunk));
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    // An error on either side resets the other, so the worker sees what it would see without the proxy; an
    // orderly end is passed on after the data queued before it.
    const teardown = () => {
      if (!this.live.delete(conn)) return;
      toUpstream.stop();
      toClient.stop();
      if (!client.destroyed) client.resetAndDestroy();
      if (!upstream.destroyed) upstream.resetAndDestroy();
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('end', () => toUpstream.end());
    upstream.on('end', () => toClient.end());
    let closedSides = 0;
    const closed = () => {
      closedSides += 1;
      if (closedSides === 2) this.live.delete(conn);
    };
    client.on('close', () => {
      toUpstream.end();
      closed();
    });
    upstream.on('close', () => {
      toClient.end();
      closed();
    });
  }

  private resetConnection(conn: { client: net.Socket; upstream: net.Socket; pipes: DelayedPipe[] }): void {
    this.live.delete(conn);
    for (const p of conn.pipes) p.stop();
    if (!conn.client.destroyed) conn.client.resetAndDestroy();
    if (!conn.upstream.destroyed) conn.upstream.resetAndDestroy();
  }
}
