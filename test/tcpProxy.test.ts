// The TCP proxy against a local echo server: bytes pass intact, delay adds latency, reset sends RST to live
// connections and refuses new ones for a while.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { TcpProxy } from '../src/harness/faults/tcpProxy.ts';

async function echoServer(): Promise<{ port: number; close: () => Promise<void>; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

async function roundTrip(socket: net.Socket, text: string): Promise<{ reply: string; ms: number }> {
  const started = performance.now();
  let reply = '';
  socket.write(text);
  while (reply.length < text.length) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    reply += chunk.toString();
  }
  return { reply, ms: performance.now() - started };
}

test('passes bytes through unchanged, in order', async () => {
  const echo = await echoServer();
  const proxy = await TcpProxy.start({ targetPort: echo.port });
  try {
    const socket = await connect(proxy.port);
    const big = 'x'.repeat(200_000) + 'END';
    const { reply } = await roundTrip(socket, big);
    assert.equal(reply, big);
    assert.equal(proxy.liveConnections, 1);
    socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('delay adds latency per chunk in both directions and keeps order; 0 removes it', async () => {
  const echo = await echoServer();
  const proxy = await TcpProxy.start({ targetPort: echo.port });
  try {
    const socket = await connect(proxy.port);
    const fast = await roundTrip(socket, 'ping');
    proxy.setDelay(150);
    const slow = await roundTrip(socket, 'ping');
    // 150 ms each way through the proxy: at least 300 ms for the round trip.
    assert.ok(slow.ms >= 290, `delayed round trip took ${slow.ms.toFixed(0)} ms`);
    assert.ok(fast.ms < 100, `undelayed round trip took ${fast.ms.toFixed(0)} ms`);
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    for (let i = 0; i < 20; i++) socket.write(`${i};`);
    const expected = Array.from({ length: 20 }, (_, i) => `${i};`).join('');
    const deadline = Date.now() + 5_000;
    while (received.length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(received, expected);
    proxy.setDelay(0);
    socket.removeAllListeners('data');
    assert.ok((await roundTrip(socket, 'pong')).ms < 100);
    assert.throws(() => proxy.setDelay(-1), /delay must be >= 0/);
    socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('reset sends RST to both sides of every live connection and refuses new ones for a while', async () => {
  const echo = await echoServer();
  const proxy = await TcpProxy.start({ targetPort: echo.port });
  try {
    const a = await connect(proxy.port);
    const b = await connect(proxy.port);
    await roundTrip(a, 'a');
    await roundTrip(b, 'b');
    const errors = [once(a, 'error'), once(b, 'error')];
    assert.equal(proxy.resetAll(400), 2);
    const [[ea], [eb]] = (await Promise.all(errors)) as [[NodeJS.ErrnoException], [NodeJS.ErrnoException]];
    assert.equal(ea.code, 'ECONNRESET');
    assert.equal(eb.code, 'ECONNRESET');
    // The upstream side was reset too: the echo server lost its sockets.
    const deadline = Date.now() + 2_000;
    while (echo.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(echo.sockets.size, 0);

    const refused = net.connect(proxy.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(proxy.refusing, true);

    await new Promise((r) => setTimeout(r, 500));
    const c = await connect(proxy.port);
    assert.equal((await roundTrip(c, 'back')).reply, 'back');
    assert.equal(proxy.stats.reset, 2);
    c.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('retarget resets live connections and sends new ones to the other server (the virtual address of a failover)', async () => {
  const first = await echoServer();
  const second = await echoServer();
  const proxy = await TcpProxy.start({ targetPort: first.port });
  try {
    const a = await connect(proxy.port);
    await roundTrip(a, 'a');
    assert.equal(first.sockets.size, 1);
    const error = once(a, 'error');
    assert.equal(proxy.retarget(second.port), 1);
    const [e] = (await error) as [NodeJS.ErrnoException];
    assert.equal(e.code, 'ECONNRESET');
    assert.deepEqual(proxy.target, { host: '127.0.0.1', port: second.port });
    const b = await connect(proxy.port);
    assert.equal((await roundTrip(b, 'to the second')).reply, 'to the second');
    assert.equal(second.sockets.size, 1);
    assert.throws(() => proxy.retarget(0), /targetPort must be a port number/);
    b.destroy();
  } finally {
    await proxy.close();
    await first.close();
    await second.close();
  }
});
