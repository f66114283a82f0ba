/**
 * The relay's read path (src/core/read-buffers.ts) on the Node that runs the tests: `.ci/run` runs this file
 * under Node 20 (the machine's), 22 (VS Code's Electron) and 24 (the VS Code server), see
 * scripts/node-versions.sh. The switch to `onread` mode sets net.Socket internals found by their symbols'
 * names; a Node that changes them must fail here, loudly, rather than relay corrupted data or silently lose
 * the buffer mode.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import { pattern, sha256 } from '../helpers/http-tools';
import { startEchoServer, startProxy } from '../helpers/servers';
import { describeReadPath, readIntoBuffers, readPathMode, useReadBuffers } from '../../src/core/read-buffers';

const MB = 1024 * 1024;
const open: net.Socket[] = [];
after(() => open.forEach((s) => s.destroy()));

/** A connected loopback pair: the socket a server accepted and the one that connected to it. */
async function socketPair(): Promise<{ accepted: net.Socket; connected: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepting = new Promise<net.Socket>((r) => server.once('connection', r));
  const connected = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => connected.once('connect', resolve).once('error', reject));
  const accepted = await accepting;
  server.close();
  open.push(accepted, connected);
  return { accepted, connected };
}

/**
 * Switches `reader` to buffer mode (asserting that it switches), sends `data` from `writer`, and resolves with
 * the hash and length of what the callback got; every 16th read returns false (backpressure) and reading is
 * resumed on the next turn, as the relay does when a write drains.
 */
function receiveInBuffers(reader: net.Socket, writer: net.Socket, data: Buffer): Promise<{ hash: string; bytes: number; reads: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let reads = 0;
    let last: Buffer | undefined;
    const next = (): Buffer => (last = Buffer.alloc(32 * 1024));
    const switched = readIntoBuffers(
      reader,
      (n, buf) => {
        if (buf !== last) reject(new Error('the callback got a buffer other than the one last handed out'));
        hash.update(buf.subarray(0, n));
        bytes += n;
        if (++reads % 16 !== 0) return true;
        setImmediate(() => reader.resume());
        return false;
      },
      next,
    );
    if (!switched) return reject(new Error(`readIntoBuffers refused a plain TCP socket on Node ${process.version}`));
    reader.on('data', () => reject(new Error("bytes came as 'data' events in buffer mode")));
    reader.on('end', () => resolve({ hash: hash.digest('hex'), bytes, reads }));
    reader.on('error', reject);
    reader.resume();
    writer.end(data);
  });
}

/** Where a handle's useUserBuffer() is defined (a prototype of the handle), to fake a Node that changed it. */
function useUserBufferOwner(socket: net.Socket): object {
  let o: object | null = (socket as unknown as { _handle: object })._handle;
  while (o && !Object.prototype.hasOwnProperty.call(o, 'useUserBuffer')) o = Object.getPrototypeOf(o) as object | null;
  assert.ok(o, 'the TCP handle has useUserBuffer()');
  return o;
}

test(`this Node (${process.version}) passes the self-check: sessions read into the relay's own buffers`, async () => {
  const mode = await readPathMode();
  // Node 20, 22 and 24 (the lines VS Code and the CLI run on) all must: a Node that changed the net.Socket
  // internals the switch relies on lands here with the reason.
  assert.deepEqual(mode, { mode: 'buffers' }, `Node ${process.version}: ${mode.reason}`);
  assert.equal(describeReadPath(mode), `read path: own buffers (onread), Node ${process.version}`);
  assert.equal(await readPathMode(), mode, 'checked once per process');
});

test('a plain TCP socket pair: the accepted and the connecting socket both switch, and 4 MB arrive intact with backpressure', async () => {
  for (const side of ['accepted', 'connected'] as const) {
    const pair = await socketPair();
    const reader = pair[side];
    const writer = side === 'accepted' ? pair.connected : pair.accepted;
    const data = pattern(4 * MB, side === 'accepted' ? 5 : 6);
    const got = await receiveInBuffers(reader, writer, data);
    assert.equal(got.bytes, data.length, side);
    assert.equal(got.hash, sha256(data), side);
    assert.ok(got.reads >= data.length / (32 * 1024), `${side}: reads of at most the buffer's size (${got.reads})`);
  }
});

