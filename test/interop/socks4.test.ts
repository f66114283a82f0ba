/** SOCKS4 and SOCKS4a on the shared port: curl --socks4/--socks4a, and raw clients for BIND, glued data and refusals. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { Endpoint } from '../../src/core/address';
import type { RouteDecision, Router } from '../../src/core/dialer';
import { DirectDialer } from '../../src/core/direct';
import { encodeSocks4Request } from '../../src/core/socks4/protocol';
import { cleanEnv, Origin, startOrigin } from '../helpers/http-tools';
import { run } from '../helpers/run';
import { deadPort, startEchoServer, startProxy } from '../helpers/servers';
import { rawConnect } from '../helpers/socks';

const ipv4 = (host: string, port: number): Endpoint => ({ type: 'ipv4', host, port });
const domain = (host: string, port: number): Endpoint => ({ type: 'domain', host, port });

class BlockingRouter implements Router {
  private readonly direct = new DirectDialer(3_000);
  decide(destination: Endpoint): RouteDecision {
    if (destination.host === 'blocked.test') return { action: 'block', route: 'rule "no blocked.test"' };
    return { action: 'dial', dialer: this.direct, route: 'direct' };
  }
}

function curl(args: string[]) {
  return run('curl', ['-sS', '--max-time', '10', ...args], { env: cleanEnv(), timeoutMs: 15_000 });
}

/** Sends one request and returns the 8-byte reply (or whatever came before the close). */
async function ask(port: number, request: Buffer): Promise<Buffer> {
  const c = await rawConnect(port);
  c.write(request);
  const reply = await c.read(8);
  c.socket.destroy();
  return reply;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SOCKS4 and SOCKS4a', () => {
  let origin: Origin;
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  let proxy: Awaited<ReturnType<typeof startProxy>>;

  before(async () => {
    origin = await startOrigin();
    echo = await startEchoServer();
    proxy = await startProxy({}, new BlockingRouter());
  });

  after(async () => {
    await proxy.close();
    await origin.close();
    await echo.close();
  });

  test('curl --socks4 and --socks4a (the proxy resolves the name), with a user id', async () => {
    const four = await curl(['--socks4', `127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/hello`]);
    assert.equal(four.code, 0, four.stderr);
    assert.equal(four.stdout, 'hello');
    const fourA = await curl(['--socks4a', `127.0.0.1:${proxy.port}`, `http://localhost:${origin.port}/hello`]);
    assert.equal(fourA.code, 0, fourA.stderr);
    assert.equal(fourA.stdout, 'hello');
    const user = await curl(['-x', `socks4a://carol@127.0.0.1:${proxy.port}`, `http://localhost:${origin.port}/hello`]);
    assert.equal(user.stdout, 'hello', user.stderr);
    assert.ok(proxy.logger.has('SOCKS4a CONNECT localhost:'), 'SOCKS4a request logged');
    assert.ok(proxy.logger.has('user id "carol"'), 'user id logged');
    await waitFor(() => proxy.server.registry.recentlyClosed().filter((s) => s.protocol === 'socks4').length >= 3, 'three SOCKS4 sessions');
    const sessions = proxy.server.registry.recentlyClosed().filter((s) => s.protocol === 'socks4');
    assert.deepEqual(
      sessions.slice(-3).map((s) => [s.command, s.destination, s.route, s.outcome]),
      [
        ['connect', `127.0.0.1:${origin.port}`, 'direct', 'ok'],
        ['connect', `localhost:${origin.port}`, 'direct', 'ok'],
        ['connect', `localhost:${origin.port}`, 'direct', 'ok'],
      ],
    );
    assert.equal(sessions.at(-1)?.user, undefined, 'the unauthenticated user id is not recorded as a user');
  });

  test('bytes glued to the request, and a request split at every byte, are relayed', async () => {
    const c = await rawConnect(proxy.port);
    c.write(Buffer.concat([encodeSocks4Request('connect', ipv4('127.0.0.1', echo.port), 'x'), Buffer.from('glued')]));
    const reply = await c.read(8);
    assert.deepEqual([reply[0], reply[1]], [0, 90]);
    assert.equal((await c.read(5)).toString(), 'glued');
    c.write(Buffer.from('more'));
    assert.equal((await c.read(4)).toString(), 'more');
    c.socket.end();
    await c.closed();

    const s = await rawConnect(proxy.port);
    s.socket.setNoDelay(true);
    const req = encodeSocks4Request('connect', domain('localhost', echo.port), 'slow');
    for (const b of req) {
      s.write([b]);
      await new Promise((r) => setTimeout(r, 2));
    }
    const r2 = await s.read(8);
    assert.deepEqual([r2[0], r2[1]], [0, 90]);
    s.write(Buffer.from('ok'));
    assert.equal((await s.read(2)).toString(), 'ok');
    s.socket.destroy();
  });

  test('BIND: first reply gives the listening port, second reply the peer, then data flows both ways', async () => {
    const c = await rawConnect(proxy.port);
    c.write(encodeSocks4Request('bind', ipv4('127.0.0.1', 0), 'ftp'));
    const first = await c.read(8);
    assert.deepEqual([first[0], first[1]], [0, 90]);
    const port = first.readUInt16BE(2);
    assert.ok(port > 0);
    const ip = `${first[4]}.${first[5]}.${first[6]}.${first[7]}`;
    const peer = net.connect({ host: ip === '0.0.0.0' ? '127.0.0.1' : ip, port });
    peer.on('error', () => undefined);
    await new Promise<void>((resolve) => peer.once('connect', () => resolve()));
    const second = await c.read(8);
    assert.deepEqual([second[0], second[1]], [0, 90]);
    assert.equal(second.readUInt16BE(2), peer.localPort);
    assert.equal(`${second[4]}.${second[5]}.${second[6]}.${second[7]}`, '127.0.0.1');
    peer.write('from peer');
    assert.equal((await c.read(9)).toString(), 'from peer');
    const got = new Promise<string>((resolve) => peer.once('data', (d: Buffer) => resolve(d.toString())));
    c.write(Buffer.from('from client'));
    assert.equal(await got, 'from client');
    peer.destroy();
    c.socket.destroy();
    await waitFor(() => proxy.server.registry.recentlyClosed().some((s) => s.protocol === 'socks4' && s.command === 'bind'), 'the BIND session');
  });

  test('refusals answer 91 with a log line: blocked, refused, unresolvable, bad command, oversized user id', async () => {
    const dead = await deadPort();
    assert.equal((await ask(proxy.port, encodeSocks4Request('connect', domain('blocked.test', 80))))[1], 91);
    assert.ok(proxy.logger.has('blocked by rule "no blocked.test"'));
    assert.equal((await ask(proxy.port, encodeSocks4Request('connect', ipv4('127.0.0.1', dead))))[1], 91);
    assert.ok(proxy.logger.has('ECONNREFUSED'));
    assert.equal((await ask(proxy.port, encodeSocks4Request('connect', domain('no-such-host.invalid', 80))))[1], 91);
    assert.equal((await ask(proxy.port, Buffer.from([0x04, 0x03, 0, 80, 127, 0, 0, 1, 0])))[1], 91);
    assert.ok(proxy.logger.has('unknown SOCKS4 command 0x03'));
    assert.equal((await ask(proxy.port, Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 127, 0, 0, 1]), Buffer.alloc(300, 0x61)])))[1], 91);
    const failed = await curl(['--socks4', `127.0.0.1:${proxy.port}`, `http://127.0.0.1:${dead}/`]);
    assert.notEqual(failed.code, 0);
    // Still serving.
    const ok = await curl(['--socks4a', `127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/hello`]);
    assert.equal(ok.stdout, 'hello');
  });

  test('SOCKS4 is refused (91) when switched off, and while users are configured unless allowNoAuth', async () => {
    const req = encodeSocks4Request('connect', ipv4('127.0.0.1', echo.port));
    const off = await startProxy({ socks4: false });
    try {
      assert.equal((await ask(off.port, req))[1], 91);
      assert.ok(off.logger.has('SOCKS4 is disabled'));
      // Switching it back on at run time applies to new connections.
      off.server.configure({ socks4: true });
      assert.equal((await ask(off.port, req))[1], 90);
    } finally {
      await off.close();
    }
    const users = [{ username: 'u', password: 'p' }];
    const locked = await startProxy({ users });
    try {
      assert.equal((await ask(locked.port, req))[1], 91);
      assert.ok(locked.logger.has('SOCKS4 cannot carry a password and users are configured'));
      const viaCurl = await curl(['--socks4', `127.0.0.1:${locked.port}`, `http://127.0.0.1:${origin.port}/hello`]);
      assert.notEqual(viaCurl.code, 0);
    } finally {
      await locked.close();
    }
    const open = await startProxy({ users, allowNoAuth: true });
    try {
      assert.equal((await ask(open.port, req))[1], 90);
    } finally {
      await open.close();
    }
  });
});
