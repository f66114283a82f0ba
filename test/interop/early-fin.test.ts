/**
 * Found by the live fuzz: a client that sends its request, data and FIN in one go (the request and the end
 * arrive before the proxy has connected). The 'end' was emitted while the handler had paused the socket,
 * before the relay listened for it: without data the session stayed open until the idle timeout with
 * the target connection held (the half-close never reached it); with data, the relay's unshift threw
 * ERR_STREAM_UNSHIFT_AFTER_END_EVENT and the data was lost. Either way the bytes and the end must go through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Running, startEchoServer, startProxy, waitForClosed } from '../helpers/servers';
import type { ProxyServer } from '../../src/core/server';

let proxy: Running & { server: ProxyServer };
let echo: Running;

before(async () => {
  proxy = await startProxy();
  echo = await startEchoServer();
});
after(async () => {
  await proxy.close();
  await echo.close();
});

/** Writes everything and ends at once; resolves with all the client received before the proxy closed. */
function sendAndEnd(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the proxy did not close within 3 s; received ${JSON.stringify(Buffer.concat(got).toString('latin1'))}`));
    }, 3_000);
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    s.on('connect', () => s.end(bytes));
  });
}

const p = (): number[] => [echo.port >> 8, echo.port & 0xff];
/** Each front end: its request, how long its success reply is in what the client got, and a check of that reply. */
const cases: [string, () => Buffer, (got: Buffer) => number][] = [
  ['SOCKS5 CONNECT', () => Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, ...p()]), (got) => (assert.equal(got.subarray(0, 4).toString('hex'), '05000500'), 12)],
  ['SOCKS4 CONNECT', () => Buffer.from([4, 1, ...p(), 127, 0, 0, 1, 0]), (got) => (assert.equal(got[1], 90), 8)],
  [
    'HTTP CONNECT',
    () => Buffer.from(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`),
    (got) => (assert.match(got.toString('latin1'), /^HTTP\/1\.1 200 /), got.indexOf('\r\n\r\n') + 4),
  ],
];

for (const [name, request, replyLength] of cases) {
  for (const payload of ['', 'glued to the request']) {
    test(`${name}: request${payload ? ', data' : ''} and FIN in one write → ${payload ? 'the data is echoed and ' : ''}both sides close`, async () => {
      const before = proxy.server.registry.recentlyClosed().length;
      const got = await sendAndEnd(Buffer.concat([request(), Buffer.from(payload)]));
      assert.equal(got.subarray(replyLength(got)).toString('latin1'), payload);
      const s = await waitForClosed(proxy.server.registry, (x) => x.id > before && x.destination === `127.0.0.1:${echo.port}`);
      assert.equal(s.outcome, 'ok');
    });
  }
}
