/**
 * HTTP forward mode keeps origin connections alive between requests: reused per (route, user, origin),
 * never across routes or users, never after a failure or a half-read response, Connection: close and
 * HTTP/1.0 respected, and a kept connection the origin just closed is retried once on a new one.
 * Responses never cross between clients; pipelined requests keep their order.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { buildRouter } from '../../src/core/routing';
import { Running, serveTcp, startProxy } from '../helpers/servers';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An origin that answers `<path>` and counts the TCP connections it accepted. */
async function origin(handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Running & { connections: () => number; server: http.Server }> {
  let connections = 0;
  const server = http.createServer(
    handler ??
      ((req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end(`answer for ${req.url ?? ''} (${req.headers['proxy-authorization'] === undefined ? 'no auth' : 'auth leaked'})`);
      }),
  );
  server.keepAliveTimeout = 10_000;
  server.on('connection', () => connections++);
  const running = await serveTcp(server);
  cleanups.push(() => running.close());
  return { ...running, connections: () => connections, server };
}

async function proxy(options: Parameters<typeof startProxy>[0] = {}) {
  const p = await startProxy(options);
  cleanups.push(() => p.close());
  return p;
}

/** GET through the proxy on a keep-alive agent of the client's own. */
function get(proxyPort: number, url: string, agent: http.Agent, auth?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, agent, headers: { host: new URL(url).host, ...(auth ? { 'proxy-authorization': `Basic ${Buffer.from(auth).toString('base64')}` } : {}) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end();
  });
}

function agent(): http.Agent {
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => a.destroy());
  return a;
}

test('50 concurrent clients, 20 requests each with their own paths: every answer is its own, and origin connections are reused', async () => {
  const o = await origin();
  const p = await proxy();
  const clients = Array.from({ length: 50 }, () => agent());
  await Promise.all(
    clients.map(async (a, c) => {
      for (let i = 0; i < 20; i++) {
        const path = `/client-${c}/request-${i}`;
        const r = await get(p.port, `http://127.0.0.1:${o.port}${path}`, a);
        assert.equal(r.status, 200);
        assert.equal(r.body, `answer for ${path} (no auth)`, 'a response never crosses to another client');
      }
    }),
  );
  const perThousand = (o.connections() * 1000) / 1000;
  assert.ok(o.connections() <= 60, `1000 requests from 50 clients took ${o.connections()} origin connections (${perThousand} per 1000)`);
  assert.ok(p.server.pool.reused >= 900, `reused ${p.server.pool.reused}`);
});

test('never shared between users: two users take two connections, and the origin never sees a credential', async () => {
  const o = await origin();
  const p = await proxy({ users: [{ username: 'ann', password: 'a-pass' }, { username: 'bob', password: 'b-pass' }] });
  const a = agent();
  const b = agent();
  for (let i = 0; i < 5; i++) {
    assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/ann/${i}`, a, 'ann:a-pass')).body, `answer for /ann/${i} (no auth)`);
    assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/bob/${i}`, b, 'bob:b-pass')).body, `answer for /bob/${i} (no auth)`);
  }
  assert.equal(o.connections(), 2, 'one kept connection per user');
});

test('never shared between routes: after the routes change, a new connection', async () => {
  const o = await origin();
  const p = await proxy();
  const a = agent();
  await get(p.port, `http://127.0.0.1:${o.port}/one`, a);
  await get(p.port, `http://127.0.0.1:${o.port}/two`, a);
  assert.equal(o.connections(), 1);
  p.server.setRouter(buildRouter({ default: 'direct' }));
  await get(p.port, `http://127.0.0.1:${o.port}/three`, a);
  assert.equal(o.connections(), 2, 'the kept connection belonged to the old routes');
});

