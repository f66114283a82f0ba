/** The HTTP front end fed raw bytes: malformed and hostile requests get the right status and the listener keeps serving. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HEADER_BYTES } from '../../src/core/http/handler';
import { Origin, startOrigin } from '../helpers/http-tools';
import { startEchoServer, startProxy } from '../helpers/servers';
import { rawConnect } from '../helpers/socks';

/** Sends raw bytes and returns everything received until the proxy closes (or `untilText` shows up). */
async function exchange(port: number, bytes: string | Buffer, untilText?: string, timeoutMs = 3_000): Promise<string> {
  const c = await rawConnect(port);
  c.write(Buffer.from(bytes));
  if (untilText === undefined) return (await c.closed(timeoutMs)).toString('latin1');
  let got = '';
  const until = Date.now() + timeoutMs;
  while (!got.includes(untilText)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${JSON.stringify(untilText)}; got ${JSON.stringify(got)}`);
    got += (await c.read(1, until - Date.now())).toString('latin1');
  }
  c.socket.destroy();
  return got;
}

function statusOf(response: string): number {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(response);
  return m ? Number(m[1]) : 0;
}

describe('HTTP proxy: malformed input', () => {
  let origin: Origin;
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  let proxy: Awaited<ReturnType<typeof startProxy>>;

  const stillServes = async (): Promise<void> => {
    const r = await exchange(proxy.port, `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`, '\r\n\r\nhello');
    assert.equal(statusOf(r), 200);
  };

  before(async () => {
    origin = await startOrigin();
    echo = await startEchoServer();
    proxy = await startProxy({ handshakeTimeoutMs: 400, idleTimeoutMs: 600 });
  });

  after(async () => {
    await proxy.close();
    await origin.close();
    await echo.close();
  });

  test('bad request line, TLS sent to the plain port, bad CONNECT target and https:// targets get 400', async () => {
    assert.equal(statusOf(await exchange(proxy.port, 'GARBAGE\r\n\r\n')), 400);
    assert.ok(proxy.logger.has('malformed HTTP request, answered 400 Bad Request'));
    assert.equal(statusOf(await exchange(proxy.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]))), 400);
    assert.equal(statusOf(await exchange(proxy.port, 'CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n')), 400);
    assert.ok(proxy.logger.has('CONNECT target "nohostport" is not host:port'));
    const https = await exchange(proxy.port, 'GET https://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(https), 400);
    assert.match(https, /need CONNECT/);
    await stillServes();
  });

  test('HTTP/1.1 without Host, and origin-form requests (not proxy requests), get 400; HTTP/1.0 without Host is fine', async () => {
    const noHost = await exchange(proxy.port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(noHost), 400);
    assert.ok(proxy.logger.has('HTTP/1.1 request without Host'));
    const absNoHost = await exchange(proxy.port, `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(absNoHost), 400);
    const originForm = await exchange(proxy.port, 'GET /index.html HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(originForm), 400);
    assert.match(originForm, /not an absolute http:\/\/ URI/);
    const http10 = await exchange(proxy.port, `GET http://127.0.0.1:${origin.port}/hello HTTP/1.0\r\n\r\n`);
    assert.match(http10, /^HTTP\/1\.1 200 [^]*\r\n\r\nhello$/);
    await stillServes();
  });

  test(`headers over ${MAX_HEADER_BYTES} bytes get 431`, async () => {
    const big = `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES + 100)}\r\n\r\n`;
    const r = await exchange(proxy.port, big);
    assert.equal(statusOf(r), 431);
    // Just under the limit is accepted (a CONNECT head, so the origin's own smaller limit does not matter).
    const ok = await exchange(proxy.port, `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES - 1000)}\r\n\r\n`, '\r\n\r\n');
    assert.equal(statusOf(ok), 200);
    await stillServes();
  });

  test('slow headers are cut off by the handshake timeout, also for the next request on a kept-alive connection', async () => {
    const c = await rawConnect(proxy.port);
    const started = Date.now();
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.write(Buffer.from('X'));
    }, 50);
    try {
      c.write(Buffer.from('GET http://127.0.0.1/ HTTP/1.1\r\nX-Slow: '));
      await c.closed(3_000);
    } finally {
      clearInterval(trickle);
    }
    assert.ok(Date.now() - started < 2_000);
    assert.ok(proxy.logger.has('handshake not completed within 400 ms'));

    const k = await rawConnect(proxy.port);
    k.write(Buffer.from(`GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: x\r\n\r\n`));
    let got = '';
    while (!got.endsWith('hello')) got += (await k.read(1)).toString('latin1');
    const second = Date.now();
    const trickle2 = setInterval(() => {
      if (!k.socket.destroyed) k.write(Buffer.from('Y'));
    }, 50);
    try {
      k.write(Buffer.from('GET http://127.0.0.1/ HTTP/1.1\r\nX-Slow: '));
      await k.closed(5_000);
    } finally {
      clearInterval(trickle2);
    }
    // keep-alive allowance (the 600 ms idle timeout) plus the 400 ms handshake timeout
    assert.ok(Date.now() - second < 3_000);
  });

  test('a request split at every byte, and two pipelined requests in one write, are answered in order', async () => {
    const c = await rawConnect(proxy.port);
    c.socket.setNoDelay(true);
    const req = `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    for (const ch of req) {
      c.write(Buffer.from(ch));
      await new Promise((r) => setTimeout(r, 1));
    }
    let got = '';
    while (!got.endsWith('hello')) got += (await c.read(1)).toString('latin1');
    assert.equal(statusOf(got), 200);
    c.socket.destroy();

    const both = await exchange(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: a\r\n\r\nGET http://127.0.0.1:${origin.port}/fixed?n=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
    );
    const parts = both.split(/(?=HTTP\/1\.1 )/);
    assert.equal(parts.length, 2);
    assert.ok(parts[0].endsWith('hello'));
    assert.match(parts[1], /content-length: 3\r\n/i);
  });

  test('a client that half-closes right after its request (printf | nc) still gets the whole answer', async () => {
    const c = await rawConnect(proxy.port);
    c.socket.end(`GET http://127.0.0.1:${origin.port}/big?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const r = await c.closed();
    assert.equal(statusOf(r.toString('latin1')), 200);
    assert.ok(r.length > 100_000);
  });

  test('bytes sent right behind a CONNECT head reach the target first', async () => {
    const r = await exchange(proxy.port, `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\nglued bytes`, 'glued bytes');
    assert.equal(r, 'HTTP/1.1 200 Connection established\r\n\r\nglued bytes');
  });

  test('Expect: 100-continue: refused before the body when unauthorized, 100 then the answer when allowed', async () => {
    const auth = await startProxy({ users: [{ username: 'u', password: 'p' }] });
    try {
      const denied = await exchange(
        auth.port,
        `POST http://127.0.0.1:${origin.port}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
      );
      assert.equal(statusOf(denied), 407);
      assert.match(denied, /Proxy-Authenticate: Basic realm="SOCKS Relay"\r\n/);
      assert.match(denied, /Connection: close\r\n/);
      assert.doesNotMatch(denied, /100 Continue/);
      const c = await rawConnect(auth.port);
      c.write(Buffer.from(`POST http://127.0.0.1:${origin.port}/echo HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${Buffer.from('u:p').toString('base64')}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`));
      let got = '';
      while (!got.includes('100 Continue\r\n\r\n')) got += (await c.read(1)).toString('latin1');
      c.write(Buffer.from('12345'));
      got += (await c.closed()).toString('latin1');
      assert.match(got, /HTTP\/1\.1 200 OK[^]*12345/);
    } finally {
      await auth.close();
    }
  });

  test('over the session limit: 503; HTTP switched off: closed without an answer', async () => {
    const full = await startProxy({ maxSessions: 0 });
    try {
      const r = await exchange(full.port, `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(statusOf(r), 503);
    } finally {
      await full.close();
    }
    const off = await startProxy({ http: false });
    try {
      const r = await exchange(off.port, `GET http://127.0.0.1:${origin.port}/hello HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(r, '');
      assert.ok(off.logger.has('the HTTP proxy is disabled'));
    } finally {
      await off.close();
    }
  });
});
