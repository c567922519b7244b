// Whether a TCP port on 127.0.0.1 is free, and how to find one for a private database server.
import net from 'node:net';
import { readFile } from 'node:fs/promises';

/** True when nothing listens on host:port (checked by binding it for an instant). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function ephemeralRange(): Promise<[number, number]> {
  try {
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // Not Linux: assume the IANA range.
  }
  return [49152, 65535];
}

/**
 * A free port for a server that will be killed and restarted on the same port. Port 0 would hand out an
 * ephemeral port, and while the killed server is down the kernel may give that same number to an outgoing
 * connection (every client of every test uses ephemeral ports), so the restart could not bind it. Ports are
 * therefore drawn at random below the ephemeral range, and checked by binding.
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  const [ephemeralLow] = await ephemeralRange();
  const low = 20_000;
  const high = Math.max(low + 1_000, ephemeralLow) - 1;
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await isPortFree(port, host)) return port;
  }
  // Crowded machine: fall back to whatever the kernel hands out.
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