test('Connection: close and HTTP/1.0 answers are respected: no reuse', async () => {
  const closing = await origin((req, res) => {
    res.setHeader('connection', 'close');
    res.end(`closing ${req.url ?? ''}`);
  });
  const p = await proxy();
  const a = agent();
  for (let i = 0; i < 3; i++) assert.equal((await get(p.port, `http://127.0.0.1:${closing.port}/c${i}`, a)).body, `closing /c${i}`);
  assert.equal(closing.connections(), 3);
  // An HTTP/1.0 origin without keep-alive (a raw server).
  let raw = 0;
  const old = await serveTcp(
    net.createServer((s) => {
      raw++;
      s.once('data', () => s.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold-school'));
    }),
  );
  cleanups.push(() => old.close());
  for (let i = 0; i < 3; i++) assert.equal((await get(p.port, `http://127.0.0.1:${old.port}/o${i}`, a)).body, 'old-school');
  assert.equal(raw, 3);
});

test('a response cut short is passed on as a failure and its connection is never reused', async () => {
  let n = 0;
  const o = await origin((req, res) => {
    n++;
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(`fine ${req.url ?? ''}`);
  });
  const p = await proxy();
  const a = agent();
  assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/before`, a)).body, 'fine /before');
  await assert.rejects(get(p.port, `http://127.0.0.1:${o.port}/cut`, a), 'the client sees the truncation as an error');
  assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/after`, agent())).body, 'fine /after');
  assert.equal(n, 3);
  assert.equal(o.connections(), 2, 'the cut connection was not reused (and the kept one before it carried /cut)');
});

test('a kept connection the origin closes as the next request arrives: the request is retried once on a new connection', async () => {
  // A raw origin: its first connection answers one request with keep-alive, then drops the connection when the
  // next request comes (the race with an origin's own idle timeout); later connections answer normally.
  let connections = 0;
  const raw = await serveTcp(
    net.createServer((s) => {
      const n = ++connections;
      let requests = 0;
      s.on('data', (d: Buffer) => {
        if (!d.includes('\r\n\r\n')) return;
        requests++;
        if (n === 1 && requests === 2) {
          s.destroy();
          return;
        }
        const body = `conn ${n} request ${requests}`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
      });
      s.on('error', () => undefined);
    }),
  );
  cleanups.push(() => raw.close());
  const p = await proxy();
  const a = agent();
  assert.equal((await get(p.port, `http://127.0.0.1:${raw.port}/first`, a)).body, 'conn 1 request 1');
  assert.equal((await get(p.port, `http://127.0.0.1:${raw.port}/second`, a)).body, 'conn 2 request 1', 'retried on a new connection');
  assert.equal(connections, 2);
});

test('an idle kept connection the origin closes leaves the pool at once', async () => {
  const o = await origin();
  const p = await proxy();
  await get(p.port, `http://127.0.0.1:${o.port}/one`, agent());
  assert.equal(p.server.pool.idle, 1);
  o.server.closeIdleConnections();
  for (let i = 0; i < 50 && p.server.pool.idle > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(p.server.pool.idle, 0, 'dropped on the origin\'s FIN');
  assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/two`, agent())).body, 'answer for /two (no auth)');
  assert.equal(o.connections(), 2);
});

test('pipelined requests on one client connection are answered in order', async () => {
  const o = await origin((req, res) => {
    // Later requests answer sooner: order must come from the proxy, not from timing.
    const delay = req.url === '/p1' ? 60 : req.url === '/p2' ? 30 : 0;
    setTimeout(() => res.end(`<${req.url ?? ''}>`), delay);
  });
  const p = await proxy();
  const s = net.connect(p.port, '127.0.0.1');
  cleanups.push(() => s.destroy());
  await new Promise((r) => s.once('connect', r));
  const host = `127.0.0.1:${o.port}`;
  s.write(['/p1', '/p2', '/p3'].map((u) => `GET http://${host}${u} HTTP/1.1\r\nHost: ${host}\r\n\r\n`).join(''));
  let text = '';
  s.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pipelined answers incomplete: ${text}`)), 5_000);
    s.on('data', (d: string) => {
      text += d;
      if (text.includes('</p3>')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const order = [...text.matchAll(/<(\/p\d)>/g)].map((m) => m[1]);
  assert.deepEqual(order, ['/p1', '/p2', '/p3']);
});

test('through an HTTP upstream the kept connection is the tunnel through it: ten requests, one upstream connection', async () => {
  const o = await origin();
  const upstream = await proxy();
  const p = await proxy();
  p.server.setRouter(buildRouter({ upstreams: [{ name: 'up', url: `http://127.0.0.1:${upstream.port}` }], default: 'up' }));
  const a = agent();
  for (let i = 0; i < 10; i++) assert.equal((await get(p.port, `http://127.0.0.1:${o.port}/via-up/${i}`, a)).body, `answer for /via-up/${i} (no auth)`);
  assert.equal(upstream.server.registry.totals().opened, 1, 'one CONNECT through the upstream carried all ten');
  assert.equal(o.connections(), 1);
});
