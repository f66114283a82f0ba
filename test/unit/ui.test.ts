/** The UI layer's pure parts: settings, terminal variables, status bar text, and the tree models. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSettings, listenerChanged, readSettings } from '../../src/ui/settings';
import { connectHost, proxyEnvironment, proxyUrl } from '../../src/ui/env';
import { isUpstreamAuthFailure, statusView } from '../../src/ui/status';
import { hostOf, sessionNode, sessionTree } from '../../src/ui/sessions-model';
import { configTree } from '../../src/ui/config-model';
import { routingConfig, withPassword } from '../../src/ui/routing-config';
import { buildRouter } from '../../src/core/routing';
import type { SessionInfo } from '../../src/core/registry';

test('settings: defaults, validation of garbage, upstream and rule shapes', () => {
  assert.deepEqual(readSettings(() => undefined), defaultSettings);
  const raw: Record<string, unknown> = {
    'listen.host': '::1',
    'listen.port': 99999, // out of range → default
    'auth.mode': 'bogus',
    upstreams: [{ name: 'corp', url: 'socks5h://me@proxy:1080' }, { name: 'chain', url: ['socks5://a:1', 'http://b:2'] }, { name: '', url: 'x' }, { url: 'nameless' }, 'junk'],
    rules: [{ match: '*.corp.example', action: 'corp' }, { match: 5 }],
    'terminal.variables': ['ALL_PROXY', 'EVIL', 'NO_PROXY'],
    'sessions.groupBy': 'host',
  };
  const s = readSettings((k) => raw[k]);
  assert.equal(s.host, '::1');
  assert.equal(s.port, 1080);
  assert.equal(s.auth, 'none');
  assert.deepEqual(s.upstreams.map((u) => u.name), ['corp', 'chain']);
  assert.deepEqual(s.rules, [{ match: '*.corp.example', action: 'corp' }]);
  assert.deepEqual(s.terminalVariables, ['ALL_PROXY', 'NO_PROXY']);
  assert.equal(s.sessionGrouping, 'host');
  assert.equal(listenerChanged(defaultSettings, { ...defaultSettings, rules: s.rules }), false, 'rules change live, no restart');
  assert.equal(listenerChanged(defaultSettings, { ...defaultSettings, port: 1081 }), true);
});

test('terminal environment: socks5h ALL_PROXY, HTTP side of the same port, lower-case twins, credentials encoded', () => {
  const l = { host: '127.0.0.1', port: 1080, credentials: { username: 'relay', password: 'p@ss/w:rd' } };
  const env = proxyEnvironment(l, ['ALL_PROXY', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'], 'localhost,127.0.0.1', true);
  assert.equal(env.ALL_PROXY, 'socks5h://relay:p%40ss%2Fw%3Ard@127.0.0.1:1080');
  assert.equal(env.all_proxy, env.ALL_PROXY);
  assert.equal(env.HTTP_PROXY, 'http://relay:p%40ss%2Fw%3Ard@127.0.0.1:1080');
  assert.equal(env.https_proxy, env.HTTP_PROXY);
  assert.equal(env.NO_PROXY, 'localhost,127.0.0.1');
  assert.deepEqual(Object.keys(proxyEnvironment(l, ['ALL_PROXY', 'HTTP_PROXY'], '', false)), ['ALL_PROXY', 'all_proxy'], 'HTTP off: no HTTP_PROXY');
  assert.equal(proxyUrl('socks5h', { host: '::', port: 1 }), 'socks5h://[::1]:1', 'wildcard listen address is reached over loopback');
  assert.equal(connectHost('0.0.0.0'), '127.0.0.1');
  assert.equal(proxyUrl('socks5h', l, false), 'socks5h://127.0.0.1:1080');
});

test('status bar: counters when running, clear looks when stopped or failed', () => {
  const running = statusView({ state: 'running', totals: { active: 3, opened: 9, bytesUp: 1_200_000, bytesDown: 4_500_000, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 }, listener: '127.0.0.1:1080', upstream: 'corp' });
  assert.equal(running.text, '$(radio-tower) 3 · ↑1.2 MB ↓4.5 MB');
  assert.match(running.tooltip, /\| Listener \| `127\.0\.0\.1:1080` \|/);
  assert.match(running.tooltip, /\| Upstream \| corp \|/);
  assert.equal(running.background, undefined);
  assert.equal(statusView({ state: 'stopped', upstream: 'direct' }).text, '$(circle-slash) SOCKS Relay: off');
  const failed = statusView({ state: 'error', upstream: 'direct', error: 'EADDRINUSE' });
  assert.equal(failed.background, 'error');
  assert.match(failed.tooltip, /EADDRINUSE/);
});

function info(over: Partial<SessionInfo>): SessionInfo {
  return {
    id: 1,
    protocol: 'socks5',
    command: 'connect',
    client: '127.0.0.1:5000',
    user: undefined,
    authMethod: undefined,
    destination: 'example.com:443',
    route: 'direct',
    state: 'open',
    startedAt: 1_000,
    closedAt: undefined,
    bytesUp: 100,
    bytesDown: 2_000,
    datagramsUp: 0,
    datagramsDown: 0,
    droppedDatagrams: 0,
    routeInfo: undefined,
    outcome: undefined,
    reply: undefined,
    outcomeKind: undefined,
    outcomeCode: undefined,
    failedHop: undefined,
    failedMember: undefined,
    ...over,
  };
}

test('sessions model: live rows, closed group with outcomes, filter and grouping by host', () => {
  const live = [info({ id: 1 }), info({ id: 2, destination: '[::1]:80', startedAt: 2_000, protocol: 'http', command: 'connect' })];
  const closed = [
    info({ id: 3, state: 'closed', closedAt: 5_000, outcome: 'ok', outcomeKind: 'ok', outcomeCode: 'OK' }),
    info({ id: 4, state: 'closed', closedAt: 6_000, outcome: 'connection refused: connect ECONNREFUSED', outcomeKind: 'failed', outcomeCode: 'ECONNREFUSED', reply: 5, destination: 'down.example:81' }),
  ];
  const nodes = sessionTree(live, closed, { filter: '', grouping: 'none', now: 12_000 });
  assert.deepEqual(nodes.map((n) => n.label), ['[::1]:80', 'example.com:443', 'Recently closed']);
  assert.equal(nodes[1].description, '↑100 B ↓2.0 KB · 11 s · SOCKS5 CONNECT · direct');
  assert.equal(nodes[1].contextValue, 'session.live');
  assert.equal(nodes[0].description, '↑100 B ↓2.0 KB · 10 s · HTTP CONNECT · direct');
  const group = nodes[2];
  assert.deepEqual(group.children?.map((c) => [c.label, c.icon, c.contextValue]), [
    ['down.example:81', 'error', 'session.closed'],
    ['example.com:443', 'pass', 'session.closed'],
  ]);
  assert.match(group.children?.[0].description ?? '', /connection refused/);
  assert.match(sessionNode(live[0], 12_000).tooltip ?? '', /Client: 127\.0\.0\.1:5000/);
  assert.deepEqual(sessionTree(live, closed, { filter: 'DOWN', grouping: 'none', now: 12_000 }).map((n) => n.label), ['Recently closed']);
  const byHost = sessionTree(live, closed, { filter: '', grouping: 'host', now: 12_000 });
  assert.deepEqual(byHost.map((n) => [n.label, n.description]), [
    ['::1', '1 active'],
    ['example.com', '1 active, 1 closed'],
    ['down.example', '0 active, 1 closed'],
  ]);
  assert.equal(hostOf('[2001:db8::1]:443'), '2001:db8::1');
  assert.equal(hostOf('a.b:1'), 'a.b');
  const udp = sessionNode(info({ command: 'udp-associate', datagramsUp: 3, datagramsDown: 2 }), 2_000);
  assert.match(udp.description ?? '', /3\/2 datagrams\)/);
  const lossy = sessionNode(info({ command: 'udp-associate', datagramsUp: 3, datagramsDown: 2, droppedDatagrams: 4 }), 2_000);
  assert.match(lossy.description ?? '', /3\/2 datagrams, 4 dropped\)/);
});

test('config tree: listener state, active upstream, rules with move positions, passwords redacted', () => {
  const settings = {
    ...defaultSettings,
    upstreams: [
      { name: 'corp', url: 'socks5h://me:leaked@proxy:1080' },
      { name: 'chain', url: ['socks5://a:1', 'http://b:2'] },
    ],
    activeUpstream: 'corp',
    rules: [
      { match: '*.corp.example', action: 'corp' },
      { match: 'port:25', action: 'block' },
    ],
  };
  const [listener, upstreams, rules] = configTree({ settings, state: 'running', listening: '127.0.0.1:1080' });
  assert.equal(listener.description, '127.0.0.1:1080 · running');
  assert.equal(listener.contextValue, 'listener.running');
  assert.deepEqual(upstreams.children?.map((c) => [c.label, c.contextValue]), [
    ['Direct', 'upstream.direct'],
    ['corp', 'upstream.active'],
    ['chain', 'upstream'],
  ]);
  assert.equal(upstreams.children?.[1].description, 'socks5h://me:***@proxy:1080 · active');
  assert.ok(!JSON.stringify(upstreams).includes('leaked'), 'password never shown');
  assert.equal(upstreams.children?.[2].description, 'socks5://a:1 → http://b:2');
  assert.deepEqual(rules.children?.map((c) => c.contextValue), ['rule[first]', 'rule[last]']);
  assert.equal(rules.children?.[1].icon, 'circle-slash');
  const stopped = configTree({ settings: { ...settings, activeUpstream: 'gone' }, state: 'error', error: 'EADDRINUSE' });
  assert.equal(stopped[0].contextValue, 'listener.stopped');
  assert.match(stopped[1].description ?? '', /"gone" is not defined/);
});

test('routing config from settings: stored passwords go into hop URLs and the engine accepts the result', () => {
  assert.equal(withPassword('socks5h://me@proxy:1080', 's3c/r@t'), 'socks5h://me:s3c%2Fr%40t@proxy:1080');
  assert.equal(withPassword('socks5h://proxy:1080', 'x'), 'socks5h://proxy:1080', 'no user: nothing to add');
  assert.equal(withPassword('socks5h://me:inline@proxy:1080', 'x'), 'socks5h://me:inline@proxy:1080');
  const settings = {
    ...defaultSettings,
    upstreams: [
      { name: 'corp', url: 'socks5h://me@proxy:1080' },
      { name: 'two', url: ['socks5://a:1', 'http://u@b:2'] },
    ],
    activeUpstream: 'two',
    rules: [{ match: '*.corp.example', action: 'corp' }],
  };
  const cfg = routingConfig(settings, (name, hop) => (name === 'two' && hop === 1 ? 'pw' : name === 'corp' ? 'cpw' : undefined));
  assert.deepEqual(cfg, {
    upstreams: [
      { name: 'corp', url: 'socks5h://me:cpw@proxy:1080' },
      { name: 'two', chain: ['socks5://a:1', 'http://u:pw@b:2'] },
    ],
    rules: [{ match: '*.corp.example', action: 'corp' }],
    default: 'two',
  });
  const router = buildRouter(cfg);
  const d = router.decide({ type: 'domain', host: 'git.corp.example', port: 443 }, { command: 'connect' });
  assert.equal(d.action, 'dial');
  assert.ok(!d.route.includes('cpw'), `route label has no password: ${d.route}`);
});

test('upstream credential failures are recognised from the engine\'s real messages', async () => {
  const { socks5Authenticate } = await import('../../src/core/upstream/socks5-client');
  const { parseUpstreamUrl } = await import('../../src/core/upstream/url');
  const net = await import('node:net');
  // A SOCKS5 upstream that selects username/password and then rejects it.
  const srv = net.createServer((s) => {
    s.once('data', () => {
      s.write(Buffer.from([5, 2]));
      s.once('data', () => s.end(Buffer.from([1, 1])));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as import('node:net').AddressInfo).port;
  const hop = parseUpstreamUrl(`socks5://me:wrong@127.0.0.1:${port}`);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let message = '';
  let code: string | undefined;
  try {
    if (hop.kind === 'direct') throw new Error('unexpected');
    await socks5Authenticate(sock, hop, new AbortController().signal);
  } catch (err) {
    message = (err as Error).message;
    code = (err as { code?: string }).code;
  }
  sock.destroy();
  srv.close();
  // The UI reads the code the session carries, never the text.
  assert.ok(isUpstreamAuthFailure({ outcomeCode: code }), message);
  assert.ok(!message.includes('wrong'), 'no password in the message');
  assert.ok(isUpstreamAuthFailure({ outcomeCode: 'UPSTREAM_AUTH_FAILED' }));
  assert.equal(isUpstreamAuthFailure({ outcomeCode: 'ECONNREFUSED' }), false);
  assert.equal(isUpstreamAuthFailure(undefined), false);
});
