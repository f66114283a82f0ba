/** Malformed and hostile input: exact reply bytes, a log line, a closed socket, and a server that keeps serving. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { PYTHON } from '../helpers/run';
import { rawConnect } from '../helpers/socks';
import { deadPort, MemoryLogger, Running, startEchoServer, startProxy, waitForClosed } from '../helpers/servers';
import { ProxyServer } from '../../src/core/server';
import type { Dialer, Router } from '../../src/core/dialer';
import { DirectDialer } from '../../src/core/direct';
import { ProxyError, Reply } from '../../src/core/errors';

let echo: Running;
let proxy: Running & { server: ProxyServer; logger: MemoryLogger };

const GREET = [5, 1, 0];
const hex = (b: number[] | Buffer): string => Buffer.from(b).toString('hex');
const connectReq = (port: number): number[] => [5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff];

before(async () => {
  echo = await startEchoServer();
  proxy = await startProxy({ handshakeTimeoutMs: 1500 });
});
after(async () => {
  await proxy.close();
  await echo.close();
});

/** Proves the server still works: a full CONNECT and an echo. */
async function assertStillServing(port = proxy.port): Promise<void> {
  const c = await rawConnect(port);
  c.write([...GREET, ...connectReq(echo.port)]);
  assert.equal(hex(await c.read(2)), '0500');
  const reply = await c.read(10);
  assert.equal(reply[1], 0, 'CONNECT succeeded');
  c.write(Buffer.from('still here'));
  assert.equal((await c.read(10)).toString(), 'still here');
  c.socket.destroy();
}

test('NMETHODS 0: X\'FF\' then close', async () => {
  const c = await rawConnect(proxy.port);
  c.write([5, 0]);
  assert.equal(hex(await c.closed()), '05ff');
  assert.ok(proxy.logger.has('no acceptable authentication method (offered none)'));
  await assertStillServing();
});

test('only GSSAPI offered: X\'FF\' then close', async () => {
  const c = await rawConnect(proxy.port);
  c.write([5, 1, 1]);
  assert.equal(hex(await c.closed()), '05ff');
  await assertStillServing();
});

test('bad version in the request: X\'01\' reply then close', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
  assert.equal(hex(await c.closed()), '0500' + '05010001000000000000');
  assert.ok(proxy.logger.has('malformed request'));
  await assertStillServing();
});

test('unknown command: X\'07\'', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80]);
  assert.equal(hex(await c.closed()), '0500' + '05070001000000000000');
  assert.ok(proxy.logger.has('unknown command 0x09'));
  await assertStillServing();
});

test('unknown address type: X\'08\'', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 5, 1, 0, 7, 1, 2, 3, 4, 0, 80]);
  assert.equal(hex(await c.closed()), '0500' + '05080001000000000000');
  assert.ok(proxy.logger.has('unknown address type 0x07'));
  await assertStillServing();
});

test('zero-length domain: X\'01\'', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 5, 1, 0, 3, 0, 0, 80]);
  assert.equal(hex(await c.closed()), '0500' + '05010001000000000000');
  assert.ok(proxy.logger.has('zero-length domain name'));
  await assertStillServing();
});

test('unresolvable domain: X\'04\'', async () => {
  const c = await rawConnect(proxy.port);
  const name = Buffer.from('no-such-host.invalid');
  c.write([...GREET, 5, 1, 0, 3, name.length, ...name, 0, 80]);
  const got = await c.closed(8000);
  assert.equal(hex(got.subarray(0, 4)), '05000504');
  await assertStillServing();
});

test('refused destination: X\'05\'', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, ...connectReq(await deadPort())]);
  assert.equal(hex(await c.closed()), '0500' + '05050001000000000000');
});

test('wrong RFC 1929 sub-negotiation version: closed without success', async () => {
  const p = await startProxy({ users: [{ username: 'u', password: 'p' }] });
  try {
    const c = await rawConnect(p.port);
    c.write([5, 1, 2, 5, 1, 0x75, 1, 0x70]);
    assert.equal(hex(await c.closed()), '0502');
    assert.ok(p.logger.has('malformed auth'));
    // And a correct login still works; the status byte is 0 and the request proceeds.
    const ok = await rawConnect(p.port);
    ok.write([5, 1, 2, 1, 1, 0x75, 1, 0x70, ...connectReq(echo.port), ...Buffer.from('after auth')]);
    assert.equal(hex(await ok.read(4)), '05020100');
    assert.equal((await ok.read(10))[1], 0);
    assert.equal((await ok.read(10)).toString(), 'after auth');
    ok.socket.destroy();
  } finally {
    await p.close();
  }
});

