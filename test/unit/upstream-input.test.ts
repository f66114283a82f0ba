/** The Add/Edit Upstream input model (src/ui/upstream-input.ts): chains, validation messages, passwords split off. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitChain, splitSecrets, upstreamUrlPrompt, validateChain } from '../../src/ui/upstream-input';

test('a chain may be separated by commas, arrows or spaces', () => {
  assert.deepEqual(splitChain('socks5://a:1080, http://b:3128'), ['socks5://a:1080', 'http://b:3128']);
  assert.deepEqual(splitChain('socks5://a:1080 -> http://b:3128 → https://c'), ['socks5://a:1080', 'http://b:3128', 'https://c']);
});

test('validation: empty, unknown scheme, direct inside a chain; a user without a password is fine (asked next)', () => {
  assert.match(validateChain('') ?? '', /Enter an upstream URL/);
  assert.match(validateChain('bogus://nowhere') ?? '', /bogus/);
  assert.equal(validateChain('direct, socks5://a:1080'), '"direct" cannot be part of a chain');
  assert.equal(validateChain('socks5h://me@proxy.example:1080'), undefined);
  assert.equal(validateChain('direct'), undefined);
});

test('passwords typed into a URL are split off for secret storage; the URLs keep the user only', () => {
  const { urls, passwords } = splitSecrets(['socks5h://me:s%40cret@proxy.example:1080', 'http://gw:3128']);
  assert.deepEqual(urls, ['socks5h://me@proxy.example:1080', 'http://gw:3128']);
  assert.deepEqual(passwords, ['s@cret', undefined]);
});

test('the URL prompt names the registered schemes', () => {
  assert.equal(upstreamUrlPrompt(), 'Upstream URL: socks5://, socks5h://, socks4://, socks4a://, http:// or https://. Several separated by commas make a chain.');
});
