import type { Duplex } from 'node:stream';
/**
 * A new upstream kind from this file alone: a toy driver for `testproxy://` (a line protocol,
 * `OPEN host:port\n` → `OK\n`) is registered here, and URL parsing, labels, chains, routing and the
 * health check take it like a built-in one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { endpoint, formatEndpoint } from '../../src/core/address';
import { ProxyError, Reply } from '../../src/core/errors';
import { checkUpstream } from '../../src/core/health';
import { buildRouter } from '../../src/core/routing';
import type { Decoded } from '../../src/core/socks5/protocol';
import { ChainDialer } from '../../src/core/upstream/chain';
import type { HopDriver } from '../../src/core/upstream/driver';
import { NO_ADDRESS } from '../../src/core/upstream/driver';
import { driverFor, registerHopDriver, upstreamSchemes } from '../../src/core/upstream/drivers';
import { readMessage } from '../../src/core/upstream/handshake';
import { hopLabel, hopTakesPassword, parseChain, parseUpstreamUrl, UpstreamHop, urlTakesPassword } from '../../src/core/upstream/url';
import { Running, serveTcp, startEchoServer, startProxy } from '../helpers/servers';

declare module '../../src/core/upstream/hop' {
  interface HopKinds {
    testproxy: true;
  }
}

/** One "\n"-terminated line (pure, like the real decoders). */
function decodeLine(buf: Buffer): Decoded<string> | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return undefined;
  return { value: buf.toString('latin1', 0, nl), length: nl + 1 };
}

const testDriver: HopDriver = {
  name: 'testproxy',
  title: 'TESTPROXY',
  schemes: { testproxy: { port: 7070, remoteDns: true } },
  takesPassword: false,
  checkCredentials: (username, password) => (username !== undefined || password !== undefined ? 'testproxy takes no credentials' : undefined),
  async handshake(socket, hop, _command, destination, signal) {
    socket.write(`OPEN ${formatEndpoint(destination)}\n`);
    const answer = await readMessage(socket, decodeLine, signal, 'testproxy answer');
    if (answer !== 'OK') throw new ProxyError('UPSTREAM_FAILED', `upstream ${hopLabel(hop)} answered "${answer}"`, Reply.CONNECTION_REFUSED);
    return NO_ADDRESS;
  },
};
registerHopDriver(testDriver);

/** The toy upstream: reads one OPEN line, connects there and relays (or answers ERR). */
async function startTestProxy(): Promise<Running & { opened: string[] }> {
  const opened: string[] = [];
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const line = decodeLine(buf);
      if (!line) return;
      client.off('data', onData);
      const m = /^OPEN (.+):(\d+)$/.exec(line.value);
      if (!m) return void client.end('ERR bad request\n');
      opened.push(line.value.slice(5));
      const out = net.connect(Number(m[2]), m[1]);
      out.on('error', () => client.end('ERR refused\n'));
      out.once('connect', () => {
        client.write('OK\n');
        if (line.length < buf.length) out.write(buf.subarray(line.length));
        client.pipe(out).pipe(client);
      });
    };
    client.on('data', onData);
  });
  return Object.assign(await serveTcp(server), { opened });
}

let echo: Running;
let toy: Running & { opened: string[] };
let proxy: Running;

before(async () => {
  echo = await startEchoServer();
  toy = await startTestProxy();
  proxy = await startProxy();
});

after(async () => {
  await Promise.all([echo, toy, proxy].map((r) => r?.close()));
});

function exchange(socket: Duplex, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= data.length) resolve(got);
    });
    socket.once('error', reject);
    socket.resume();
    socket.write(data);
  });
}

