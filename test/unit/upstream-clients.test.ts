/** The upstream client handshakes against scripted upstreams: exact bytes, leftover data, timeouts, reply mapping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { endpoint } from '../../src/core/address';
import { ProxyError } from '../../src/core/errors';
import { ChainDialer } from '../../src/core/upstream/chain';
import { parseChain } from '../../src/core/upstream/url';
import { decodeConnectResponse, encodeConnectRequest, replyForHttpStatus } from '../../src/core/upstream/codecs';
import { decodeSocks4Reply, encodeSocks4Request } from '../../src/core/socks4/protocol';

/** A one-connection-at-a-time upstream: `script` gets a reader for what the client sent. */
async function scripted(script: (s: net.Socket, read: (n: number) => Promise<Buffer>, readUntil: (marker: string) => Promise<Buffer>) => Promise<void>): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let wake: (() => void) | undefined;
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      wake?.();
    });
    const until = async (done: () => number): Promise<Buffer> => {
      for (;;) {
        const n = done();
        if (n >= 0) {
          const out = buf.subarray(0, n);
          buf = buf.subarray(n);
          return out;
        }
        await new Promise<void>((r) => (wake = r));
      }
    };
    const read = (n: number): Promise<Buffer> => until(() => (buf.length >= n ? n : -1));
    const readUntil = (marker: string): Promise<Buffer> =>
      until(() => {
        const i = buf.indexOf(marker);
        return i < 0 ? -1 : i + marker.length;
      });
    void script(s, read, readUntil).catch(() => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function dialer(url: string, connectTimeoutMs = 3_000): ChainDialer {
  return new ChainDialer(parseChain([url]), { connectTimeoutMs });
}

function firstData(s: net.Socket): Promise<string> {
  // The dialer hands the socket over paused (the relay's pipe() resumes it).
  const got = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
  s.resume();
  return got;
}

const signal = (): AbortSignal => new AbortController().signal;

test('SOCKS4a: the name and user id go to the upstream; bytes glued to the reply are kept', async () => {
  let request: Buffer = Buffer.alloc(0);
  const up = await scripted(async (s, read, readUntil) => {
    const head = await read(8);
    const user = await readUntil('\0');
    const name = await readUntil('\0');
    request = Buffer.concat([head, user, name]);
    s.write(Buffer.concat([Buffer.from([0, 90, 0, 0, 0, 0, 0, 0]), Buffer.from('EXTRA')]));
  });
  try {
    const sock = await dialer(`socks4a://me@127.0.0.1:${up.port}`).dial(endpoint('name.example', 8080), { signal: signal() });
    assert.equal(await firstData(sock), 'EXTRA');
    sock.destroy();
    assert.deepEqual(request, encodeSocks4Request('connect', endpoint('name.example', 8080), 'me'));
    assert.deepEqual([...request.subarray(0, 8)], [4, 1, 0x1f, 0x90, 0, 0, 0, 1]);
    assert.equal(request.subarray(8).toString(), 'me\0name.example\0');
  } finally {
    await up.close();
  }
});

test('SOCKS4: reply 91 → X05, identd failures → auth failure, IPv6 → X08', async () => {
  let code = 91;
  const up = await scripted(async (s, read, readUntil) => {
    await read(8);
    await readUntil('\0');
    s.write(Buffer.from([0, code, 0, 0, 0, 0, 0, 0]));
  });
  try {
    const d = dialer(`socks4://127.0.0.1:${up.port}`);
    await assert.rejects(d.dial(endpoint('127.0.0.1', 80), { signal: signal() }), (e: unknown) => e instanceof ProxyError && e.reply === 0x05 && /rejected or failed/.test(e.message));
    code = 93;
    await assert.rejects(d.dial(endpoint('127.0.0.1', 80), { signal: signal() }), (e: unknown) => e instanceof ProxyError && e.code === 'UPSTREAM_AUTH_FAILED' && e.reply === 0x01);
    await assert.rejects(d.dial(endpoint('::1', 80), { signal: signal() }), (e: unknown) => e instanceof ProxyError && e.reply === 0x08);
  } finally {
    await up.close();
  }
});

test('SOCKS5: socks5h sends the name; data right behind the success reply is not lost', async () => {
  let request: Buffer = Buffer.alloc(0);
  const up = await scripted(async (s, read) => {
    assert.deepEqual([...(await read(3))], [5, 1, 0]);
    s.write(Buffer.from([5, 0]));
    request = await read(4 + 1 + 'svc.internal'.length + 2);
    s.write(Buffer.concat([Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38]), Buffer.from('HELLO')]));
  });
  try {
    const sock = await dialer(`socks5h://127.0.0.1:${up.port}`).dial(endpoint('svc.internal', 443), { signal: signal() });
    assert.equal(await firstData(sock), 'HELLO');
    sock.destroy();
    assert.equal(request.subarray(5, 5 + 12).toString(), 'svc.internal');
    assert.equal(request[3], 0x03);
  } finally {
    await up.close();
  }
});

