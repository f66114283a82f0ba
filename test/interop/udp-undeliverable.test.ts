/**
 * Datagrams the relay cannot send (port 0, a bad or unresolvable name, an unusable address) are dropped,
 * logged and counted on the session; none of them may throw out of the relay (issue: one datagram to
 * port 0 threw ERR_SOCKET_BAD_PORT out of dgram.send and killed the headless proxy).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Running, startProxy, startUdpEcho } from '../helpers/servers';
import { associate, domainAddr, rawDatagram } from '../helpers/udp';
import type { ProxyServer } from '../../src/core/server';
import type { MemoryLogger } from '../helpers/servers';
import type { SessionInfo } from '../../src/core/registry';
import { buildRouter } from '../../src/core/routing';

let proxy: Running & { server: ProxyServer; logger: MemoryLogger };
let echo: Running;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => void uncaught.push(err);

before(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  proxy = await startProxy();
  echo = await startUdpEcho();
});
after(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  await proxy.close();
  await echo.close();
});

const LOCAL = [1, 127, 0, 0, 1];

async function liveUdpSession(): Promise<SessionInfo> {
  for (let i = 0; i < 100; i++) {
    const s = proxy.server.registry.snapshot().find((x) => x.command === 'udp-associate');
    if (s) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no live UDP session');
}

/** Polls (bounded) until the live association has counted `n` dropped datagrams. */
async function waitDropped(n: number): Promise<SessionInfo> {
  let s = await liveUdpSession();
  for (let i = 0; i < 150 && s.droppedDatagrams < n; i++) {
    await new Promise((r) => setTimeout(r, 20));
    s = await liveUdpSession();
  }
  return s;
}

test('UDP: datagrams to port 0 (IPv4, IPv6, a name) are dropped with a reason; the relay keeps serving', async () => {
  const a = await associate(proxy.port);
  try {
    a.send(rawDatagram(LOCAL, 0, 'to port zero'));
    a.send(rawDatagram(domainAddr('localhost'), 0, 'name, port zero'));
    a.send(rawDatagram([4, ...Array(15).fill(0), 1], 0, 'v6, port zero'));
    a.send(rawDatagram(LOCAL, echo.port, 'still here'));
    const answer = await a.next(3000);
    assert.ok(answer, 'the valid datagram after the bad ones is answered');
    assert.match(answer.toString('latin1'), /echo:still here$/);
    assert.deepEqual(uncaught, [], 'nothing thrown out of the relay');
    const s = await waitDropped(3);
    assert.equal(s.droppedDatagrams, 3);
    assert.equal(s.datagramsUp, 1, 'only the valid datagram counts as relayed');
    assert.ok(proxy.logger.has('dropped UDP datagram to 127.0.0.1:0: destination port 0'), proxy.logger.lines.join('\n'));
    assert.ok(proxy.logger.has('dropped UDP datagram to localhost:0: destination port 0'));
  } finally {
    a.close();
  }
  assert.deepEqual(uncaught, []);
});

test('UDP: bad names, unresolvable names and unspecified addresses are dropped and counted', async () => {
  const a = await associate(proxy.port);
  const bad = ['bad name', 'a\u0000b', '..', '-lead.example', `${'a'.repeat(64)}.example`, 'ünïcode.example', 'x'.repeat(255)];
  try {
    for (const name of bad) a.send(rawDatagram(domainAddr(name), echo.port, 'bad'));
    a.send(rawDatagram(domainAddr('nothing-here.invalid'), echo.port, 'unresolvable'));
    a.send(rawDatagram([1, 0, 0, 0, 0], echo.port, 'unspecified v4'));
    a.send(rawDatagram([4, ...Array(16).fill(0)], echo.port, 'unspecified v6'));
    const s = await waitDropped(bad.length + 3);
    assert.deepEqual(uncaught, [], 'nothing thrown out of the relay');
    assert.equal(s.droppedDatagrams, bad.length + 3, proxy.logger.lines.join('\n'));
    assert.ok(proxy.logger.has('not a valid host name'));
    assert.ok(proxy.logger.has('cannot resolve nothing-here.invalid'));
    a.send(rawDatagram(domainAddr('localhost'), echo.port, 'by name'));
    const answer = await a.next(3000);
    assert.ok(answer, 'a good name still works');
    assert.match(answer.toString('latin1'), /echo:by name$/);
  } finally {
    a.close();
  }
  assert.deepEqual(uncaught, []);
  const totals = proxy.server.registry.totals();
  assert.ok(totals.droppedDatagrams >= 13, `registry totals count drops: ${JSON.stringify(totals)}`);
});

test('UDP through a SOCKS5 upstream: a name that does not resolve here (socks5://) is dropped and counted; the path keeps relaying', async () => {
  const inner = await startProxy();
  const outer = await startProxy();
  outer.server.setRouter(buildRouter({ upstreams: [{ name: 'up', url: `socks5://127.0.0.1:${inner.port}` }], default: 'up' }, { logger: outer.logger }));
  const a = await associate(outer.port);
  try {
    a.send(rawDatagram(LOCAL, echo.port, 'first'));
    const first = await a.next(3000);
    assert.ok(first, 'relayed through the upstream');
    a.send(rawDatagram(domainAddr('nothing-here.invalid'), echo.port, 'unresolvable'));
    a.send(rawDatagram(LOCAL, 0, 'port zero'));
    let s = outer.server.registry.snapshot().find((x) => x.command === 'udp-associate');
    for (let i = 0; i < 150 && (s?.droppedDatagrams ?? 0) < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      s = outer.server.registry.snapshot().find((x) => x.command === 'udp-associate');
    }
    assert.equal(s?.droppedDatagrams, 2, outer.logger.lines.join('\n'));
    assert.equal(s?.datagramsUp, 1);
    assert.ok(outer.logger.has('dropped UDP datagram to nothing-here.invalid:'), outer.logger.lines.join('\n'));
    a.send(rawDatagram(LOCAL, echo.port, 'second'));
    const second = await a.next(3000);
    assert.ok(second && second.toString('latin1').endsWith('echo:second'));
  } finally {
    a.close();
    await outer.close();
    await inner.close();
  }
  assert.deepEqual(uncaught, []);
});