test('the registry serves the new scheme: parsing, defaults, labels, password question', () => {
  assert.equal(driverFor('testproxy'), testDriver);
  assert.ok(upstreamSchemes().includes('testproxy'));
  const hop = parseUpstreamUrl('TESTPROXY://relay.example') as UpstreamHop;
  assert.deepEqual(hop, { kind: 'testproxy', scheme: 'testproxy', host: 'relay.example', port: 7070, remoteDns: true });
  assert.equal(hopLabel(hop), 'testproxy://relay.example:7070');
  assert.throws(() => parseUpstreamUrl('testproxy://u:p@relay.example'), (e: unknown) => e instanceof ProxyError && e.code === 'BAD_UPSTREAM_URL' && /takes no credentials/.test(e.message) && !e.message.includes(':p@'));
  assert.throws(() => parseUpstreamUrl('testproxy://relay.example?insecure=1'), /options are for https:\/\/ upstreams only/);
  assert.equal(urlTakesPassword('testproxy://u@relay.example'), false);
  assert.equal(hopTakesPassword(hop), false);
  assert.equal(urlTakesPassword('socks5h://u@relay.example'), true);
  assert.equal(urlTakesPassword('socks4://u@relay.example'), false);
  // A scheme (or name) that is taken cannot be registered twice.
  assert.throws(() => registerHopDriver({ ...testDriver, name: 'testproxy2' as 'testproxy' }), /"testproxy" is reserved or taken/);
  assert.throws(() => registerHopDriver({ ...testDriver, schemes: { direct: { port: 1, remoteDns: true } } }), /reserved or taken/);
});

test('socks5://<our server> → testproxy:// → echo carries the bytes both ways', async () => {
  const chain = new ChainDialer(parseChain([`socks5://127.0.0.1:${proxy.port}`, `testproxy://127.0.0.1:${toy.port}`]), { connectTimeoutMs: 3_000 });
  assert.equal(chain.label, `socks5://127.0.0.1:${proxy.port} → testproxy://127.0.0.1:${toy.port}`);
  const socket = await chain.dial(endpoint('127.0.0.1', echo.port), { signal: new AbortController().signal });
  try {
    assert.equal(await exchange(socket, 'ping through the toy hop'), 'ping through the toy hop');
    assert.deepEqual(toy.opened, [`127.0.0.1:${echo.port}`]);
  } finally {
    socket.destroy();
  }
});

test('BIND and UDP through the toy hop are refused as unsupported (X07)', async () => {
  const chain = new ChainDialer(parseChain([`testproxy://127.0.0.1:${toy.port}`]), { connectTimeoutMs: 3_000 });
  const signal = new AbortController().signal;
  const unsupported = (e: unknown): boolean => e instanceof ProxyError && e.code === 'BAD_COMMAND' && e.reply === Reply.COMMAND_NOT_SUPPORTED;
  await assert.rejects(chain.bind(endpoint('127.0.0.1', 1), { signal, timeoutMs: 1_000, localAddress: '127.0.0.1' }), unsupported);
  await assert.rejects(chain.openUdp(() => undefined, { signal }), (e: unknown) => unsupported(e) && /needs a single SOCKS5 upstream/.test((e as Error).message));
  await assert.rejects(chain.open(NO_ADDRESS, 'udp-associate', signal), (e: unknown) => unsupported(e) && /TESTPROXY upstream .* cannot do UDP ASSOCIATE/.test((e as Error).message));
});

test('the health check and routing rules take the new scheme', async () => {
  const ok = await checkUpstream([`socks5://127.0.0.1:${proxy.port}`, `testproxy://127.0.0.1:${toy.port}`], `127.0.0.1:${echo.port}`, { timeoutMs: 3_000 });
  assert.equal(ok.ok, true, ok.error);
  assert.equal(ok.route, `socks5://127.0.0.1:${proxy.port} → testproxy://127.0.0.1:${toy.port}`);
  // The toy upstream cannot reach a closed port: its ERR answer becomes the driver's X05.
  const refused = await checkUpstream(`testproxy://127.0.0.1:${toy.port}`, '127.0.0.1:1', { timeoutMs: 3_000 });
  assert.equal(refused.ok, false);
  assert.equal(refused.code, 'UPSTREAM_FAILED');
  assert.equal(refused.reply, Reply.CONNECTION_REFUSED);
  assert.match(refused.error ?? '', /answered "ERR refused"/);
  const router = buildRouter({ upstreams: [{ name: 'toy', url: `testproxy://127.0.0.1:${toy.port}` }], rules: [], default: 'toy' });
  const decision = router.decide(endpoint('127.0.0.1', echo.port), { command: 'connect' });
  assert.equal(decision.action, 'dial');
  if (decision.action !== 'dial') return;
  assert.match(decision.route, /toy/);
  const socket = await decision.dialer.dial(endpoint('127.0.0.1', echo.port), { signal: new AbortController().signal });
  try {
    assert.equal(await exchange(socket, 'routed'), 'routed');
  } finally {
    socket.destroy();
  }
});
