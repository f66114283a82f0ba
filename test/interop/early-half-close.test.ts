/**
 * A client that sends its request, maybe data, and its FIN before the proxy has dialled (printf … | nc -N)
 * must get its bytes and its EOF delivered, in order, once the outbound side is up; a dial that fails must
 * still answer with the refusal. Every front end (SOCKS5 with and without RFC 1929, SOCKS4, SOCKS4a, HTTP
 * CONNECT, HTTP forward), the FIN in the same write as the request and after it, on every kind of route:
 * direct, direct with a slow dial (the FIN surely lands mid-dial), through a SOCKS5 upstream and through a
 * chain (SOCKS5 then HTTP CONNECT). The target answers only after it has seen EOF, so a lost FIN hangs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { Endpoint } from '../../src/core/address';
import type { Dialer, DialOptions, RouteDecision, Router } from '../../src/core/dialer';
import { DirectDialer } from '../../src/core/direct';
import { buildRouter } from '../../src/core/routing';
import { deadPort, MemoryLogger, Running, serveTcp, startHttpServer, startProxy } from '../helpers/servers';
import type { ProxyServer } from '../../src/core/server';

const USER = { username: 'early', password: 'bird' };
const DATA = 'DATA-' + 'x'.repeat(3000) + '-END';
const BANNER = 'hello from a server that speaks first and hangs up';

/** Reads everything until EOF, then answers `got:` + what it read and ends. */
async function startAnswerAfterEof(): Promise<Running> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`got:${Buffer.concat(chunks).toString('latin1')}`));
    s.on('error', () => undefined);
  });
  return serveTcp(server);
}

/** Dials directly after a pause, so that a FIN sent right after the request arrives while the dial is pending. */
class SlowDialer implements Dialer {
  readonly label = 'slow direct';
  private readonly direct = new DirectDialer(3_000);
  async dial(destination: Endpoint, options: DialOptions): Promise<net.Socket> {
    await new Promise((r) => setTimeout(r, 200));
    return this.direct.dial(destination, options);
  }
}

class SlowRouter implements Router {
  private readonly decision: RouteDecision = { action: 'dial', dialer: new SlowDialer(), route: 'slow direct' };
  decide(): RouteDecision {
    return this.decision;
  }
}

type Proxy = Running & { server: ProxyServer; logger: MemoryLogger };

let target: Running;
let banner: Running;
let web: Running & { requests: unknown[] };
let socksUpstream: Proxy;
let httpUpstream: Proxy;
const proxies = new Map<string, Proxy>();
const authProxies = new Map<string, Proxy>();
const ROUTES = ['direct', 'slow dial', 'socks5 upstream', 'chain'] as const;
type Route = (typeof ROUTES)[number];

async function proxyFor(route: Route, withUsers: boolean): Promise<Proxy> {
  const p = await startProxy({ connectTimeoutMs: 3_000, ...(withUsers ? { users: [USER] } : {}) });
  if (route === 'slow dial') p.server.setRouter(new SlowRouter());
  if (route === 'socks5 upstream') p.server.setRouter(buildRouter({ upstreams: [{ name: 'up', url: `socks5://127.0.0.1:${socksUpstream.port}` }], default: 'up' }, { connectTimeoutMs: 3_000 }));
  if (route === 'chain') {
    p.server.setRouter(
      buildRouter({ upstreams: [{ name: 'two', chain: [`socks5://127.0.0.1:${socksUpstream.port}`, `http://127.0.0.1:${httpUpstream.port}`] }], default: 'two' }, { connectTimeoutMs: 3_000 }),
    );
  }
  return p;
}

before(async () => {
  target = await startAnswerAfterEof();
  banner = await serveTcp(
    net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.resume();
      s.end(BANNER);
    }),
  );
  web = await startHttpServer();
  socksUpstream = await startProxy();
  httpUpstream = await startProxy();
  for (const route of ROUTES) {
    proxies.set(route, await proxyFor(route, false));
    authProxies.set(route, await proxyFor(route, true));
  }
});

after(async () => {
  for (const p of [...proxies.values(), ...authProxies.values(), socksUpstream, httpUpstream, target, banner, web]) await p?.close();
});

/** Connects, sends `request` (+ `data`), half-closes as `timing` says, and resolves with everything received until the proxy closes. */
function exchange(port: number, request: Buffer, data: Buffer, timing: 'same write' | 'after'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no EOF from the proxy within 5 s; received ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, 5_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.once('connect', () => {
      if (timing === 'same write') {
        // One write: request, data and FIN leave together (the FIN rides on the last segment).
        socket.end(Buffer.concat([request, data]));
        return;
      }
      socket.write(request);
      setTimeout(() => {
        socket.write(data);
        setTimeout(() => socket.end(), 20);
      }, 20);
    });
  });
}