test('byte-by-byte slow delivery of greeting and request still connects', async () => {
  const c = await rawConnect(proxy.port);
  const bytes = [...GREET, ...connectReq(echo.port)];
  for (const b of bytes) {
    c.write([b]);
    await new Promise((r) => setTimeout(r, 15));
  }
  assert.equal(hex(await c.read(2)), '0500');
  assert.equal((await c.read(10))[1], 0);
  c.write(Buffer.from('slow'));
  assert.equal((await c.read(4)).toString(), 'slow');
  c.socket.destroy();
});

test('handshake timeout is absolute: trickling bytes does not extend it', async () => {
  const c = await rawConnect(proxy.port);
  const started = Date.now();
  c.write([5]);
  // Keep sending a byte of a long (255-method) greeting every 100 ms; the deadline still hits at ~1.5 s.
  const trickle = setInterval(() => c.write([0]), 100);
  c.write([255]);
  try {
    await c.closed(5000);
  } finally {
    clearInterval(trickle);
  }
  assert.ok(Date.now() - started < 4000);
  assert.ok(proxy.logger.has('handshake not completed within 1500 ms'));
  await assertStillServing();
});

test('data sent right behind the request (one write) is delivered', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, ...connectReq(echo.port), ...Buffer.from('glued payload')]);
  assert.equal(hex(await c.read(2)), '0500');
  assert.equal((await c.read(10))[1], 0);
  assert.equal((await c.read(13)).toString(), 'glued payload');
  c.socket.destroy();
});

test('half-close: the client ends its side and still receives everything', async () => {
  const client = net.connect(proxy.port, '127.0.0.1');
  client.setNoDelay(true);
  const big = Buffer.alloc(3_000_000, 0x61);
  const chunks: Buffer[] = [];
  client.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((r) => client.on('end', () => r()));
  await new Promise((r) => client.once('connect', r));
  client.write(Buffer.from([...GREET, ...connectReq(echo.port)]));
  client.end(big); // FIN right after the payload
  await ended;
  const all = Buffer.concat(chunks);
  assert.equal(all.length, 2 + 10 + big.length);
  assert.ok(all.subarray(12).equals(big));
  client.destroy();
});

test('a target reset reaches the client as an error, not a clean end', async () => {
  const rst = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  await new Promise<void>((r) => rst.listen(0, '127.0.0.1', () => r()));
  const port = (rst.address() as net.AddressInfo).port;
  const client = net.connect(proxy.port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  client.write(Buffer.from([...GREET, ...connectReq(port), ...Buffer.from('x')]));
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    client.on('error', (e) => resolve(e));
    client.on('end', () => resolve(undefined));
    client.resume();
  });
  assert.equal(err?.code, 'ECONNRESET');
  rst.close();
});

test('session limit: the request over the limit gets X\'01\' and a log line', async () => {
  const p = await startProxy({ maxSessions: 1 });
  try {
    const first = await rawConnect(p.port);
    first.write([...GREET, ...connectReq(echo.port)]);
    assert.equal((await first.read(12))[3], 0);
    const second = await rawConnect(p.port);
    second.write([...GREET, ...connectReq(echo.port)]);
    assert.equal(hex(await second.closed()), '0500' + '05010001000000000000');
    assert.ok(p.logger.has('session limit (1) reached'));
    first.socket.destroy();
    await waitForClosed(p.server.registry, (s) => s.outcome === 'ok');
    await assertStillServing(p.port);
  } finally {
    await p.close();
  }
});

