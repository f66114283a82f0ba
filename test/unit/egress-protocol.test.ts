/** The egress tunnel's wire contract (protocol.ts): proofs, the agent's URLs, :authority. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentProof, agentUrls, authorityOf, endpointProof, parseAuthority, proofMatches, randomToken, validToken } from '../../src/core/egress/protocol';

const SECRET = 'aaaaaaaaaaaaaaaaaaaaaaaa';

test('proofs: the right secret matches; another secret, challenge, nonce or role does not', () => {
  const challenge = randomToken(24);
  const nonce = randomToken(24);
  const proof = agentProof(SECRET, challenge, nonce);
  assert.ok(proofMatches(agentProof(SECRET, challenge, nonce), proof));
  assert.ok(!proofMatches(agentProof('bbbbbbbbbbbbbbbbbbbbbbbb', challenge, nonce), proof), 'another secret');
  assert.ok(!proofMatches(agentProof(SECRET, randomToken(24), nonce), proof), 'another challenge');
  assert.ok(!proofMatches(agentProof(SECRET, challenge, randomToken(24)), proof), 'another nonce');
  // The endpoint's proof cannot be replayed as the agent's (or the reverse): the role is part of the MAC.
  assert.ok(!proofMatches(agentProof(SECRET, challenge, nonce), endpointProof(SECRET, challenge, nonce)));
  assert.ok(!proofMatches(endpointProof(SECRET, nonce, challenge), agentProof(SECRET, challenge, nonce)));
  assert.ok(!proofMatches(proof, undefined), 'no proof');
  assert.ok(!proofMatches(proof, ''), 'empty proof');
  assert.ok(!proofMatches(proof, proof.slice(0, -1)), 'a shorter proof (no throw from timingSafeEqual)');
  assert.ok(!proofMatches(proof, proof + 'A'), 'a longer proof');
  assert.ok(!proof.includes(SECRET), 'the proof does not carry the secret');
});

test('validToken: what randomToken makes; short or foreign characters are not secrets', () => {
  assert.ok(validToken(randomToken()));
  assert.ok(validToken('A'.repeat(16)));
  assert.ok(!validToken('A'.repeat(15)));
  assert.ok(!validToken(undefined));
  assert.ok(!validToken('abcdefghijklmnop qrs'));
  assert.ok(!validToken('abcdefghijklmnop+/='));
});

test('agentUrls: the base as given, with or without a trailing slash, under a path prefix (code-server)', () => {
  let u = agentUrls('http://127.0.0.1:8080/');
  assert.equal(u.challenge.href, 'http://127.0.0.1:8080/socks-relay/egress/v1/challenge');
  assert.equal(u.tunnel.href, 'ws://127.0.0.1:8080/socks-relay/egress/v1');
  u = agentUrls('http://127.0.0.1:8080');
  assert.equal(u.tunnel.href, 'ws://127.0.0.1:8080/socks-relay/egress/v1');
  u = agentUrls('http://host.example/proxy/8080/');
  assert.equal(u.challenge.href, 'http://host.example/proxy/8080/socks-relay/egress/v1/challenge');
  assert.equal(u.tunnel.href, 'ws://host.example/proxy/8080/socks-relay/egress/v1');
  // Without the trailing slash the last segment is still part of the base, not replaced.
  u = agentUrls('http://host.example/proxy/8080');
  assert.equal(u.challenge.href, 'http://host.example/proxy/8080/socks-relay/egress/v1/challenge');
  assert.equal(u.tunnel.href, 'ws://host.example/proxy/8080/socks-relay/egress/v1');
  u = agentUrls('https://8080-abc.app.github.dev/proxy/8080/?x=1#frag');
  assert.equal(u.challenge.href, 'https://8080-abc.app.github.dev/proxy/8080/socks-relay/egress/v1/challenge');
  assert.equal(u.tunnel.href, 'wss://8080-abc.app.github.dev/proxy/8080/socks-relay/egress/v1');
  u = agentUrls('http://[::1]:9000/');
  assert.equal(u.tunnel.href, 'ws://[::1]:9000/socks-relay/egress/v1');
});

test('agentUrls: not a URL, another scheme, or credentials in it are refused with a reason', () => {
  assert.throws(() => agentUrls('127.0.0.1:8080'), /must be an http:\/\/ or https:\/\/ address|is not a URL/);
  assert.throws(() => agentUrls('not a url'), /is not a URL/);
  assert.throws(() => agentUrls('ws://127.0.0.1:8080/'), /must be an http:\/\/ or https:\/\/ address/);
  assert.throws(() => agentUrls('ftp://127.0.0.1/'), /must be an http:\/\/ or https:\/\/ address/);
  assert.throws(() => agentUrls('http://me:secret@127.0.0.1:8080/'), /must not contain credentials/);
  assert.throws(() => agentUrls('http://me@127.0.0.1:8080/'), /must not contain credentials/);
});

test('authorityOf and parseAuthority: names, IPv4, IPv6 in brackets; round trip', () => {
  assert.equal(authorityOf('example.com', 443), 'example.com:443');
  assert.equal(authorityOf('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(authorityOf('::1', 8080), '[::1]:8080');
  assert.equal(authorityOf('2001:db8::5', 22), '[2001:db8::5]:22');
  for (const [host, port] of [
    ['example.com', 443],
    ['10.0.0.1', 1],
    ['::1', 65535],
    ['2001:db8::5', 22],
    ['::ffff:10.1.2.3', 80],
  ] as const) {
    assert.deepEqual(parseAuthority(authorityOf(host, port)), { host, port });
  }
});

test('parseAuthority: bad input is undefined, never a throw', () => {
  for (const bad of [
    undefined,
    '',
    'example.com',
    'example.com:',
    ':80',
    'example.com:0',
    'example.com:65536',
    'example.com:123456',
    'example.com:-1',
    'example.com:8a',
    '::1:80',
    '[::1]',
    '[::1]:',
    '[::1]80',
    '[example.com]:80',
    '[::1]:80:80',
    'a:b:80',
    'host:80 ',
    '[::1:80',
  ]) {
    assert.equal(parseAuthority(bad), undefined, String(bad));
  }
});
