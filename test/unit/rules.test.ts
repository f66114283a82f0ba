import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../src/core/address';
import { compileRules, firstMatch, parseCondition, parseMatch, ruleMatches } from '../../src/core/rules';
import { buildRouter, validateRoutingConfig } from '../../src/core/routing';
import { ProxyError } from '../../src/core/errors';
import type { RouteDecision } from '../../src/core/dialer';
import { Cancellation } from '../../src/core/cancel';
import { silentLogger } from '../../src/core/log';
import { ProxyServer } from '../../src/core/server';
import { deadPort, startEchoServer } from '../helpers/servers';

function matches(match: string, host: string, port = 443): boolean {
  const [rule] = compileRules([{ match, action: 'direct' }]);
  return ruleMatches(rule, endpoint(host, port));
}

function throwsRule(fn: () => unknown, fragment: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ProxyError && err.code === 'BAD_RULE' && fragment.test(err.message));
}

test('exact domains: case-insensitive, trailing dot ignored, no subdomains', () => {
  assert.ok(matches('example.com', 'example.com'));
  assert.ok(matches('Example.COM', 'example.com.'));
  assert.ok(matches('example.com.', 'EXAMPLE.com'));
  assert.ok(!matches('example.com', 'www.example.com'));
  assert.ok(!matches('example.com', 'notexample.com'));
  assert.ok(!matches('example.com', '93.184.216.34'));
});

test('wildcards match names below the domain only', () => {
  assert.ok(matches('*.corp.example', 'a.corp.example'));
  assert.ok(matches('*.corp.example', 'x.y.CORP.example'));
  assert.ok(!matches('*.corp.example', 'corp.example'));
  assert.ok(!matches('*.corp.example', 'evilcorp.example'));
  assert.ok(!matches('*.corp.example', 'corp.example.evil'));
  assert.ok(matches('*', 'anything.at.all'));
  assert.ok(matches('*', '10.1.2.3'));
  assert.ok(matches('*', '::1'));
});

test('IPv4 CIDR blocks and single addresses; names never match an IP rule', () => {
  assert.ok(matches('10.0.0.0/8', '10.255.1.2'));
  assert.ok(!matches('10.0.0.0/8', '11.0.0.1'));
  assert.ok(matches('192.168.1.0/24', '192.168.1.77'));
  assert.ok(!matches('192.168.1.0/24', '192.168.2.1'));
  assert.ok(matches('127.0.0.1', '127.0.0.1'));
  assert.ok(!matches('127.0.0.1', '127.0.0.2'));
  assert.ok(matches('0.0.0.0/0', '8.8.8.8'));
  assert.ok(!matches('0.0.0.0/0', '::1'), 'an IPv4 block does not match IPv6');
  assert.ok(!matches('10.0.0.0/8', 'ten.example'));
  // IPv4-mapped IPv6 destinations are normalized to IPv4 by endpoint()
  assert.ok(matches('10.0.0.0/8', '::ffff:10.1.1.1'));
});

test('IPv6 CIDR blocks', () => {
  assert.ok(matches('fd00::/8', 'fd12:3456::1'));
  assert.ok(!matches('fd00::/8', 'fe80::1'));
  assert.ok(matches('2001:db8::/32', '2001:db8:ffff::1'));
  assert.ok(!matches('2001:db8::/32', '2001:db9::1'));
  assert.ok(matches('::1', '::1'));
  assert.ok(matches('[::1]', '::1'));
  assert.ok(matches('::/0', '2a00::1'));
  assert.ok(!matches('::/0', '1.2.3.4'));
});

test('ports, ranges and combined conditions', () => {
  assert.ok(matches('port:25', 'mail.example', 25));
  assert.ok(!matches('port:25', 'mail.example', 26));
  assert.ok(matches('port:8000-8999', '1.2.3.4', 8000));
  assert.ok(matches('port:8000-8999', '1.2.3.4', 8999));
  assert.ok(!matches('port:8000-8999', '1.2.3.4', 9000));
  assert.ok(matches('*.corp.example port:443', 'git.corp.example', 443));
  assert.ok(!matches('*.corp.example port:443', 'git.corp.example', 22));
  assert.ok(!matches('*.corp.example port:443', 'git.other.example', 443));
});

test('invalid matches are rejected with a reason', () => {
  throwsRule(() => parseCondition('10.0.0.0/33'), /prefix length must be 0 to 32/);
  throwsRule(() => parseCondition('fd00::/129'), /0 to 128/);
  throwsRule(() => parseCondition('300.1.1.1/8'), /not an IPv4 or IPv6 address/);
  throwsRule(() => parseCondition('port:70000'), /above 65535/);
  throwsRule(() => parseCondition('port:9-1'), /empty/);
  throwsRule(() => parseCondition('port:http'), /not a port number/);
  throwsRule(() => parseCondition('a*.example'), /wildcard/);
  throwsRule(() => parseCondition('*.'), /wildcard/);
  throwsRule(() => parseCondition('exa mple'), /domain name/);
  throwsRule(() => parseCondition('ex!ample.com'), /domain name/);
  throwsRule(() => parseMatch('   '), /needs a match/);
  throwsRule(() => compileRules([{ match: 'ok.example', action: 'direct' }, { match: '1.2.3.4/99', action: 'direct' }]), /^rule 2: /);
});