const port16 = (p: number): Buffer => Buffer.from([p >> 8, p & 0xff]);
const ip4 = Buffer.from([127, 0, 0, 1]);

/** The front ends: what a client sends, and how long the proxy's answer before the target's bytes is. */
const FRONT_ENDS: { name: string; auth: boolean; request(port: number): Buffer; prefix(reply: Buffer): number; refused(reply: Buffer): boolean }[] = [
  {
    name: 'SOCKS5',
    auth: false,
    request: (port) => Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0, 1]), ip4, port16(port)]),
    prefix: (r) => {
      assert.deepEqual([...r.subarray(0, 4)], [5, 0, 5, 0], 'method 0x00 chosen, reply SUCCEEDED');
      return 2 + 10;
    },
    refused: (r) => r[0] === 5 && r[1] === 0 && r[2] === 5 && r[3] !== 0,
  },
  {
    name: 'SOCKS5 with RFC 1929',
    auth: true,
    request: (port) =>
      Buffer.concat([
        Buffer.from([5, 1, 2]),
        Buffer.from([1, USER.username.length]),
        Buffer.from(USER.username),
        Buffer.from([USER.password.length]),
        Buffer.from(USER.password),
        Buffer.from([5, 1, 0, 1]),
        ip4,
        port16(port),
      ]),
    prefix: (r) => {
      assert.deepEqual([...r.subarray(0, 6)], [5, 2, 1, 0, 5, 0], 'method 0x02, auth ok, reply SUCCEEDED');
      return 2 + 2 + 10;
    },
    refused: (r) => r[0] === 5 && r[1] === 2 && r[3] === 0 && r[4] === 5 && r[5] !== 0,
  },
  {
    name: 'SOCKS4',
    auth: false,
    request: (port) => Buffer.concat([Buffer.from([4, 1]), port16(port), ip4, Buffer.from('me\x00')]),
    prefix: (r) => {
      assert.deepEqual([...r.subarray(0, 2)], [0, 0x5a], 'request granted');
      return 8;
    },
    refused: (r) => r[0] === 0 && r[1] === 0x5b,
  },
  {
    name: 'SOCKS4a',
    auth: false,
    request: (port) => Buffer.concat([Buffer.from([4, 1]), port16(port), Buffer.from([0, 0, 0, 1]), Buffer.from('me\x00127.0.0.1\x00')]),
    prefix: (r) => {
      assert.deepEqual([...r.subarray(0, 2)], [0, 0x5a], 'request granted');
      return 8;
    },
    refused: (r) => r[0] === 0 && r[1] === 0x5b,
  },
  {
    name: 'HTTP CONNECT',
    auth: false,
    request: (port) => Buffer.from(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1'),
    prefix: (r) => {
      const head = r.toString('latin1');
      assert.match(head, /^HTTP\/1\.1 200 /);
      return head.indexOf('\r\n\r\n') + 4;
    },
    refused: (r) => /^HTTP\/1\.1 50[24] /.test(r.toString('latin1')),
  },
];

