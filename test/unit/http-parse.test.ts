import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyError, Reply } from '../../src/core/errors';
import { statusForDialError } from '../../src/core/http/handler';
import {
  encodeSimpleResponse,
  parseAbsoluteTarget,
  parseAuthority,
  parseBasicCredentials,
  parseConnectTarget,
  statusForParseError,
  stripHopByHop,
  targetScheme,
} from '../../src/core/http/parse';

test('CONNECT authority-form: host and port required, IPv6 in brackets', () => {
  assert.deepEqual(parseConnectTarget('example.org:443'), { host: 'example.org', port: 443 });
  assert.deepEqual(parseConnectTarget('[2001:db8::1]:8443'), { host: '2001:db8::1', port: 8443 });
  assert.deepEqual(parseConnectTarget('127.0.0.1:1'), { host: '127.0.0.1', port: 1 });
  for (const bad of ['example.org', 'example.org:', ':443', 'example.org:0', 'example.org:65536', 'example.org:44x', '[::1', '[::1]x', '[]:1', 'a b:80', '/path', 'http://x:80', '[zz]:80']) {
    assert.equal(parseConnectTarget(bad), undefined, bad);
  }
  assert.deepEqual(parseAuthority('example.org', 80), { host: 'example.org', port: 80 });
  assert.deepEqual(parseAuthority('[::1]', 80), { host: '::1', port: 80 });
});

test('absolute-form targets keep the path byte for byte', () => {
  assert.deepEqual(parseAbsoluteTarget('http://example.org/a/../b?q=%2F&x'), { host: 'example.org', port: 80, authority: 'example.org', path: '/a/../b?q=%2F&x' });
  assert.deepEqual(parseAbsoluteTarget('HTTP://Example.org:8080'), { host: 'Example.org', port: 8080, authority: 'Example.org:8080', path: '/' });
  assert.deepEqual(parseAbsoluteTarget('http://h?x=1'), { host: 'h', port: 80, authority: 'h', path: '/?x=1' });
  assert.deepEqual(parseAbsoluteTarget('http://[::1]:81/p#frag'), { host: '::1', port: 81, authority: '[::1]:81', path: '/p' });
  assert.deepEqual(parseAbsoluteTarget('http://user:pw@h/p'), { host: 'h', port: 80, authority: 'h', path: '/p' });
  for (const bad of ['/origin-form', '*', 'https://h/', 'ftp://h/', 'http:///nohost', 'http://h:0/', 'http://h:99999/', 'http://bad host/']) {
    assert.equal(parseAbsoluteTarget(bad), undefined, bad);
  }
  assert.equal(targetScheme('https://h/'), 'https');
  assert.equal(targetScheme('/x'), undefined);
});

test('hop-by-hop headers are removed, with everything Connection names; the rest keeps order, case and duplicates', () => {
  const raw = [
    'Host', 'h',
    'Connection', 'keep-alive, X-Private',
    'X-Private', 'secret',
    'Keep-Alive', 'timeout=5',
    'Proxy-Connection', 'keep-alive',
    'Proxy-Authorization', 'Basic eDp5',
    'TE', 'trailers',
    'Trailer', 'X-T',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'websocket',
    'X-A', '1',
    'x-a', '2',
    'Accept', '*/*',
  ];
  assert.deepEqual(stripHopByHop(raw), ['Host', 'h', 'X-A', '1', 'x-a', '2', 'Accept', '*/*']);
  assert.deepEqual(stripHopByHop(raw, ['host']), ['X-A', '1', 'x-a', '2', 'Accept', '*/*']);
  // Proxy-Connection's list counts too; empty and invalid tokens are ignored.
  assert.deepEqual(stripHopByHop(['Proxy-Connection', 'X-B, , b@d', 'X-B', '1', 'X-C', '2']), ['X-C', '2']);
});

test('Basic proxy credentials', () => {
  const enc = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  assert.deepEqual(parseBasicCredentials(`Basic ${enc('alice:wonder land')}`), { username: 'alice', password: 'wonder land' });
  assert.deepEqual(parseBasicCredentials(`basic   ${enc('a:b:c')} `), { username: 'a', password: 'b:c' });
  assert.deepEqual(parseBasicCredentials(`Basic ${enc('ünï:cödé')}`), { username: 'ünï', password: 'cödé' });
  assert.deepEqual(parseBasicCredentials(`Basic ${enc(':')}`), { username: '', password: '' });
  assert.equal(parseBasicCredentials(`Basic ${enc('nocolon')}`), undefined);
  assert.equal(parseBasicCredentials('Bearer abc'), undefined);
  assert.equal(parseBasicCredentials('Basic !!!'), undefined);
  assert.equal(parseBasicCredentials('Basic'), undefined);
});

test('status codes for parser and dial errors', () => {
  assert.equal(statusForParseError('HPE_HEADER_OVERFLOW'), 431);
  assert.equal(statusForParseError('HPE_INVALID_METHOD'), 400);
  assert.equal(statusForParseError(undefined), 400);
  assert.equal(statusForParseError('ERR_HTTP_REQUEST_TIMEOUT'), 408);
  assert.equal(statusForDialError(new ProxyError('CONNECT_TIMEOUT', 't', Reply.TTL_EXPIRED)), 504);
  assert.equal(statusForDialError(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })), 504);
  assert.equal(statusForDialError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 502);
  assert.equal(statusForDialError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 502);
  assert.equal(statusForDialError(new ProxyError('UPSTREAM_FAILED', 'x')), 502);
});

test('self-contained error responses carry length and close', () => {
  const r = encodeSimpleResponse(407, 'Proxy Authentication Required', 'no\n', [['Proxy-Authenticate', 'Basic realm="SOCKS Relay"']]).toString('latin1');
  assert.equal(
    r,
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="SOCKS Relay"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n',
  );
});
