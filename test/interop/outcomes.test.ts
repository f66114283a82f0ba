/**
 * Typed outcomes end to end on loopback: our own servers as upstreams, a raw SOCKS5 client, and the
 * session's outcomeCode / failedHop / failedMember / routeInfo checked rather than its text.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { endpoint } from '../../src/core/address';
import { buildRouter, RoutingConfig } from '../../src/core/routing';
import type { SessionInfo } from '../../src/core/registry';
import { encodeRequest } from '../../src/core/socks5/protocol';
import { deadPort, MemoryLogger, Running, serveTcp, startEchoServer, startProxy, waitForClosed } from '../helpers/servers';
import { rawConnect } from '../helpers/socks';
import type { ProxyServer } from '../../src/core/server';
import { credentialFixTarget } from '../../src/ui/status';

const toClose: { close(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(toClose.map((c) => c.close().catch(() => undefined)));
});

function kept<T extends { close(): Promise<void> }>(x: T): T {
  toClose.push(x);
  return x;
}

async function relayWith(config: RoutingConfig, connectTimeoutMs = 3_000): Promise<Running & { server: ProxyServer; logger: MemoryLogger }> {
  const proxy = kept(await startProxy({ connectTimeoutMs }));
  proxy.server.setRouter(buildRouter(config, { logger: proxy.logger, connectTimeoutMs }));
  return proxy;
}

/** A raw SOCKS5 CONNECT to `host:port`; resolves with the reply code and the session it closed. */
async function connectThrough(proxy: { port: number; server: ProxyServer }, host: string, port: number): Promise<{ reply: number; session: SessionInfo }> {
  const c = await rawConnect(proxy.port);
  try {
    c.write([5, 1, 0]);
    assert.deepEqual([...(await c.read(2))], [5, 0]);
    c.write(encodeRequest({ command: 'connect', destination: endpoint(host, port) }));
    const r = await c.read(2, 10_000);
    const session = await waitForClosed(proxy.server.registry, (s) => s.destination === `${host}:${port}`);
    return { reply: r[1], session };
  } finally {
    c.socket.destroy();
  }
}

test('outcome codes: blocked, refused, timeout', async () => {
  const dead = await deadPort();
  // Accepts TCP and never answers: a SOCKS5 upstream that hangs in its handshake.
  const silent = kept(await serveTcp(net.createServer(() => undefined)));
  const proxy = await relayWith(
    {
      upstreams: [{ name: 'slow', url: `socks5h://127.0.0.1:${silent.port}` }],
      rules: [
        { match: 'blocked.test', action: 'block' },
        { match: 'slow.test', action: 'slow' },
      ],
    },
    400,
  );
  const blocked = await connectThrough(proxy, 'blocked.test', 80);
  assert.deepEqual([blocked.reply, blocked.session.outcomeKind, blocked.session.outcomeCode, blocked.session.routeInfo?.rule?.index], [0x02, 'refused', 'BLOCKED', 1]);
  assert.equal(blocked.session.outcome, 'connection not allowed by ruleset: blocked by rule 1 (blocked.test) → block');

  const refused = await connectThrough(proxy, '127.0.0.1', dead);
  assert.deepEqual([refused.reply, refused.session.outcomeKind, refused.session.outcomeCode, refused.session.failedHop], [0x05, 'failed', 'ECONNREFUSED', undefined]);

  const slow = await connectThrough(proxy, 'slow.test', 80);
  assert.deepEqual([slow.reply, slow.session.outcomeCode, slow.session.routeInfo?.upstream, slow.session.failedHop?.index], [0x06, 'CONNECT_TIMEOUT', 'slow', 0]);
});

test('outcome codes: an upstream that rejects our credentials, by name, with its hop; through a failover, the member', async () => {
  const echo = kept(await startEchoServer());
  const guarded = kept(await startProxy({ users: [{ username: 'me', password: 'right' }] }));
  const proxy = await relayWith({
    upstreams: [
      { name: 'co', url: `socks5://127.0.0.1:${guarded.port}` },
      { name: 'corp', url: `socks5://me:wrong@127.0.0.1:${guarded.port}` },
      { name: 'ha', failover: ['co', 'corp'] },
    ],
    rules: [{ match: 'port:1', action: 'ha' }],
    default: 'corp',
  });
  const viaCorp = await connectThrough(proxy, '127.0.0.1', echo.port);
  assert.deepEqual([viaCorp.session.outcomeCode, viaCorp.session.routeInfo?.upstream, viaCorp.session.failedHop, viaCorp.session.failedMember], ['UPSTREAM_AUTH_FAILED', 'corp', { index: 0, label: `socks5://me@127.0.0.1:${guarded.port}` }, undefined]);
  assert.equal(viaCorp.session.route, 'default → corp');
  // What the extension offers to fix: "corp", never "co" (whose name is a prefix of it).
  assert.equal(credentialFixTarget(viaCorp.session, ['co', 'corp', 'ha']), 'corp');

  // "co" offers no credentials and is turned away, then "corp" has its password rejected: the last member is the one named.
  const viaGroup = await connectThrough(proxy, '127.0.0.1', 1);
  assert.deepEqual([viaGroup.session.outcomeCode, viaGroup.session.routeInfo?.upstream, viaGroup.session.failedMember], ['UPSTREAM_AUTH_FAILED', 'ha', 'corp']);
  assert.equal(credentialFixTarget(viaGroup.session, ['co', 'corp', 'ha']), 'corp');
});

test('failed hop: a chain whose second hop refuses names hop 1 (0-based), not the first', async () => {
  const echo = kept(await startEchoServer());
  const first = kept(await startProxy());
  const dead = await deadPort();
  const proxy = await relayWith({ upstreams: [{ name: 'two', chain: [`socks5://127.0.0.1:${first.port}`, `socks5://127.0.0.1:${dead}`] }], default: 'two' });
  const r = await connectThrough(proxy, '127.0.0.1', echo.port);
  assert.equal(r.reply, 0x05);
  assert.deepEqual([r.session.outcomeCode, r.session.failedHop, r.session.routeInfo?.hops.length], ['UPSTREAM_FAILED', { index: 1, label: `socks5://127.0.0.1:${dead}` }, 2]);

  // And a dead first hop is hop 0.
  const deadFirst = await relayWith({ upstreams: [{ name: 'one', chain: [`socks5://127.0.0.1:${dead}`, `socks5://127.0.0.1:${first.port}`] }], default: 'one' });
  const r0 = await connectThrough(deadFirst, '127.0.0.1', echo.port);
  assert.deepEqual([r0.session.outcomeCode, r0.session.failedHop?.index], ['UPSTREAM_FAILED', 0]);
});
