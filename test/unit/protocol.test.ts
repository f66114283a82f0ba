import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Decoded,
  decodeGreeting,
  decodeMethodSelection,
  decodeReply,
  decodeRequest,
  decodeUdpHeader,
  decodeUserPass,
  decodeUserPassReply,
  encodeGreeting,
  encodeMethodSelection,
  encodeReply,
  encodeRequest,
  encodeUdpHeader,
  encodeUserPass,
  encodeUserPassReply,
  Request,
} from '../../src/core/socks5/protocol';
import { encodeAddress, endpoint, readAddress } from '../../src/core/address';
import { ProxyError, Reply } from '../../src/core/errors';

const NEXT = Buffer.from([0x05, 0x01, 0x00, 0xaa]);

/** Decodes `bytes` whole, from every strict prefix (must ask for more), and glued to a following message. */
function decodeAllWays<T>(decode: (b: Buffer) => Decoded<T> | undefined, bytes: Buffer, expected: T): void {
  const whole = decode(bytes);
  assert.ok(whole, 'whole message decodes');
  assert.deepEqual(whole.value, expected);
  assert.equal(whole.length, bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    assert.equal(decode(bytes.subarray(0, i)), undefined, `prefix of ${i} bytes asks for more`);
  }
  const glued = decode(Buffer.concat([bytes, NEXT]));
  assert.ok(glued);
  assert.deepEqual(glued.value, expected);
  assert.equal(glued.length, bytes.length, 'glued: stops at the end of the first message');
}

function assertReplyError(fn: () => unknown, reply: number, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof ProxyError && err.reply === reply && err.code === code);
}

test('greeting: one, several and zero methods', () => {
  decodeAllWays(decodeGreeting, Buffer.from([5, 1, 0]), [0]);
  decodeAllWays(decodeGreeting, Buffer.from([5, 3, 0, 1, 2]), [0, 1, 2]);
  decodeAllWays(decodeGreeting, Buffer.from([5, 0]), []);
  assert.deepEqual(encodeGreeting([0, 2]), Buffer.from([5, 2, 0, 2]));
});

test('greeting with a wrong version is rejected from its first byte', () => {
  assertReplyError(() => decodeGreeting(Buffer.from([4])), Reply.GENERAL_FAILURE, 'BAD_VERSION');
});

test('method selection', () => {
  assert.deepEqual(encodeMethodSelection(0xff), Buffer.from([5, 0xff]));
  decodeAllWays(decodeMethodSelection, Buffer.from([5, 2]), 2);
});

test('RFC 1929 username/password request and reply', () => {
  const bytes = Buffer.from([1, 5, ...Buffer.from('alice'), 6, ...Buffer.from('s3cr3t')]);
  decodeAllWays(decodeUserPass, bytes, { username: 'alice', password: 's3cr3t' });
  assert.deepEqual(encodeUserPass({ username: 'alice', password: 's3cr3t' }), bytes);
  // Empty fields are legal on the wire (ULEN/PLEN may be 0).
  decodeAllWays(decodeUserPass, Buffer.from([1, 0, 0]), { username: '', password: '' });
  assert.throws(() => decodeUserPass(Buffer.from([5])), (e: unknown) => e instanceof ProxyError && e.code === 'BAD_AUTH_VERSION');
  assert.deepEqual(encodeUserPassReply(true), Buffer.from([1, 0]));
  assert.deepEqual(encodeUserPassReply(false), Buffer.from([1, 1]));
  decodeAllWays(decodeUserPassReply, Buffer.from([1, 0]), true);
  decodeAllWays(decodeUserPassReply, Buffer.from([1, 1]), false);
});

const requests: [string, Buffer, Request][] = [
  ['CONNECT IPv4', Buffer.from([5, 1, 0, 1, 10, 0, 0, 1, 0x1f, 0x90]), { command: 'connect', destination: { type: 'ipv4', host: '10.0.0.1', port: 8080 } }],
  [
    'CONNECT IPv6',
    Buffer.from([5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80]),
    { command: 'connect', destination: { type: 'ipv6', host: '2001:db8::1', port: 80 } },
  ],
  ['CONNECT ::1', Buffer.from([5, 1, 0, 4, ...Array(15).fill(0), 1, 0x01, 0xbb]), { command: 'connect', destination: { type: 'ipv6', host: '::1', port: 443 } }],
  ['CONNECT domain', Buffer.from([5, 1, 0, 3, 11, ...Buffer.from('example.com'), 0, 80]), { command: 'connect', destination: { type: 'domain', host: 'example.com', port: 80 } }],
  ['BIND IPv4', Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]), { command: 'bind', destination: { type: 'ipv4', host: '0.0.0.0', port: 0 } }],
  ['UDP ASSOCIATE IPv4', Buffer.from([5, 3, 0, 1, 127, 0, 0, 1, 0x30, 0x39]), { command: 'udp-associate', destination: { type: 'ipv4', host: '127.0.0.1', port: 12345 } }],
  ['UDP ASSOCIATE domain', Buffer.from([5, 3, 0, 3, 1, 0x61, 0, 53]), { command: 'udp-associate', destination: { type: 'domain', host: 'a', port: 53 } }],
];

