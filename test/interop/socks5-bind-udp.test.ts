/** CONNECT's bound address, BIND's peer check and wait limit, and UDP ASSOCIATE's source and fragment rules, byte for byte. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { rawConnect } from '../helpers/socks';
import { Running, startProxy, startUdpEcho, waitForClosed } from '../helpers/servers';
import { decodeReply, decodeUdpHeader, encodeUdpHeader } from '../../src/core/socks5/protocol';
import { endpoint } from '../../src/core/address';
import { ProxyServer } from '../../src/core/server';

const GREET = [5, 1, 0];
let proxy: Running & { server: ProxyServer; logger: { has(s: string): boolean } };
let udpEcho: Running;

before(async () => {
  proxy = await startProxy({ bindTimeoutMs: 600 });
  udpEcho = await startUdpEcho();
});
after(async () => {
  await proxy.close();
  await udpEcho.close();
});

async function readReply(c: Awaited<ReturnType<typeof rawConnect>>): Promise<{ reply: number; host: string; port: number }> {
  const head = await c.read(4);
  const rest = await c.read(head[3] === 4 ? 18 : 6);
  const r = decodeReply(Buffer.concat([head, rest]));
  assert.ok(r);
  return { reply: r.value.reply, host: r.value.bound.host, port: r.value.bound.port };
}

test('CONNECT: BND.ADDR/BND.PORT are the outbound socket\'s real local address', async () => {
  const seen: { address: string; port: number }[] = [];
  const target = net.createServer((s) => {
    seen.push({ address: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
    s.end();
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  const port = (target.address() as net.AddressInfo).port;
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
  assert.equal((await c.read(2)).toString('hex'), '0500');
  const r = await readReply(c);
  assert.equal(r.reply, 0);
  assert.equal(r.host, '127.0.0.1');
  assert.deepEqual(seen, [{ address: '127.0.0.1', port: r.port }]);
  c.socket.destroy();
  target.close();
});

test('BIND: a connection from another host than DST.ADDR is refused, the expected one accepted', async () => {
  const c = await rawConnect(proxy.port);
  // The client says its peer will be 127.0.0.2.
  c.write([...GREET, 5, 2, 0, 1, 127, 0, 0, 2, 0, 0]);
  await c.read(2);
  const first = await readReply(c);
  assert.equal(first.reply, 0);
  assert.equal(first.host, '127.0.0.1', 'listens where the client reached the proxy');
  // Wrong peer (127.0.0.1): closed by the proxy, no second reply.
  const wrong = net.connect({ port: first.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
  wrong.on('error', () => undefined);
  await new Promise<void>((r) => wrong.on('close', () => r()));
  assert.ok(proxy.logger.has('BIND refused a connection from 127.0.0.1'));
  // Right peer.
  const right = net.connect({ port: first.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  await new Promise((r) => right.once('connect', r));
  const second = await readReply(c);
  assert.deepEqual(second, { reply: 0, host: '127.0.0.2', port: right.localPort });
  right.write('peer says hi');
  assert.equal((await c.read(12)).toString(), 'peer says hi');
  right.destroy();
  c.socket.destroy();
});

test('BIND: no peer within the wait limit → second reply X\'06\' and close', async () => {
  const c = await rawConnect(proxy.port);
  c.write([...GREET, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
  await c.read(2);
  assert.equal((await readReply(c)).reply, 0);
  const rest = await c.closed(3000);
  assert.equal(rest.subarray(0, 2).toString('hex'), '0506');
});

async function associate(proxyPort: number, clientPort: number, host = '127.0.0.1'): Promise<{ control: Awaited<ReturnType<typeof rawConnect>>; relay: { host: string; port: number } }> {
  const control = await rawConnect(proxyPort, host);
  const addr = host === '::1' ? [4, ...Array(15).fill(0), 1] : [1, 127, 0, 0, 1];
  control.write([...GREET, 5, 3, 0, ...addr, clientPort >> 8, clientPort & 0xff]);
  await control.read(2);
  const r = await readReply(control);
  assert.equal(r.reply, 0);
  return { control, relay: r };
}

function udpSocket(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  return new Promise((r) => s.bind(0, host, () => r(s)));
}

function nextMessage(s: dgram.Socket, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      s.off('message', on);
      resolve(undefined);
    }, timeoutMs);
    const on = (m: Buffer): void => {
      clearTimeout(t);
      resolve(m);
    };
    s.once('message', on);
  });
}

test('UDP: only the client\'s declared port may use the association; FRAG ≠ 0 is dropped', async () => {
  const client = await udpSocket('udp4', '127.0.0.1');
  const intruder = await udpSocket('udp4', '127.0.0.1');
  const { control, relay } = await associate(proxy.port, client.address().port);
  const frame = (payload: string, frag = 0): Buffer => {
    const h = encodeUdpHeader(endpoint('127.0.0.1', udpEcho.port));
    h[2] = frag;
    return Buffer.concat([h, Buffer.from(payload)]);
  };
  intruder.send(frame('from intruder'), relay.port, relay.host);
  assert.equal(await nextMessage(intruder, 300), undefined, 'intruder gets nothing back');
  client.send(frame('fragment', 1), relay.port, relay.host);
  assert.equal(await nextMessage(client, 300), undefined, 'fragment dropped');
  client.send(frame('ok'), relay.port, relay.host);
  const answer = await nextMessage(client, 3000);
  assert.ok(answer);
  const d = decodeUdpHeader(answer);
  assert.deepEqual(d.destination, endpoint('127.0.0.1', udpEcho.port));
  assert.equal(d.payload.toString(), 'echo:ok');
  control.socket.destroy();
  const s = await waitForClosed(proxy.server.registry, (x) => x.command === 'udp-associate' && x.datagramsDown === 1);
  assert.equal(s.datagramsUp, 1, 'only the one valid datagram was relayed');
  client.close();
  intruder.close();
});

test('UDP over IPv6: listener, client and destination on ::1', async () => {
  const p6 = await startProxy({ host: '::1' });
  const echo6 = await startUdpEcho('::1');
  const client = await udpSocket('udp6', '::1');
  try {
    const { control, relay } = await associate(p6.port, client.address().port, '::1');
    assert.equal(relay.host, '::1');
    client.send(Buffer.concat([encodeUdpHeader(endpoint('::1', echo6.port)), Buffer.from('v6')]), relay.port, relay.host);
    const answer = await nextMessage(client, 3000);
    assert.ok(answer);
    const d = decodeUdpHeader(answer);
    assert.deepEqual(d.destination, endpoint('::1', echo6.port));
    assert.equal(d.payload.toString(), 'echo:v6');
    control.socket.destroy();
  } finally {
    client.close();
    await echo6.close();
    await p6.close();
  }
});
