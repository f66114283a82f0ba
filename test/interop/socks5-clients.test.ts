/** SOCKS5 server against clients nobody here wrote: curl, ncat, OpenBSD nc, PySocks and the `socks` npm package. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { SocksClient } from 'socks';
import { PYTHON, run } from '../helpers/run';
import { MemoryLogger, Running, startEchoServer, startHttpServer, startProxy, startUdpEcho, waitForClosed } from '../helpers/servers';
import { ProxyServer } from '../../src/core/server';

const env = { ...process.env, NO_PROXY: '', no_proxy: '', ALL_PROXY: '', all_proxy: '', HTTP_PROXY: '', http_proxy: '' };

let web: Running;
let echo: Running;
let udpEcho: Running;
let proxy: Running & { server: ProxyServer; logger: MemoryLogger };
let authProxy: Running & { server: ProxyServer; logger: MemoryLogger };

before(async () => {
  web = await startHttpServer();
  echo = await startEchoServer();
  udpEcho = await startUdpEcho();
  proxy = await startProxy();
  authProxy = await startProxy({ users: [{ username: 'alice', password: 'wonder land' }] });
});

after(async () => {
  await Promise.all([web, echo, udpEcho, proxy, authProxy].map((r) => r.close()));
});

describe('curl', () => {
  test('--socks5 (client resolves) fetches through the proxy and the session is recorded', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${proxy.port}`, `http://127.0.0.1:${web.port}/via-socks5`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello /via-socks5');
    const s = await waitForClosed(proxy.server.registry, (x) => x.destination === `127.0.0.1:${web.port}`);
    assert.equal(s.command, 'connect');
    assert.equal(s.route, 'direct');
    assert.equal(s.outcome, 'ok');
    assert.ok(s.bytesUp > 50, `bytes up ${s.bytesUp}`);
    assert.ok(s.bytesDown > 100, `bytes down ${s.bytesDown}`);
  });

  test('--socks5-hostname sends the name and the proxy resolves it', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${proxy.port}`, `http://localhost:${web.port}/by-name`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello /by-name');
    await waitForClosed(proxy.server.registry, (s) => s.destination === `localhost:${web.port}` && s.outcome === 'ok');
  });

  test('--proxy-user with the right password succeeds (RFC 1929)', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${authProxy.port}`, '--proxy-user', 'alice:wonder land', `http://localhost:${web.port}/auth`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello /auth');
    await waitForClosed(authProxy.server.registry, (s) => s.user === 'alice' && s.outcome === 'ok');
  });

  test('a wrong password fails and is logged without the password', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${authProxy.port}`, '--proxy-user', 'alice:wrong', `http://127.0.0.1:${web.port}/`], { env });
    assert.equal(r.code, 97, `curl exit ${r.code}: ${r.stderr}`); // 97: proxy handshake error
    assert.ok(authProxy.logger.has('authentication failed for user "alice"'));
    assert.ok(!authProxy.logger.lines.some((l) => l.includes('wrong')), 'password not logged');
  });

  test('no credentials offered to a proxy that requires them gets X\'FF\'', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${authProxy.port}`, `http://127.0.0.1:${web.port}/`], { env });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /authentication|method/i);
    assert.ok(authProxy.logger.has('no acceptable authentication method'));
  });

  test('IPv6: listener on [::1] and destination [::1]', async () => {
    const web6 = await startHttpServer('::1');
    const proxy6 = await startProxy({ host: '::1' });
    try {
      const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `[::1]:${proxy6.port}`, `http://[::1]:${web6.port}/v6`], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'hello /v6');
      const s = await waitForClosed(proxy6.server.registry, (x) => x.destination === `[::1]:${web6.port}`);
      assert.equal(s.client.startsWith('[::1]:'), true);
    } finally {
      await proxy6.close();
      await web6.close();
    }
  });

  test('a refused destination fails with X\'05\' (curl reports it)', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${proxy.port}`, 'http://127.0.0.1:1/'], { env });
    assert.equal(r.code, 97);
    assert.match(r.stderr, /\(5\)/, 'curl names reply code 5');
  });
});

test('ncat --proxy-type socks5: echo round trip with half-close', async () => {
  const r = await run('ncat', ['--proxy', `127.0.0.1:${proxy.port}`, '--proxy-type', 'socks5', '127.0.0.1', String(echo.port)], { input: 'hello from ncat\n', env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from ncat\n');
});

test('ncat --proxy-auth against the authenticating proxy', async () => {
  const r = await run('ncat', ['--proxy', `127.0.0.1:${authProxy.port}`, '--proxy-type', 'socks5', '--proxy-auth', 'alice:wonder land', '127.0.0.1', String(echo.port)], { input: 'auth ncat\n', env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'auth ncat\n');
});

test('OpenBSD nc -X 5: echo round trip, 200 KB each way', async () => {
  const payload = 'x'.repeat(200_000) + '\n';
  const r = await run('nc', ['-N', '-X', '5', '-x', `127.0.0.1:${proxy.port}`, '127.0.0.1', String(echo.port)], { input: payload, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, payload.length);
  assert.equal(r.stdout, payload);
});

test('PySocks TCP: HTTP request through socks5 with remote DNS', async () => {
  const script = `
import socks, sys
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, '127.0.0.1', ${proxy.port}, rdns=True)
s.settimeout(10)
s.connect(('localhost', ${web.port}))
s.sendall(b'GET /pysocks HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n')
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode().split('\\r\\n\\r\\n', 1)[1])
`;
  const r = await run(PYTHON, ['-c', script], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello /pysocks');
});

test('PySocks UDP ASSOCIATE: datagrams go out and answers come back wrapped', async () => {
  const script = `
import socks, socket, sys
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, '127.0.0.1', ${proxy.port})
s.settimeout(5)
for i in range(3):
    s.sendto(('ping %d' % i).encode(), ('127.0.0.1', ${udpEcho.port}))
    data, addr = s.recvfrom(2048)
    print(data.decode(), addr[0], addr[1])
`;
  const r = await run(PYTHON, ['-c', script], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, [0, 1, 2].map((i) => `echo:ping ${i} 127.0.0.1 ${udpEcho.port}\n`).join(''));
  // The association ends with its TCP connection, which PySocks closes when the process exits.
  const s = await waitForClosed(proxy.server.registry, (x) => x.command === 'udp-associate' && x.datagramsUp === 3);
  assert.equal(s.datagramsDown, 3);
  assert.equal(s.outcome, 'ok');
});

test('socks npm client: BIND gives a listening address, then the peer connection', async () => {
  const client = new SocksClient({
    command: 'bind',
    destination: { host: '0.0.0.0', port: 0 },
    proxy: { host: '127.0.0.1', port: proxy.port, type: 5 },
    timeout: 5000,
  });
  const bound = new Promise<{ host: string; port: number }>((resolve) => client.on('bound', (info) => resolve(info.remoteHost as { host: string; port: number })));
  const established = new Promise<{ socket: net.Socket; host: string; port: number }>((resolve, reject) => {
    client.on('established', (info) => resolve({ socket: info.socket, host: info.remoteHost?.host ?? '', port: info.remoteHost?.port ?? 0 }));
    client.on('error', reject);
  });
  client.connect();
  const where = await bound;
  assert.equal(where.host, '127.0.0.1');
  assert.ok(where.port > 0);
  const peer = net.connect(where.port, where.host);
  await new Promise((r) => peer.once('connect', r));
  const est = await established;
  assert.equal(est.host, '127.0.0.1');
  assert.equal(est.port, peer.localPort, 'second reply names the connecting peer');
  est.socket.write('to peer');
  const got = await new Promise<string>((r) => peer.once('data', (d) => r(d.toString())));
  assert.equal(got, 'to peer');
  peer.write('to client');
  const back = await new Promise<string>((r) => est.socket.once('data', (d) => r(d.toString())));
  assert.equal(back, 'to client');
  peer.destroy();
  est.socket.destroy();
});

test('socks npm client: UDP ASSOCIATE with IPv4 and domain destinations', async () => {
  const client = new SocksClient({
    command: 'associate',
    destination: { host: '0.0.0.0', port: 0 },
    proxy: { host: '127.0.0.1', port: proxy.port, type: 5 },
    timeout: 5000,
  });
  const info = await new Promise<{ socket: net.Socket; remoteHost?: { host: string; port: number } }>((resolve, reject) => {
    client.on('established', resolve);
    client.on('error', reject);
    client.connect();
  });
  const relay = info.remoteHost as { host: string; port: number };
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const replies: { host: string; port: number; data: string }[] = [];
  const got = new Promise<void>((resolve) =>
    udp.on('message', (msg) => {
      const f = SocksClient.parseUDPFrame(msg);
      replies.push({ host: f.remoteHost.host, port: f.remoteHost.port, data: f.data.toString() });
      if (replies.length === 2) resolve();
    }),
  );
  udp.send(SocksClient.createUDPFrame({ remoteHost: { host: '127.0.0.1', port: udpEcho.port }, data: Buffer.from('one') }), relay.port, relay.host);
  // Send the second only after the first answer, so the two replies arrive in order.
  await new Promise((r) => setTimeout(r, 100));
  udp.send(SocksClient.createUDPFrame({ remoteHost: { host: 'localhost', port: udpEcho.port }, data: Buffer.from('two') }), relay.port, relay.host);
  await got;
  assert.deepEqual(replies, [
    { host: '127.0.0.1', port: udpEcho.port, data: 'echo:one' },
    { host: '127.0.0.1', port: udpEcho.port, data: 'echo:two' },
  ]);
  udp.close();
  info.socket.destroy();
});