test('first match wins, in order', () => {
  const rules = compileRules([
    { match: 'port:25', action: 'block' },
    { match: '*.corp.example', action: 'corp' },
    { match: '10.0.0.0/8', action: 'direct' },
    { match: '*', action: 'other' },
  ]);
  assert.equal(firstMatch(rules, endpoint('smtp.corp.example', 25))?.index, 1);
  assert.equal(firstMatch(rules, endpoint('smtp.corp.example', 587))?.index, 2);
  assert.equal(firstMatch(rules, endpoint('10.9.9.9', 80))?.index, 3);
  assert.equal(firstMatch(rules, endpoint('example.org', 80))?.index, 4);
  assert.equal(firstMatch(rules.slice(0, 3), endpoint('example.org', 80)), undefined);
});

function route(d: RouteDecision): string {
  return d.action === 'dial' ? `${d.route} [${d.dialer.label}]` : `${d.route} [block]`;
}

test('router: actions, labels and the default route', () => {
  const router = buildRouter({
    upstreams: [
      { name: 'corp', url: 'socks5h://me:secret@proxy.corp.example:1080' },
      { name: 'two', chain: ['socks5://a:1080', 'http://b:3128'] },
      { name: 'ha', failover: ['corp', 'two', 'direct'] },
    ],
    rules: [
      { match: '*.corp.example', action: 'corp' },
      { match: '10.0.0.0/8', action: 'direct' },
      { match: 'port:25', action: 'block' },
      { match: 'fd00::/8', action: 'two' },
    ],
    default: 'ha',
  });
  const ctx = { command: 'connect' as const };
  assert.equal(route(router.decide(endpoint('git.corp.example', 443), ctx)), 'rule 1 (*.corp.example) → corp [socks5h://me@proxy.corp.example:1080]');
  assert.equal(route(router.decide(endpoint('10.1.2.3', 80), ctx)), 'rule 2 (10.0.0.0/8) → direct [direct]');
  assert.equal(route(router.decide(endpoint('mail.example', 25), ctx)), 'rule 3 (port:25) → block [block]');
  assert.equal(route(router.decide(endpoint('fd00::5', 80), ctx)), 'rule 4 (fd00::/8) → two [socks5://a:1080 → http://b:3128]');
  const d = router.decide(endpoint('example.org', 443), ctx);
  assert.match(route(d), /^default → ha \[ha \(failover: socks5h:\/\/me@proxy.corp.example:1080 \| socks5:\/\/a:1080 → http:\/\/b:3128 \| direct\)\]$/);
  // The same dialer instance every time (UDP associations key their paths by dialer).
  assert.equal(router.decide(endpoint('a.corp.example', 1), ctx), router.decide(endpoint('b.corp.example', 2), ctx));
  assert.ok(!JSON.stringify(router.decide(endpoint('git.corp.example', 443), ctx).route).includes('secret'));
  assert.equal(buildRouter({}).decide(endpoint('x.example', 1), ctx).route, 'default → direct');
  assert.equal(buildRouter({ default: 'block' }).decide(endpoint('x.example', 1), ctx).action, 'block');
});

test('router config errors are clear and never leak passwords', () => {
  throwsRule(() => buildRouter({ rules: [{ match: '*', action: 'nope' }] }), /rule 1: action "nope" is not "direct", "block" or a defined upstream/);
  throwsRule(() => buildRouter({ default: 'nope' }), /default: action "nope"/);
  throwsRule(() => buildRouter({ upstreams: [{ name: 'direct', url: 'socks5://h:1' }] }), /reserved/);
  throwsRule(() => buildRouter({ upstreams: [{ name: 'a', url: 'socks5://h:1' }, { name: 'a', url: 'socks5://h:2' }] }), /defined twice/);
  throwsRule(() => buildRouter({ upstreams: [{ name: 'a', url: 'socks5://h:1', chain: ['socks5://h:2'] }] }), /exactly one of/);
  throwsRule(() => buildRouter({ upstreams: [{ name: 'a', failover: ['b'] }] }), /not a defined upstream/);
  throwsRule(() => buildRouter({ rules: [{ match: '*', action: 'direct', extra: 1 }] }), /unknown key "extra"/);
  throwsRule(() => buildRouter([]), /expected a JSON object/);
  throwsRule(() => validateRoutingConfig({ rules: {} }), /rules: expected a list/);
  let message = '';
  try {
    buildRouter({ upstreams: [{ name: 'x', url: 'gopher://u:supersecret@h:1' }] });
  } catch (err) {
    message = (err as Error).message;
  }
  assert.match(message, /upstream "x": invalid upstream URL "gopher:\/\/u:\*\*\*@h:1"/);
  assert.ok(!message.includes('supersecret'));
});

test('failover group: the route listener hears which member carried the request, a URL member without its password', async () => {
  const echo = await startEchoServer();
  const upstream = new ProxyServer({ host: '127.0.0.1', port: 0, users: [{ username: 'u', password: 'secret' }] }, silentLogger);
  const { port } = await upstream.listen();
  const dead = await deadPort();
  try {
    const router = buildRouter({ upstreams: [{ name: 'g', failover: [`socks5://u:secret@127.0.0.1:${dead}`, `socks5://u:secret@127.0.0.1:${port}`, 'direct'] }], default: 'g' });
    const decision = router.decide(endpoint('127.0.0.1', echo.port), { command: 'connect' });
    assert.equal(decision.action, 'dial');
    if (decision.action !== 'dial') return;
    const heard: string[] = [];
    const socket = await decision.dialer.dial(endpoint('127.0.0.1', echo.port), { signal: new Cancellation().signal, route: { via: (m) => heard.push(m) } });
    socket.destroy();
    assert.deepEqual(heard, [`socks5://u:***@127.0.0.1:${port}`]);
  } finally {
    await upstream.close();
    await echo.close();
  }
});
