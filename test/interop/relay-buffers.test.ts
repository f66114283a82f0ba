/**
 * The relay's read buffers (src/core/read-buffers.ts), and the stream mode it falls back to: bulk data must be
 * delivered byte for byte, in both directions, with slow readers (reading stopped while a write still
 * points into a buffer), with both directions at once, and to a real client that throttles itself; small
 * traffic must not take large buffers, and every large buffer goes back when the sessions end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { Running, serveTcp, startEchoServer, startProxy } from '../helpers/servers';
import { cleanEnv, pattern, sha256 } from '../helpers/http-tools';
import { MAX_OWN, ownBuffersInUse, setMaxOwnBuffers, useReadBuffers } from '../../src/core/read-buffers';
import type { ProxyServer } from '../../src/core/server';

let proxy: Running & { server: ProxyServer };
let echo: Running;
const MB = 1024 * 1024;

/** A target that hashes what it receives and answers with the hash and the byte count when the client ends. */
async function startHashSink(): Promise<Running> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    s.on('end', () => s.end(`${hash.digest('hex')} ${bytes}`));
    s.on('error', () => undefined);
  });
  return serveTcp(server);
}

/** A target that sends `data` and ends, recording whether its writes ever had to wait (the proxy stopped reading). */
async function startSource(data: Buffer): Promise<Running & { backpressure: number }> {
  const state = { backpressure: 0 };
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    let offset = 0;
    const pump = (): void => {
      while (offset < data.length) {
        const chunk = data.subarray(offset, offset + 256 * 1024);
        offset += chunk.length;
        if (!s.write(chunk)) {
          state.backpressure++;
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const running = await serveTcp(server);
  return {
    ...running,
    get backpressure() {
      return state.backpressure;
    },
  };
}

/**
 * Opens a tunnel through the proxy: writes `request`, reads until `replyLength(received)` knows how long the
 * reply is, checks it with `ok`, and resolves with the socket, paused, anything after the reply unshifted.
 */
function openTunnel(request: Buffer | string, replyLength: (got: Buffer) => number, ok: (reply: Buffer) => boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    s.once('error', reject);
    s.on('connect', () => s.write(request));
    let got = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      got = Buffer.concat([got, c]);
      const n = replyLength(got);
      if (n < 0) return;
      s.off('data', onData);
      s.pause();
      if (!ok(got.subarray(0, n))) return reject(new Error(`tunnel refused: ${got.toString('latin1')}`));
      if (got.length > n) s.unshift(got.subarray(n));
      s.off('error', reject);
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** SOCKS5 CONNECT to 127.0.0.1:port (no auth; a 10-byte IPv4 reply). */
function socksConnect(port: number): Promise<net.Socket> {
  const request = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
  return openTunnel(request, (got) => (got.length >= 12 ? 12 : -1), (reply) => reply[1] === 0 && reply[3] === 0);
}

/** HTTP CONNECT to 127.0.0.1:port on the same proxy port. */
function httpConnect(port: number): Promise<net.Socket> {
  const request = `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  const headEnd = (got: Buffer): number => {
    const i = got.indexOf('\r\n\r\n');
    return i < 0 ? -1 : i + 4;
  };
  return openTunnel(request, headEnd, (reply) => /^HTTP\/1\.1 200/.test(reply.toString('latin1')));
}

/**
 * Reads a socket to its end. `stall` pauses reading each time another `every` bytes have come, until
 * `until()` is true (checked every 10 ms) or `maxMs` has passed.
 */
function readAll(s: Readable, stall?: { every: number; until?: () => boolean; maxMs: number }): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let nextStall = stall?.every ?? Infinity;
    s.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      if (stall && bytes >= nextStall) {
        nextStall += stall.every;
        s.pause();
        const until = Date.now() + stall.maxMs;
        const check = (): void => {
          if (Date.now() >= until || stall.until?.()) s.resume();
          else setTimeout(check, 10);
        };
        setTimeout(check, 10);
      }
    });
    s.on('end', () => resolve({ hash: hash.digest('hex'), bytes }));
    s.on('error', reject);
    s.resume();
  });
}

/** Writes all of `data` honouring backpressure, then half-closes. */
function writeAll(s: net.Socket, data: Buffer): void {
  let offset = 0;
  const pump = (): void => {
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + 100_000);
      offset += chunk.length;
      if (!s.write(chunk)) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

/** Sends `data` through the proxy to a hash sink (see startHashSink), half-closes, and resolves with its answer. */
async function upload(sinkPort: number, data: Buffer): Promise<string> {
  const s = await socksConnect(sinkPort);
  return new Promise<string>((resolve, reject) => {
    let answer = '';
    s.on('data', (c: Buffer) => (answer += c.toString()));
    s.on('end', () => resolve(answer));
    s.on('error', reject);
    s.resume();
    writeAll(s, data);
  });
}

/** The largest number of large buffers in use while `work` runs (sampled), and whether the bound held. */
async function sampled<T>(work: Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = ownBuffersInUse();
  const timer = setInterval(() => (peak = Math.max(peak, ownBuffersInUse())), 2);
  try {
    return { result: await work, peak };
  } finally {
    clearInterval(timer);
  }
}

async function allReturned(): Promise<void> {
  const deadline = Date.now() + 3000;
  while (ownBuffersInUse() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ownBuffersInUse(), 0, 'every large buffer is back once the sessions have ended');
}

before(async () => {
  proxy = await startProxy();
  echo = await startEchoServer();
});
after(async () => {
  await proxy.close();
  await echo.close();
});

// Every test runs twice: with read buffers (what Node 20 and VS Code's Node get) and in stream mode, the
// fallback for TLS sockets and for a Node whose net.Socket lacks the onread fields.
for (const buffers of [true, false]) {
  describe(buffers ? 'read buffers' : 'stream mode (fallback)', () => {
    before(() => useReadBuffers(buffers));
    after(() => useReadBuffers(true));

    test('upload 24 MB: delivered byte for byte', async () => {
      const sink = await startHashSink();
      try {
        const data = pattern(24 * MB, 7);
        const { result, peak } = await sampled(upload(sink.port, data));
        assert.equal(result, `${sha256(data)} ${data.length}`);
        assert.ok(buffers ? peak >= 1 : peak === 0, `a bulk upload reads into a large buffer only in buffer mode (peak ${peak})`);
        assert.ok(peak <= MAX_OWN);
      } finally {
        await sink.close();
      }
      await allReturned();
    });

    test('download 24 MB to a reader that stalls: the proxy stops reading and loses nothing', async () => {
      const data = pattern(24 * MB, 11);
      const source = await startSource(data);
      try {
        const s = await socksConnect(source.port);
        // The client stops reading until the source feels it: its receive buffer fills, the proxy's write to it
        // stays pending, the proxy stops reading from the target, and the target's writes have to wait.
        const { result, peak } = await sampled(readAll(s, { every: 2 * MB, until: () => source.backpressure > 0, maxMs: 5000 }));
        s.destroy();
        assert.equal(result.bytes, data.length);
        assert.equal(result.hash, sha256(data));
        assert.ok(buffers ? peak >= 1 : peak === 0, `a bulk download reads into a large buffer only in buffer mode (peak ${peak})`);
        assert.ok(source.backpressure > 0, 'the proxy stopped reading from the target while the client stalled');
      } finally {
        await source.close();
      }
      await allReturned();
    });

    for (const [how, open] of [
      ['SOCKS5', socksConnect],
      ['HTTP CONNECT on the same port', httpConnect],
    ] as const) {
      test(`${how}: 16 MB both ways at once through an echo target, with the client stalling now and then`, async () => {
        const data = pattern(16 * MB, 3);
        const s = await open(echo.port);
        const reading = readAll(s, { every: 4 * MB, maxMs: 100 });
        writeAll(s, data);
        const { result, peak } = await sampled(reading);
        assert.equal(result.bytes, data.length);
        assert.equal(result.hash, sha256(data));
        assert.ok((buffers ? peak >= 1 : peak === 0) && peak <= MAX_OWN);
        s.destroy();
        await allReturned();
      });
    }

    test('eight bulk sessions at once: each stream intact, the large buffers bounded and all returned', async () => {
      const streams = Array.from({ length: 8 }, (_, i) => pattern(3 * MB, 100 + i));
      const sink = await startHashSink();
      try {
        const { result, peak } = await sampled(Promise.all(streams.map((data) => upload(sink.port, data))));
        result.forEach((answer, i) => assert.equal(answer, `${sha256(streams[i])} ${streams[i].length}`));
        assert.ok(peak <= MAX_OWN, `at most ${MAX_OWN} large buffers (peak ${peak})`);
      } finally {
        await sink.close();
      }
      await allReturned();
    });

    test('an exhausted pool (bound lowered to 2): six bulk streams at once stay intact, the rest read through the shared buffer', async () => {
      setMaxOwnBuffers(2);
      const streams = Array.from({ length: 6 }, (_, i) => pattern(4 * MB, 200 + i));
      const sink = await startHashSink();
      try {
        const { result, peak } = await sampled(Promise.all(streams.map((data) => upload(sink.port, data))));
        result.forEach((answer, i) => assert.equal(answer, `${sha256(streams[i])} ${streams[i].length}`));
        assert.ok(buffers ? peak === 2 : peak === 0, `the bound was reached and never passed (peak ${peak})`);
      } finally {
        setMaxOwnBuffers();
        await sink.close();
      }
      await allReturned();
    });

    test('small traffic (40 interactive sessions) takes no large buffer', async () => {
      const sockets = await Promise.all(Array.from({ length: 40 }, () => socksConnect(echo.port)));
      try {
        for (const [i, s] of sockets.entries()) {
          const line = `line ${i} `.repeat(20);
          const back = new Promise<string>((resolve) => {
            let got = '';
            s.on('data', (c: Buffer) => {
              got += c.toString();
              if (got.length >= line.length) resolve(got);
            });
          });
          s.resume();
          s.write(line);
          assert.equal(await back, line);
        }
        assert.equal(ownBuffersInUse(), 0, 'interactive sessions read through the shared buffer');
      } finally {
        sockets.forEach((s) => s.destroy());
      }
    });

    test('curl downloads 8 MB through --socks5 into a slow pipe, byte for byte (a real client under backpressure)', async () => {
      const data = pattern(8 * MB, 5);
      const web = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-length': data.length });
        res.end(data);
      });
      await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
      try {
        const port = (web.address() as net.AddressInfo).port;
        // curl's --limit-rate is not honoured by Debian's curl 7.88 here, so the pipe is what throttles: while
        // this test stops reading curl's stdout, curl blocks writing it and stops reading the proxy.
        const curl = spawn('curl', ['-sS', '--max-time', '30', '--socks5', `127.0.0.1:${proxy.port}`, `http://127.0.0.1:${port}/big`], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        curl.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const exited = new Promise<number | null>((r) => curl.on('close', (code) => r(code)));
        const started = Date.now();
        const result = await readAll(curl.stdout, { every: MB, maxMs: 150 });
        assert.equal(await exited, 0, stderr);
        assert.equal(result.bytes, data.length);
        assert.equal(result.hash, sha256(data));
        assert.ok(Date.now() - started >= 7 * 150, 'the reader stalled seven times or more');
      } finally {
        web.closeAllConnections();
        await new Promise<void>((r) => web.close(() => r()));
      }
      await allReturned();
    });
  });
}
