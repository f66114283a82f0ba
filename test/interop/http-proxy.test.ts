/**
 * The HTTP proxy front end driven by real clients on loopback: curl (-x, -p, --proxy-user, --proxy-anyauth),
 * wget (http_proxy/https_proxy), Node fetch through undici's ProxyAgent and EnvHttpProxyAgent, and git clone
 * over smart HTTP (git http-backend) with http.proxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EnvHttpProxyAgent, fetch as undiciFetch, ProxyAgent } from 'undici';
import type { Endpoint } from '../../src/core/address';
import type { Dialer, RouteDecision, Router } from '../../src/core/dialer';
import { DirectDialer } from '../../src/core/direct';
import { ProxyError, Reply } from '../../src/core/errors';
import { cleanEnv, makeBareRepo, Origin, pattern, rawHeader, selfSignedCert, sha256, startGitServer, startOrigin, tempDir } from '../helpers/http-tools';
import { run } from '../helpers/run';
import { deadPort, startProxy } from '../helpers/servers';

const USERS = [{ username: 'alice', password: 'wonder land' }];

function curl(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 20_000) {
  return run('curl', ['-sS', '--max-time', String(Math.floor(timeoutMs / 1000) - 2), ...args], { env: cleanEnv(extraEnv), timeoutMs });
}

/** Headers of the last response in curl -D - output, lower-cased names. */
function responseHeaders(out: string): Map<string, string[]> {
  const starts = [...out.matchAll(/HTTP\/1\.[01] \d{3}/g)];
  const from = starts.at(-1)?.index ?? 0;
  const end = out.indexOf('\r\n\r\n', from);
  const map = new Map<string, string[]>();
  for (const line of out.slice(from, end < 0 ? undefined : end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    map.set(name, [...(map.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return map;
}

/** Polls until `check` is true (bounded). */
async function waitFor(check: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Routes everything directly except the named hosts, which are blocked; optionally a dialer per host. */
class TestRouter implements Router {
  private readonly direct = new DirectDialer(3_000);
  constructor(
    private readonly blocked: string[] = [],
    private readonly special: Record<string, Dialer> = {},
  ) {}
  decide(destination: Endpoint): RouteDecision {
    if (this.blocked.includes(destination.host)) return { action: 'block', route: 'rule "test block"' };
    const d = this.special[destination.host];
    if (d) return { action: 'dial', dialer: d, route: d.label };
    return { action: 'dial', dialer: this.direct, route: 'direct' };
  }
}

const timeoutDialer: Dialer = {
  label: 'slow-upstream',
  dial: () => Promise.reject(new ProxyError('CONNECT_TIMEOUT', 'connect to timeout.test:80 timed out after 10 ms', Reply.TTL_EXPIRED)),
};

/** An "upstream" that sends every destination to one local port and remembers what it was asked for. */
class RedirectDialer implements Dialer {
  readonly label = 'test-upstream';
  readonly asked: string[] = [];
  port = 0;
  dial(destination: Endpoint, options: { signal: AbortSignal }) {
    this.asked.push(`${destination.type}:${destination.host}:${destination.port}`);
    return new DirectDialer(3_000).dial({ type: 'ipv4', host: '127.0.0.1', port: this.port }, options);
  }
}
const redirect = new RedirectDialer();

describe('HTTP proxy with real clients', () => {
  let origin: Origin;
  let origin2: Origin;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let authProxy: Awaited<ReturnType<typeof startProxy>>;
  let dir: string;
  let tls: { key: string; cert: string } | undefined;
  let httpsOrigin: Origin | undefined;

  before(async () => {
    dir = tempDir('http');
    origin = await startOrigin();
    origin2 = await startOrigin();
    tls = await selfSignedCert(dir);
    if (tls) httpsOrigin = await startOrigin(undefined, tls);
    redirect.port = origin.port;
    proxy = await startProxy({ idleTimeoutMs: 1_500 }, new TestRouter(['blocked.test'], { 'timeout.test': timeoutDialer, 'upstream.test': redirect }));
    authProxy = await startProxy({ users: USERS });
  });

  after(async () => {
    await proxy.close();
    await authProxy.close();
    await origin.close();
    await origin2.close();
    await httpsOrigin?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('curl -x: keep-alive across two hosts, request target kept verbatim, hop-by-hop headers removed both ways', async () => {
    const before = origin.requests.length;
    const r = await curl([
      '-v',
      '--path-as-is',
      '-D',
      '-',
      '-x',
      `http://127.0.0.1:${proxy.port}`,
      '-H',
      'Connection: X-Secret',
      '-H',
      'X-Secret: 1',
      '-H',
      'Keep-Alive: timeout=300',
      '-H',
      'TE: trailers',
      '-H',
      'Trailer: X-T',
      '-H',
      'X-Keep: yes',
      `http://127.0.0.1:${origin.port}/a/../b?x=1%2F&y`,
      `http://localhost:${origin2.port}/hop`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Re-using existing connection/, 'the second request reused the client connection');
    const seen = origin.requests[before];
    assert.equal(seen.url, '/a/../b?x=1%2F&y');
    assert.deepEqual(rawHeader(seen.rawHeaders, 'host'), [`127.0.0.1:${origin.port}`]);
    assert.deepEqual(rawHeader(seen.rawHeaders, 'x-keep'), ['yes']);
    for (const hop of ['x-secret', 'keep-alive', 'te', 'trailer', 'proxy-connection', 'proxy-authorization', 'upgrade']) {
      assert.deepEqual(rawHeader(seen.rawHeaders, hop), [], `${hop} must not be forwarded`);
    }
    assert.match(rawHeader(seen.rawHeaders, 'via')[0] ?? '', /socks-relay/);
    const hopResponse = responseHeaders(r.stdout);
    assert.deepEqual(hopResponse.get('x-resp-keep'), ['1']);
    assert.equal(hopResponse.get('x-resp-hop'), undefined);
    assert.equal(hopResponse.get('proxy-authenticate'), undefined);
    assert.equal(hopResponse.get('trailer'), undefined);
    assert.ok(!(hopResponse.get('keep-alive') ?? []).some((v) => v.includes('max=3')), 'the origin Keep-Alive is not passed on');
    assert.ok(r.stdout.endsWith('hop'));
    const sessions = proxy.server.registry.recentlyClosed().filter((s) => s.protocol === 'http').slice(-2);
    assert.deepEqual(
      sessions.map((s) => [s.command, s.destination, s.route, s.outcome]),
      [
        ['http', `127.0.0.1:${origin.port}`, 'direct', 'ok'],
        ['http', `localhost:${origin2.port}`, 'direct', 'ok'],
      ],
    );
  });

  test('curl -x: bodies stream intact both ways (Content-Length, chunked upload, chunked download)', async () => {
    const upload = path.join(dir, 'upload.bin');
    const data = pattern(3_000_000, 3);
    fs.writeFileSync(upload, data);
    const base = ['-x', `http://127.0.0.1:${proxy.port}`];
    const echoFile = path.join(dir, 'echo.bin');
    const echoed = await curl([...base, '-o', echoFile, '--data-binary', `@${upload}`, '-H', 'Content-Type: application/octet-stream', `http://127.0.0.1:${origin.port}/echo`]);
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.equal(sha256(fs.readFileSync(echoFile)), sha256(data));
    // curl sends a chunked body when told to; the origin must see the same bytes.
    const before = origin.requests.length;
    const chunked = await curl([...base, '--data-binary', `@${upload}`, '-H', 'Transfer-Encoding: chunked', `http://127.0.0.1:${origin.port}/upload`]);
    assert.equal(chunked.code, 0, chunked.stderr);
    const seen = origin.requests[before];
    assert.equal(seen.bodyLength, data.length);
    assert.equal(seen.bodySha, sha256(data));
    assert.deepEqual(rawHeader(seen.rawHeaders, 'transfer-encoding'), ['chunked']);
    const out = path.join(dir, 'download.bin');
    const big = await curl([...base, '-o', out, `http://127.0.0.1:${origin.port}/big?n=5000000`]);
    assert.equal(big.code, 0, big.stderr);
    assert.equal(sha256(fs.readFileSync(out)), sha256(pattern(5_000_000)));
    const head = await curl([...base, '-I', `http://127.0.0.1:${origin.port}/fixed?n=1234`]);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout, /content-length: 1234/i);
  });

  test('curl -p: CONNECT tunnel, and HTTPS through CONNECT with a self-signed certificate', async () => {
    const r = await curl(['-v', '-p', '-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/hello`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
    assert.match(r.stderr, /HTTP\/1\.1 200 Connection established/);
    await waitFor(() => proxy.server.registry.recentlyClosed().some((s) => s.command === 'connect'), 'the tunnel session to close');
    const tunnel = proxy.server.registry.recentlyClosed().filter((s) => s.command === 'connect').at(-1);
    assert.equal(tunnel?.protocol, 'http');
    assert.equal(tunnel?.destination, `127.0.0.1:${origin.port}`);
    assert.ok((tunnel?.bytesUp ?? 0) > 0 && (tunnel?.bytesDown ?? 0) > 0);
    // scripts/ensure-tools.sh installs openssl; without it this test must fail, not pass half-run.
    assert.ok(httpsOrigin, 'openssl is needed for the HTTPS part (bash scripts/ensure-tools.sh installs it)');
    const s = await curl(['-k', '-x', `http://127.0.0.1:${proxy.port}`, `https://127.0.0.1:${httpsOrigin.port}/hello`]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, 'hello');
    const env = await curl(['-k', `https://127.0.0.1:${httpsOrigin.port}/hello`], { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout, 'hello');
  });

  test('curl --proxy-user: 407 with Proxy-Authenticate when missing or wrong, accepted when right, for requests and CONNECT', async () => {
    const x = ['-x', `http://127.0.0.1:${authProxy.port}`];
    const url = `http://127.0.0.1:${origin.port}/hello`;
    const none = await curl([...x, '-D', '-', '-o', '/dev/null', url]);
    assert.match(none.stdout, /^HTTP\/1\.1 407 /);
    assert.deepEqual(responseHeaders(none.stdout).get('proxy-authenticate'), ['Basic realm="SOCKS Relay"']);
    const wrong = await curl([...x, '--proxy-user', 'alice:nope', '-D', '-', '-o', '/dev/null', url]);
    assert.match(wrong.stdout, /^HTTP\/1\.1 407 /);
    assert.ok(authProxy.logger.has('authentication failed for user "alice"'));
    const right = await curl([...x, '--proxy-user', 'alice:wonder land', url]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout, 'hello');
    // --proxy-anyauth first asks without credentials and answers the 407 on the same connection.
    const any = await curl(['-v', ...x, '--proxy-anyauth', '--proxy-user', 'alice:wonder land', url]);
    assert.equal(any.stdout, 'hello', any.stderr);
    assert.match(any.stderr, /407 Proxy Authentication Required/);
    const tunnelNone = await curl(['-p', ...x, url]);
    assert.notEqual(tunnelNone.code, 0);
    assert.match(tunnelNone.stderr, /407/);
    const tunnel = await curl(['-p', ...x, '--proxy-user', 'alice:wonder land', url]);
    assert.equal(tunnel.stdout, 'hello', tunnel.stderr);
    const tunnelAny = await curl(['-p', ...x, '--proxy-anyauth', '--proxy-user', 'alice:wonder land', url]);
    assert.equal(tunnelAny.stdout, 'hello', tunnelAny.stderr);
    // Tunnels are recorded when both sides have closed, which may be just after curl exits.
    await waitFor(() => authProxy.server.registry.recentlyClosed().filter((s) => s.outcome === 'ok').length >= 4, 'four successful sessions');
    const users = authProxy.server.registry
      .recentlyClosed()
      .filter((s) => s.outcome === 'ok')
      .map((s) => s.user);
    assert.ok(users.length >= 4 && users.every((u) => u === 'alice'), JSON.stringify(authProxy.server.registry.recentlyClosed()));
  });

  test('wget with http_proxy and https_proxy', async () => {
    const out = path.join(dir, 'wget.out');
    const r = await run('wget', ['--no-config', '-q', '-O', out, '--tries=1', '--timeout=10', `http://127.0.0.1:${origin.port}/big?n=200000`], {
      env: cleanEnv({ http_proxy: `http://127.0.0.1:${proxy.port}` }),
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(fs.readFileSync(out)), sha256(pattern(200_000)));
    const auth = await run('wget', ['--no-config', '-q', '-O', '-', '--tries=1', '--timeout=10', '--proxy-user=alice', '--proxy-password=wonder land', `http://127.0.0.1:${origin.port}/hello`], {
      env: cleanEnv({ http_proxy: `http://127.0.0.1:${authProxy.port}` }),
      timeoutMs: 20_000,
    });
    assert.equal(auth.code, 0, auth.stderr);
    assert.equal(auth.stdout, 'hello');
    // scripts/ensure-tools.sh installs openssl; without it this test must fail, not pass half-run.
    assert.ok(httpsOrigin, 'openssl is needed for the HTTPS part (bash scripts/ensure-tools.sh installs it)');
    const s = await run('wget', ['--no-config', '-q', '-O', '-', '--tries=1', '--timeout=10', '--no-check-certificate', `https://127.0.0.1:${httpsOrigin.port}/hello`], {
      env: cleanEnv({ https_proxy: `http://127.0.0.1:${proxy.port}` }),
      timeoutMs: 20_000,
    });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, 'hello');
  });

  test('Node fetch through undici ProxyAgent and EnvHttpProxyAgent', async () => {
    const agent = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
    try {
      const res = await undiciFetch(`http://127.0.0.1:${origin.port}/hello`, { dispatcher: agent, signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'hello');
      const body = pattern(500_000, 9);
      const echoed = await undiciFetch(`http://127.0.0.1:${origin.port}/echo`, { method: 'POST', body, dispatcher: agent, signal: AbortSignal.timeout(10_000) });
      assert.equal(sha256(Buffer.from(await echoed.arrayBuffer())), sha256(body));
    } finally {
      await agent.close();
    }
    const authed = new ProxyAgent({ uri: `http://127.0.0.1:${authProxy.port}`, token: `Basic ${Buffer.from('alice:wonder land').toString('base64')}` });
    const unauthed = new ProxyAgent(`http://127.0.0.1:${authProxy.port}`);
    try {
      const ok = await undiciFetch(`http://127.0.0.1:${origin.port}/hello`, { dispatcher: authed, signal: AbortSignal.timeout(10_000) });
      assert.equal(await ok.text(), 'hello');
      await assert.rejects(undiciFetch(`http://127.0.0.1:${origin.port}/hello`, { dispatcher: unauthed, signal: AbortSignal.timeout(10_000) }));
    } finally {
      await authed.close();
      await unauthed.close();
    }
    const env = new EnvHttpProxyAgent({ httpProxy: `http://127.0.0.1:${proxy.port}`, httpsProxy: `http://127.0.0.1:${proxy.port}`, noProxy: '' });
    try {
      const before = proxy.server.registry.totals().opened;
      const res = await undiciFetch(`http://127.0.0.1:${origin2.port}/hello`, { dispatcher: env, signal: AbortSignal.timeout(10_000) });
      assert.equal(await res.text(), 'hello');
      assert.ok(proxy.server.registry.totals().opened > before, 'the request went through the proxy');
    } finally {
      await env.close();
    }
  });

  test('git clone over smart HTTP through http.proxy, without and with proxy credentials', async () => {
    const root = path.join(dir, 'git');
    fs.mkdirSync(root);
    const head = await makeBareRepo(root, 'repo');
    const git = await startGitServer(root);
    try {
      for (const [proxyUrl, name] of [
        [`http://127.0.0.1:${proxy.port}`, 'plain'],
        [`http://alice:wonder%20land@127.0.0.1:${authProxy.port}`, 'auth'],
      ]) {
        const dest = path.join(dir, `clone-${name}`);
        const r = await run('git', ['-c', `http.proxy=${proxyUrl}`, 'clone', '-q', `http://127.0.0.1:${git.port}/repo.git`, dest], { env: cleanEnv(), timeoutMs: 60_000 });
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        const log = await run('git', ['-C', dest, 'rev-parse', 'HEAD'], { env: cleanEnv() });
        assert.equal(log.stdout.trim(), head);
        assert.equal(sha256(fs.readFileSync(path.join(dest, 'blob.bin'))), sha256(pattern(300_000, 7)));
      }
      assert.ok(git.requests.some((r) => r.method === 'POST' && r.url.endsWith('/git-upload-pack')), 'smart HTTP was used');
      for (const p of [proxy, authProxy]) {
        const via = p.server.registry.recentlyClosed().filter((s) => s.destination === `127.0.0.1:${git.port}` && s.outcome === 'ok');
        assert.ok(via.length >= 2, 'git went through the proxy');
      }
    } finally {
      await git.close();
    }
  });

  test('requests and tunnels go through the dialer the router picked, with the name unresolved', async () => {
    const forward = await curl(['-x', `http://127.0.0.1:${proxy.port}`, 'http://upstream.test/hello']);
    assert.equal(forward.stdout, 'hello', forward.stderr);
    const tunnel = await curl(['-p', '-x', `http://127.0.0.1:${proxy.port}`, 'http://upstream.test:8080/hello']);
    assert.equal(tunnel.stdout, 'hello', tunnel.stderr);
    assert.deepEqual(redirect.asked, ['domain:upstream.test:80', 'domain:upstream.test:8080']);
    await waitFor(() => proxy.server.registry.recentlyClosed().some((s) => s.destination === 'upstream.test:8080'), 'the tunnel session');
    const routes = proxy.server.registry
      .recentlyClosed()
      .filter((s) => s.destination?.startsWith('upstream.test'))
      .map((s) => [s.command, s.route]);
    assert.deepEqual(routes, [
      ['http', 'test-upstream'],
      ['connect', 'test-upstream'],
    ]);
  });

  test('errors are HTTP responses: 403 blocked, 502 refused or unresolvable, 504 connect and response timeouts', async () => {
    const x = ['-x', `http://127.0.0.1:${proxy.port}`, '-o', '/dev/null', '-w', '%{http_code}'];
    const blocked = await curl([...x, 'http://blocked.test/']);
    assert.equal(blocked.stdout, '403');
    assert.ok(proxy.logger.has('refused with 403 Forbidden: blocked by rule "test block"'));
    const dead = await deadPort();
    const refused = await curl([...x, `http://127.0.0.1:${dead}/`]);
    assert.equal(refused.stdout, '502');
    const nxdomain = await curl([...x, 'http://no-such-host.invalid/']);
    assert.equal(nxdomain.stdout, '502');
    const timeout = await curl([...x, 'http://timeout.test/']);
    assert.equal(timeout.stdout, '504');
    const slow = await curl([...x, `http://127.0.0.1:${origin.port}/never`]);
    assert.equal(slow.stdout, '504');
    const tunnelRefused = await curl(['-p', '-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${dead}/`]);
    assert.match(tunnelRefused.stderr, /502/);
    const tunnelBlocked = await curl(['-p', '-x', `http://127.0.0.1:${proxy.port}`, 'http://blocked.test/']);
    assert.match(tunnelBlocked.stderr, /403/);
    const closed = proxy.server.registry.recentlyClosed().slice(-7);
    assert.deepEqual(
      closed.map((s) => s.reply),
      [403, 502, 502, 504, 504, 502, 403],
    );
    // The listener keeps serving.
    const ok = await curl(['-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${origin.port}/hello`]);
    assert.equal(ok.stdout, 'hello');
  });
});