for (const fe of FRONT_ENDS) {
  describe(`${fe.name}: request, data and FIN before the dial completes`, () => {
    for (const route of ROUTES) {
      for (const timing of ['same write', 'after'] as const) {
        test(`${route}, FIN ${timing === 'same write' ? 'in the same write as the request' : 'after the request'}: every byte and the EOF reach the target`, async () => {
          const proxy = (fe.auth ? authProxies : proxies).get(route) as Proxy;
          const reply = await exchange(proxy.port, fe.request(target.port), Buffer.from(DATA, 'latin1'), timing);
          const skip = fe.prefix(reply);
          assert.equal(reply.subarray(skip).toString('latin1'), `got:${DATA}`);
          assert.ok(!proxy.logger.has('UNSHIFT'), proxy.logger.lines.join('\n'));
        });
      }
    }
    test('no data, FIN in the same write as the request: the EOF alone reaches the target and the session closes', async () => {
      const proxy = (fe.auth ? authProxies : proxies).get('direct') as Proxy;
      const reply = await exchange(proxy.port, fe.request(target.port), Buffer.alloc(0), 'same write');
      assert.equal(reply.subarray(fe.prefix(reply)).toString('latin1'), 'got:');
      // Not held open until the idle timeout: no session of this proxy stays live.
      const until = Date.now() + 3_000;
      while ([...proxy.server.registry.sessions()].length > 0) {
        assert.ok(Date.now() < until, `sessions still open: ${JSON.stringify([...proxy.server.registry.sessions()].map((x) => x.destination))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    test('the dial fails: the client still gets the refusal', async () => {
      const proxy = (fe.auth ? authProxies : proxies).get('direct') as Proxy;
      const reply = await exchange(proxy.port, fe.request(await deadPort()), Buffer.from(DATA, 'latin1'), 'same write');
      assert.ok(fe.refused(reply), `refusal expected, got ${reply.toString('hex').slice(0, 80)}`);
    });
  });
}

describe('HTTP forward: a request with a body and the FIN before the dial completes', () => {
  for (const route of ROUTES) {
    for (const timing of ['same write', 'after'] as const) {
      test(`${route}, FIN ${timing === 'same write' ? 'in the same write as the request' : 'after the request'}: the body arrives and the response comes back`, async () => {
        const proxy = proxies.get(route) as Proxy;
        const head = `POST http://127.0.0.1:${web.port}/early HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\nContent-Length: ${DATA.length}\r\n\r\n`;
        const reply = (await exchange(proxy.port, Buffer.from(head, 'latin1'), Buffer.from(DATA, 'latin1'), timing)).toString('latin1');
        assert.match(reply, /^HTTP\/1\.1 200 /);
        assert.equal(reply.slice(reply.indexOf('\r\n\r\n') + 4), DATA);
      });
    }
  }
  test('the dial fails: the client gets 502', async () => {
    const port = await deadPort();
    const head = `POST http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${DATA.length}\r\n\r\n`;
    const reply = (await exchange((proxies.get('direct') as Proxy).port, Buffer.from(head, 'latin1'), Buffer.from(DATA, 'latin1'), 'same write')).toString('latin1');
    assert.match(reply, /^HTTP\/1\.1 502 /);
  });
});

describe('the target speaks first and hangs up before the relay starts (its FIN arrives during the upstream handshakes)', () => {
  for (const route of ROUTES) {
    test(`${route}: the client gets the banner and the EOF`, async () => {
      const proxy = proxies.get(route) as Proxy;
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
      const received = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const timer = setTimeout(() => reject(new Error(`no EOF within 5 s; got ${Buffer.concat(chunks).toString('latin1')}`)), 5_000);
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', reject);
        socket.on('end', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks));
        });
        socket.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 1]), ip4, port16(banner.port)]));
      });
      socket.destroy();
      assert.deepEqual([...received.subarray(0, 4)], [5, 0, 5, 0]);
      assert.equal(received.subarray(12).toString('latin1'), BANNER);
    });
  }
});

test('UDP ASSOCIATE with the FIN in the same write: the client gets the reply, then the association ends as at any FIN', async () => {
  const proxy = proxies.get('direct') as Proxy;
  const reply = await exchange(proxy.port, Buffer.from([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.alloc(0), 'same write');
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 5, 0], 'method 0x00, reply SUCCEEDED');
  assert.equal(reply.length, 2 + 10);
  const until = Date.now() + 3_000;
  while ([...proxy.server.registry.sessions()].length > 0) {
    assert.ok(Date.now() < until, 'the association is not held open until its idle limit');
    await new Promise((r) => setTimeout(r, 20));
  }
});

describe('a FIN before the request is complete: no request can follow, the proxy closes at once (not at the handshake deadline)', () => {
  const partial: [string, boolean, Buffer][] = [
    ['SOCKS5, half a greeting', false, Buffer.from([5, 2, 0])],
    ['SOCKS5, greeting and half a request', false, Buffer.from([5, 1, 0, 5, 1, 0, 1, 127])],
    ['SOCKS5, half an RFC 1929 sub-negotiation', true, Buffer.from([5, 1, 2, 1, 5, 0x65])],
    ['SOCKS4, no user id terminator', false, Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0x6d])],
    ['HTTP, half a request head', false, Buffer.from('CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127', 'latin1')],
  ];
  for (const [name, auth, bytes] of partial) {
    test(name, async () => {
      const proxy = (auth ? authProxies : proxies).get('direct') as Proxy;
      const started = Date.now();
      await exchange(proxy.port, bytes, Buffer.alloc(0), 'same write');
      // The handshake deadline is 10 s; exchange() gives up after 5 s.
      assert.ok(Date.now() - started < 2_000, `closed after ${Date.now() - started} ms`);
    });
  }
});