test("SOCKS5: the upstream's own reply code passes through", async () => {
  const up = await scripted(async (s, read) => {
    await read(3);
    s.write(Buffer.from([5, 0]));
    await read(10);
    s.write(Buffer.from([5, 0x03, 0, 1, 0, 0, 0, 0, 0, 0]));
  });
  try {
    await assert.rejects(
      dialer(`socks5://127.0.0.1:${up.port}`).dial(endpoint('10.1.2.3', 80), { signal: signal() }),
      (e: unknown) => e instanceof ProxyError && e.code === 'UPSTREAM_FAILED' && e.reply === 0x03 && /0x03 \(network unreachable\)/.test(e.message),
    );
  } finally {
    await up.close();
  }
});

test('HTTP CONNECT: Basic credentials, authority form, tunnel bytes after the head are kept', async () => {
  let head = '';
  const up = await scripted(async (s, _read, readUntil) => {
    head = (await readUntil('\r\n\r\n')).toString();
    s.write('HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\nBANNER');
  });
  try {
    const sock = await dialer(`http://al%20ice:p%40ss@127.0.0.1:${up.port}`).dial(endpoint('2001:db8::1', 22), { signal: signal() });
    assert.equal(await firstData(sock), 'BANNER');
    sock.destroy();
    assert.match(head, /^CONNECT \[2001:db8::1\]:22 HTTP\/1\.1\r\nHost: \[2001:db8::1\]:22\r\n/);
    assert.ok(head.includes(`Proxy-Authorization: Basic ${Buffer.from('al ice:p@ss').toString('base64')}\r\n`));
  } finally {
    await up.close();
  }
});

test('the handshake is bounded by the connect timeout (X06); aborting stops it at once', async () => {
  const up = await scripted(async () => {
    await new Promise(() => undefined); // accept and say nothing
  });
  try {
    const started = Date.now();
    await assert.rejects(
      dialer(`socks5://127.0.0.1:${up.port}`, 300).dial(endpoint('127.0.0.1', 80), { signal: signal() }),
      (e: unknown) => e instanceof ProxyError && e.code === 'CONNECT_TIMEOUT' && e.reply === 0x06,
    );
    assert.ok(Date.now() - started < 2_000);
    const ctl = new AbortController();
    const pending = dialer(`http://127.0.0.1:${up.port}`, 10_000).dial(endpoint('example.org', 443), { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 50);
    await assert.rejects(pending, (e: unknown) => e instanceof ProxyError && e.message === 'aborted');
  } finally {
    await up.close();
  }
});

test('codecs: HTTP response heads and status mapping', () => {
  assert.equal(decodeConnectResponse(Buffer.from('HTTP/1.1 200 OK\r\n')), undefined);
  const r = decodeConnectResponse(Buffer.from('HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\nbody'));
  assert.equal(r?.value.status, 407);
  assert.equal(r?.value.headers['proxy-authenticate'], 'Basic');
  assert.equal(r?.length, 'HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n'.length);
  assert.throws(() => decodeConnectResponse(Buffer.from('SSH-2.0-OpenSSH\r\n')), /did not answer with HTTP/);
  assert.equal(replyForHttpStatus(403), 0x02);
  assert.equal(replyForHttpStatus(502), 0x05);
  assert.equal(replyForHttpStatus(504), 0x06);
  assert.equal(replyForHttpStatus(407), 0x01);
  assert.equal(encodeConnectRequest(endpoint('a.example', 443)).toString(), 'CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n');
  assert.equal(decodeSocks4Reply(Buffer.from([0, 90, 0, 80, 1, 2, 3])), undefined);
  assert.deepEqual(decodeSocks4Reply(Buffer.from([0, 90, 0, 80, 1, 2, 3, 4]))?.value, { code: 90, bound: { type: 'ipv4', host: '1.2.3.4', port: 80 } });
});

test("SOCKS4: an IPv4 destination 0.0.0.x (x≠0) is refused with X04 before anything is sent (it is the SOCKS4a marker)", async () => {
  let received = 0;
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => (received += d.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    for (const url of [`socks4://127.0.0.1:${port}`, `socks4a://me@127.0.0.1:${port}`]) {
      await assert.rejects(
        dialer(url).dial(endpoint('0.0.0.7', 80), { signal: signal() }),
        (e: unknown) => e instanceof ProxyError && e.code === 'BAD_ADDRESS' && e.reply === 0x04 && /0\.0\.0\.x/.test(e.message),
      );
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(received, 0, 'no request reached the upstream');
  } finally {
    server.close();
  }
});
