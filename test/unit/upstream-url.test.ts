import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hopLabel, parseChain, parseUpstreamUrl, redactUrl, UpstreamHop } from '../../src/core/upstream/url';
import { ProxyError } from '../../src/core/errors';

function hop(url: string): UpstreamHop {
  const s = parseUpstreamUrl(url);
  assert.notEqual(s.kind, 'direct');
  return s as UpstreamHop;
}

function rejects(url: string, fragment: RegExp): ProxyError {
  let caught: unknown;
  try {
    parseUpstreamUrl(url);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ProxyError, `${url} should be rejected`);
  assert.equal(caught.code, 'BAD_UPSTREAM_URL');
  assert.match(caught.message, fragment);
  return caught;
}

test('socks5 and socks5h: credentials, ports, DNS side', () => {
  const a = hop('socks5://alice:s3cret@proxy.example:1081');
  assert.deepEqual(
    { kind: a.kind, scheme: a.scheme, host: a.host, port: a.port, username: a.username, password: a.password, remoteDns: a.remoteDns },
    { kind: 'socks5', scheme: 'socks5', host: 'proxy.example', port: 1081, username: 'alice', password: 's3cret', remoteDns: false },
  );
  const b = hop('SOCKS5H://proxy.example');
  assert.equal(b.remoteDns, true);
  assert.equal(b.port, 1080);
  assert.equal(b.username, undefined);
  const c = hop('socks5h://user%40corp:p%3Ass%2Fw@10.0.0.1:1080');
  assert.equal(c.username, 'user@corp');
  assert.equal(c.password, 'p:ss/w');
});

test('IPv6 literals, socks4/4a, http/https defaults and TLS options', () => {
  const v6 = hop('socks5://[::1]:9050');
  assert.equal(v6.host, '::1');
  assert.equal(hopLabel(v6), 'socks5://[::1]:9050');
  const s4 = hop('socks4://me@127.0.0.1:1080');
  assert.equal(s4.kind, 'socks4');
  assert.equal(s4.remoteDns, false);
  assert.equal(s4.username, 'me');
  assert.equal(hop('socks4a://h:1').remoteDns, true);
  const h = hop('http://u:p@proxy:3128');
  assert.equal(h.kind, 'http');
  assert.equal(h.port, 3128);
  assert.equal(h.tls, undefined);
  assert.equal(hop('http://proxy').port, 80);
  const s = hop('https://proxy?insecure=1');
  assert.equal(s.port, 443);
  assert.deepEqual(s.tls, { rejectUnauthorized: false });
  assert.deepEqual(hop('https://proxy:8443?ca=/etc/ca.pem&servername=p.example').tls, { rejectUnauthorized: true, caFile: '/etc/ca.pem', servername: 'p.example' });
  assert.deepEqual(parseUpstreamUrl('direct'), { kind: 'direct' });
  assert.deepEqual(parseUpstreamUrl(' DIRECT '), { kind: 'direct' });
});

test('invalid URLs get clear errors that never show the password', () => {
  const e = rejects('ftp://bob:hunter2@host:21', /unsupported scheme "ftp"/);
  assert.ok(!e.message.includes('hunter2'));
  assert.match(e.message, /bob:\*\*\*@/);
  rejects('proxy.example:1080', /expected scheme:\/\/host:port/);
  rejects('', /empty/);
  rejects('socks5://host:70000', /port/);
  rejects('socks5://host:0', /port/);
  rejects('socks5://:1080', /host/);
  rejects('socks5://host:1080/path', /unexpected path/);
  rejects('socks5://onlyuser@host:1080', /both a username and a password/);
  const s4 = rejects('socks4://u:topsecret@host:1080', /SOCKS4 has no passwords/);
  assert.ok(!s4.message.includes('topsecret'));
  rejects('socks5://host?insecure=1', /https:\/\/ upstreams only/);
  rejects('https://host?bogus=1', /unknown option "bogus"/);
  rejects('socks5://bad host:1080', /not a well-formed URL|not a valid host/);
  rejects(`socks5://${'u'.repeat(256)}:p@host`, /longer than 255/);
});

test('redactUrl hides passwords wherever they appear', () => {
  assert.equal(redactUrl('socks5://me:pw@h:1'), 'socks5://me:***@h:1');
  assert.equal(redactUrl('via http://a:b@x:3128 then socks5h://c:d@y:1080'), 'via http://a:***@x:3128 then socks5h://c:***@y:1080');
  assert.equal(redactUrl('socks5://me@h:1'), 'socks5://me@h:1');
  assert.equal(redactUrl('no url here'), 'no url here');
});

test('labels show the user but not the password; chains drop "direct"', () => {
  assert.equal(hopLabel(hop('socks5h://alice:pw@proxy:1080')), 'socks5h://alice@proxy:1080');
  const chain = parseChain(['direct', 'socks5://a:1', 'http://b:2']);
  assert.deepEqual(
    chain.map((h) => hopLabel(h)),
    ['socks5://a:1', 'http://b:2'],
  );
  assert.deepEqual(parseChain(['direct']), []);
});