for (const [name, bytes, expected] of requests) {
  test(`request ${name}: decodes whole, split at every byte and glued; encodes back`, () => {
    decodeAllWays(decodeRequest, bytes, expected);
    assert.deepEqual(encodeRequest(expected), bytes);
  });
}

test('request errors carry the RFC reply code', () => {
  assertReplyError(() => decodeRequest(Buffer.from([5, 9])), Reply.COMMAND_NOT_SUPPORTED, 'BAD_COMMAND');
  assertReplyError(() => decodeRequest(Buffer.from([5, 1, 0, 2, 0, 0])), Reply.ADDRESS_TYPE_NOT_SUPPORTED, 'BAD_ADDRESS_TYPE');
  assertReplyError(() => decodeRequest(Buffer.from([5, 1, 0, 3, 0, 0, 80])), Reply.GENERAL_FAILURE, 'BAD_ADDRESS');
  assertReplyError(() => decodeRequest(Buffer.from([4, 1, 0, 1])), Reply.GENERAL_FAILURE, 'BAD_VERSION');
});

test('reply: every code, each address type', () => {
  for (let code = 0; code <= 8; code++) {
    for (const bound of [endpoint('127.0.0.1', 1080), endpoint('::1', 1), endpoint('proxy.local', 65535)]) {
      const bytes = encodeReply(code as 0, bound);
      assert.equal(bytes[0], 5);
      assert.equal(bytes[1], code);
      assert.equal(bytes[2], 0);
      decodeAllWays(decodeReply, bytes, { reply: code, bound });
    }
  }
});

test('addresses: IPv6 with leading zero bytes and IPv4-mapped forms round-trip', () => {
  for (const host of ['::', '::1', '::ffff:0:1', 'fe80::1', '2001:db8:85a3::8a2e:370:7334', 'ffff::']) {
    const ep = endpoint(host, 9);
    const enc = encodeAddress(ep);
    assert.equal(enc.length, 19);
    assert.deepEqual(readAddress(enc, 0)?.endpoint, ep);
  }
  assert.deepEqual(endpoint('::ffff:127.0.0.1', 1), { type: 'ipv4', host: '127.0.0.1', port: 1 });
  assert.deepEqual(endpoint('[::1]', 1), { type: 'ipv6', host: '::1', port: 1 });
});

test('UDP header: decode without copying the payload, encode for replies', () => {
  const header = encodeUdpHeader(endpoint('192.168.1.2', 53));
  assert.deepEqual(header, Buffer.from([0, 0, 0, 1, 192, 168, 1, 2, 0, 53]));
  const datagram = Buffer.concat([header, Buffer.from('payload')]);
  const d = decodeUdpHeader(datagram);
  assert.equal(d.frag, 0);
  assert.deepEqual(d.destination, endpoint('192.168.1.2', 53));
  assert.equal(d.payload.toString(), 'payload');
  assert.equal(d.payload.buffer, datagram.buffer, 'payload shares the datagram memory');
  const v6 = decodeUdpHeader(Buffer.concat([encodeUdpHeader(endpoint('::1', 7)), Buffer.from('x')]));
  assert.deepEqual(v6.destination, endpoint('::1', 7));
  const dom = decodeUdpHeader(Buffer.from([0, 0, 2, 3, 1, 0x61, 0, 53, 0x41]));
  assert.equal(dom.frag, 2);
  assert.deepEqual(dom.destination, { type: 'domain', host: 'a', port: 53 });
  for (let i = 0; i < header.length; i++) {
    assert.throws(() => decodeUdpHeader(header.subarray(0, i)), ProxyError, `truncated header of ${i} bytes is invalid`);
  }
});
