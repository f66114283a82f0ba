/**
 * Transports: the server serves any duplex stream handed to it with the peer's addresses, not only the
 * sockets of its own listener (the coming egress tunnel's streams are another transport). A stream pair
 * in memory stands in for one: a SOCKS5 CONNECT and an HTTP CONNECT through it reach a real echo server,
 * half-close and all, and the session carries the peer address the transport gave.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { ProxyServer } from '../../src/core/server';
import { MemoryLogger, Running, startEchoServer, waitForClosed } from '../helpers/servers';

/** Two ends of an in-memory byte stream: what one writes the other reads; end() is a half-close. */
function streamPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        other().push(chunk);
        cb();
      },
      final(cb) {
        other().push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = other();
        if (!peer.destroyed) peer.destroy();
        cb(err);
      },
    });
  ends.push(make(() => ends[1]), make(() => ends[0]));
  return [ends[0], ends[1]];
}

/** Reads from `stream` until `n` bytes or its end. */
function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      got = Buffer.concat([got, c]);
      if (got.length >= n) done();
    };
    const done = (): void => {
      stream.off('data', onData);
      stream.off('end', done);
      stream.pause();
      resolve(got);
    };
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', reject);
    stream.resume();
  });
}

const PEER = { remoteAddress: '192.0.2.7', remotePort: 4242, localAddress: '127.0.0.1', localPort: 1080 };

let echo: Running;
let server: ProxyServer;

before(async () => {
  echo = await startEchoServer();
  // Not listening: the streams come only from the test's transport.
  server = new ProxyServer({ host: '127.0.0.1', port: 0 }, new MemoryLogger());
});

after(async () => {
  await server.close();
  await echo.close();
});

test('a SOCKS5 CONNECT over an in-memory stream pair reaches the target, with the half-close passed on', async () => {
  const [client, proxySide] = streamPair();
  server.serve(proxySide, PEER);
  client.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]));
  const replies = await readBytes(client, 12);
  assert.deepEqual([...replies.subarray(0, 4)], [5, 0, 5, 0], 'method 0x00, reply SUCCEEDED');
  client.end('ping over a stream pair');
  const echoed = await readBytes(client, Number.MAX_SAFE_INTEGER);
  assert.equal(echoed.toString(), 'ping over a stream pair');
  const session = await waitForClosed(server.registry, (s) => s.destination === `127.0.0.1:${echo.port}` && s.protocol === 'socks5');
  assert.equal(session.client, '192.0.2.7:4242');
  assert.equal(session.outcome, 'ok');
});

test('an HTTP CONNECT over an in-memory stream pair reaches the target', async () => {
  const [client, proxySide] = streamPair();
  server.serve(proxySide, PEER);
  client.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
  const head = (await readBytes(client, 39)).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 200 Connection established\r\n\r\n/);
  client.end('hello through CONNECT');
  const echoed = await readBytes(client, Number.MAX_SAFE_INTEGER);
  assert.equal(echoed.toString(), 'hello through CONNECT');
});

test('an absolute-URI request over a stream pair is answered, and a refused one gets its HTTP status', async () => {
  const [client, proxySide] = streamPair();
  server.serve(proxySide, PEER);
  // Port 1 on loopback refuses: a 502 from the pipeline, rendered by the HTTP front end.
  client.end('GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n');
  const answer = (await readBytes(client, Number.MAX_SAFE_INTEGER)).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway/);
});

test('close() ends the streams a transport handed over, like its own sockets', async () => {
  const [client, proxySide] = streamPair();
  server.serve(proxySide, PEER);
  client.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]));
  await readBytes(client, 12);
  const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await server.close();
  await gone;
  await waitForClosed(server.registry, (s) => s.outcome === 'proxy stopped');
  assert.equal([...server.registry.sessions()].length, 0);
});