test('sockets the switch does not know stay in stream mode, unchanged: TLS, a socket already in onread mode, a handle without useUserBuffer', async () => {
  const refuse = (s: net.Socket): boolean => readIntoBuffers(s, () => true, () => Buffer.alloc(1024));

  const tlsPair = await socketPair();
  const tlsSocket = new tls.TLSSocket(tlsPair.connected);
  assert.equal(refuse(tlsSocket), false, 'TLS');
  tlsSocket.destroy();

  const server = net.createServer((s) => s.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const viaOnread: Buffer[] = [];
  const onreadSocket = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    onread: { buffer: Buffer.alloc(1024), callback: (n, buf) => {
        viaOnread.push(Buffer.from(buf.subarray(0, n)));
        return true;
      },
    },
  });
  open.push(onreadSocket);
  assert.equal(refuse(onreadSocket), false, 'a socket whose kBuffer fields are already set (its own onread)');
  await new Promise((r) => onreadSocket.once('end', r).resume());
  assert.equal(Buffer.concat(viaOnread).toString(), 'hello', 'its own onread still gets the bytes');
  server.close();

  const { accepted, connected } = await socketPair();
  const handle = (accepted as unknown as { _handle: Record<string, unknown> })._handle;
  handle.useUserBuffer = undefined; // this handle only
  assert.equal(refuse(accepted), false, 'a handle without useUserBuffer');
  const chunks: Buffer[] = [];
  accepted.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => accepted.once('end', r));
  connected.end('still in stream mode');
  await ended;
  assert.equal(Buffer.concat(chunks).toString(), 'still in stream mode');
});

test('a Node whose useUserBuffer() ignores the buffer fails the self-check: every socket then relays in stream mode', async (t) => {
  const probe = await socketPair();
  const owner = useUserBufferOwner(probe.accepted) as { useUserBuffer: unknown };
  const real = owner.useUserBuffer;
  // Node would then read into buffers of its own and call back with ours, unfilled: corrupted data.
  owner.useUserBuffer = function useUserBuffer() {};
  let mode;
  try {
    mode = await readPathMode(true);
  } finally {
    owner.useUserBuffer = real;
  }
  t.after(() => readPathMode(true));
  assert.equal(mode.mode, 'stream');
  assert.match(mode.reason ?? '', /^self-check failed: /);
  assert.match(describeReadPath(mode), /^read path: stream mode \(self-check failed: .*\), Node v\d+/);

  const { accepted } = await socketPair();
  assert.equal(readIntoBuffers(accepted, () => true, () => Buffer.alloc(1024)), false, 'refused after a failed self-check');

  assert.deepEqual(await readPathMode(true), { mode: 'buffers' }, 'the real useUserBuffer passes again');
  const again = await socketPair();
  const data = pattern(MB, 9);
  assert.equal((await receiveInBuffers(again.accepted, again.connected, data)).hash, sha256(data));
});

for (const buffers of [true, false]) {
  test(`the proxy logs its read path when it listens (${buffers ? 'own buffers' : 'turned off: stream mode'}) and relays 8 MB intact`, async () => {
    useReadBuffers(buffers);
    const proxy = await startProxy();
    const echo = await startEchoServer();
    try {
      const line = buffers ? `info read path: own buffers (onread), Node ${process.version}` : `info read path: stream mode (read buffers turned off), Node ${process.version}`;
      assert.ok(proxy.logger.lines.includes(line), proxy.logger.lines.join('\n'));
      assert.equal(proxy.logger.lines.filter((l) => l.includes('read path:')).length, 1, 'once');

      const s = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
      open.push(s);
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]));
      const data = pattern(8 * MB, buffers ? 21 : 22);
      const received = await new Promise<{ hash: string; bytes: number }>((resolve, reject) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let reply: Buffer | undefined = Buffer.alloc(0);
        s.on('data', (c: Buffer) => {
          if (reply) {
            reply = Buffer.concat([reply, c]);
            if (reply.length < 12) return;
            if (reply[1] !== 0 || reply[3] !== 0) return reject(new Error(`SOCKS5 refused: ${reply.toString('hex')}`));
            c = reply.subarray(12);
            reply = undefined;
            s.end(data);
          }
          hash.update(c);
          bytes += c.length;
        });
        s.on('end', () => resolve({ hash: hash.digest('hex'), bytes }));
        s.on('error', reject);
      });
      assert.equal(received.bytes, data.length);
      assert.equal(received.hash, sha256(data));
    } finally {
      useReadBuffers(true);
      await proxy.close();
      await echo.close();
    }
  });
}