test('UDP association limit: X\'01\' beyond it', async () => {
  const p = await startProxy({ maxUdpAssociations: 1 });
  try {
    const a = await rawConnect(p.port);
    a.write([...GREET, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal((await a.read(12))[3], 0);
    const b = await rawConnect(p.port);
    b.write([...GREET, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal(hex(await b.closed()), '0500' + '05010001000000000000');
    assert.ok(p.logger.has('UDP association limit (1) reached'));
    a.socket.destroy();
  } finally {
    await p.close();
  }
});

test('idle timeout closes a silent relay', async () => {
  const p = await startProxy({ idleTimeoutMs: 300 });
  try {
    const c = await rawConnect(p.port);
    c.write([...GREET, ...connectReq(echo.port)]);
    assert.equal((await c.read(12))[3], 0);
    await c.closed(3000);
    const s = await waitForClosed(p.server.registry, (x) => x.command === 'connect');
    assert.match(s.outcome ?? '', /idle for 300 ms/);
  } finally {
    await p.close();
  }
});

test('idle timeout: traffic in either direction keeps a relay open past the limit', async () => {
  const p = await startProxy({ idleTimeoutMs: 300 });
  try {
    const c = await rawConnect(p.port);
    c.write([...GREET, ...connectReq(echo.port)]);
    assert.equal((await c.read(12))[3], 0);
    // 1.2 s of a byte every 100 ms (echoed back): four idle limits, never idle for one.
    for (let i = 0; i < 12; i++) {
      c.write(Buffer.from('.'));
      assert.equal((await c.read(1)).toString(), '.');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(c.socket.destroyed, false, 'still open while busy');
    assert.equal(p.server.registry.size, 1);
    await c.closed(3000); // and closed once quiet
  } finally {
    await p.close();
  }
});

test('UDP association ends after its idle limit', async () => {
  const p = await startProxy({ udpIdleTimeoutMs: 300 });
  try {
    const c = await rawConnect(p.port);
    c.write([...GREET, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal((await c.read(12))[3], 0);
    await c.closed(3000);
    const s = await waitForClosed(p.server.registry, (x) => x.command === 'udp-associate');
    assert.match(s.outcome ?? '', /UDP idle for 300 ms/);
  } finally {
    await p.close();
  }
});

test('every reply code from real causes: blocked → X\'02\', timeout → X\'06\', unreachable → X\'03\'', async () => {
  const failing = (err: Error): Dialer => ({ label: 'test', dial: () => Promise.reject(err) });
  const cases: [Router, string][] = [
    [{ decide: () => ({ action: 'block', route: 'rule 1 (port:9)' }) }, '0502'],
    [{ decide: () => ({ action: 'dial', dialer: failing(new ProxyError('CONNECT_TIMEOUT', 'timed out', Reply.TTL_EXPIRED)), route: 't' }) }, '0506'],
    [{ decide: () => ({ action: 'dial', dialer: failing(Object.assign(new Error('unreachable'), { code: 'ENETUNREACH' })), route: 't' }) }, '0503'],
    [{ decide: () => ({ action: 'dial', dialer: failing(Object.assign(new Error('no route'), { code: 'EHOSTUNREACH' })), route: 't' }) }, '0504'],
    [{ decide: () => ({ action: 'dial', dialer: new DirectDialer(), route: 'direct' }) }, '0500'],
  ];
  for (const [router, expected] of cases) {
    const p = await startProxy({}, router);
    try {
      const c = await rawConnect(p.port);
      c.write([...GREET, ...connectReq(echo.port)]);
      assert.equal(hex((await c.read(4)).subarray(2)), expected);
      c.socket.destroy();
    } finally {
      await p.close();
    }
  }
});

/**
 * A destination where a connect hangs, on loopback: a listener with backlog 0 that never accepts, its queue
 * filled, so Linux drops further SYNs. Held by a Python process (Node's listeners always accept).
 */
async function hangingDestination(): Promise<{ port: number; close(): void }> {
  const holder = spawn(PYTHON, ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)']);
  const port = Number(await new Promise<string>((r) => holder.stdout.once('data', (d: Buffer) => r(d.toString()))));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => undefined);
    fillers.push(f);
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close: () => {
      fillers.forEach((f) => f.destroy());
      holder.kill();
    },
  };
}

test('a client that leaves while its CONNECT is still dialing cancels the dial (the outbound socket goes at once)', async () => {
  const dest = await hangingDestination();
  const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  const p = await startProxy({ connectTimeoutMs: 10_000 });
  try {
    const before = sockets();
    const c = await rawConnect(p.port);
    c.write([...GREET, ...connectReq(dest.port)]);
    assert.equal(hex(await c.read(2)), '0500');
    await new Promise((r) => setTimeout(r, 200));
    // The test's client socket, the proxy's accepted socket and its outbound connect in progress.
    assert.equal(sockets(), before + 3);
    // Gone for good (RST): a FIN alone is a half-close, after which the client may still want the reply.
    c.socket.resetAndDestroy();
    const deadline = Date.now() + 2000;
    while (sockets() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sockets(), before, 'the dial was cancelled, not left to its 10 s connect timeout');
  } finally {
    await p.close();
    dest.close();
  }
});

test('connect timeout: a destination whose accept queue is full answers X\'06\'', async () => {
  const dest = await hangingDestination();
  const p = await startProxy({ connectTimeoutMs: 500 });
  try {
    const c = await rawConnect(p.port);
    c.write([...GREET, ...connectReq(dest.port)]);
    assert.equal(hex(await c.closed(5000)), '0500' + '05060001000000000000');
    assert.ok(p.logger.has('timed out after 500 ms'));
  } finally {
    await p.close();
    dest.close();
  }
});
