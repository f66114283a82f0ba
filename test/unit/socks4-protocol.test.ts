import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyError } from '../../src/core/errors';
import { decodeSocks4Reply, decodeSocks4Request, encodeSocks4Reply, encodeSocks4Request, MAX_FIELD_LENGTH, Socks4Reply, socks4ReplyName } from '../../src/core/socks4/protocol';

/** Feeds every prefix of `bytes`: incomplete prefixes must ask for more, the whole must decode. */
function decodeAtEverySplit(bytes: Buffer) {
  for (let i = 0; i < bytes.length; i++) assert.equal(decodeSocks4Request(bytes.subarray(0, i)), undefined, `prefix of ${i} bytes`);
  const d = decodeSocks4Request(bytes);
  assert.ok(d);
  return d;
}

test('SOCKS4 CONNECT with a user id decodes at every split point and leaves glued bytes alone', () => {
  const req = Buffer.from([0x04, 0x01, 0x1f, 0x90, 10, 1, 2, 3, ...Buffer.from('alice'), 0x00]);
  const d = decodeAtEverySplit(req);
  assert.deepEqual(d.value, { command: 'connect', destination: { type: 'ipv4', host: '10.1.2.3', port: 8080 }, userId: 'alice', socks4a: false });
  assert.equal(d.length, req.length);
  const glued = decodeSocks4Request(Buffer.concat([req, Buffer.from('GET / HTTP/1.1\r\n')]));
  assert.equal(glued?.length, req.length);
});

test('SOCKS4a: DSTIP 0.0.0.x carries a domain name after the user id', () => {
  const req = Buffer.from([0x04, 0x02, 0x00, 0x50, 0, 0, 0, 7, 0x00, ...Buffer.from('example.org'), 0x00]);
  const d = decodeAtEverySplit(req);
  assert.deepEqual(d.value, { command: 'bind', destination: { type: 'domain', host: 'example.org', port: 80 }, userId: '', socks4a: true });
  // 0.0.0.0 is an address, not the SOCKS4a marker.
  const zero = decodeSocks4Request(Buffer.from([0x04, 0x02, 0x00, 0x50, 0, 0, 0, 0, 0x00]));
  assert.deepEqual(zero?.value.destination, { type: 'ipv4', host: '0.0.0.0', port: 80 });
  // An IP literal sent as a SOCKS4a name is classified as an address.
  const literal = decodeSocks4Request(Buffer.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0x00, ...Buffer.from('127.0.0.1'), 0x00]));
  assert.deepEqual(literal?.value.destination, { type: 'ipv4', host: '127.0.0.1', port: 80 });
});

test('SOCKS4 encode/decode round trip', () => {
  for (const dest of [
    { type: 'ipv4' as const, host: '192.0.2.9', port: 443 },
    { type: 'domain' as const, host: 'localhost', port: 22 },
  ]) {
    const bytes = encodeSocks4Request('connect', dest, 'bob');
    const d = decodeSocks4Request(bytes);
    assert.deepEqual(d?.value.destination, dest);
    assert.equal(d?.value.userId, 'bob');
    assert.equal(d?.length, bytes.length);
  }
});

test('SOCKS4 encoder: an IPv4 destination 0.0.0.x (x≠0) would read as the SOCKS4a marker and is refused (X04); 0.0.0.0 is sent', () => {
  for (const host of ['0.0.0.1', '0.0.0.255']) {
    assert.throws(
      () => encodeSocks4Request('connect', { type: 'ipv4', host, port: 80 }, 'u'),
      (e: unknown) => e instanceof ProxyError && e.code === 'BAD_ADDRESS' && e.reply === 0x04,
    );
  }
  const zero = encodeSocks4Request('bind', { type: 'ipv4', host: '0.0.0.0', port: 80 });
  assert.deepEqual(decodeSocks4Request(zero)?.value.destination, { type: 'ipv4', host: '0.0.0.0', port: 80 });
  assert.deepEqual([...encodeSocks4Request('connect', { type: 'ipv4', host: '0.0.1.0', port: 80 }).subarray(4, 8)], [0, 0, 1, 0]);
});

test('SOCKS4 malformed requests throw', () => {
  const expectError = (bytes: number[] | Buffer, code: string): void => {
    assert.throws(
      () => decodeSocks4Request(Buffer.from(bytes)),
      (e: unknown) => e instanceof ProxyError && e.code === code,
    );
  };
  expectError([0x05, 0x01], 'BAD_VERSION');
  expectError([0x04, 0x03], 'BAD_COMMAND');
  expectError([0x04, 0x01, 0, 80, 0, 0, 0, 1, 0, 0], 'BAD_ADDRESS'); // empty SOCKS4a domain
  expectError(Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 1, 2, 3, 4]), Buffer.alloc(MAX_FIELD_LENGTH + 1, 0x61)]), 'BAD_ADDRESS');
  expectError(Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 0, 0, 0, 1, 0]), Buffer.alloc(MAX_FIELD_LENGTH + 1, 0x61)]), 'BAD_ADDRESS');
  // Exactly MAX_FIELD_LENGTH bytes is still fine.
  const max = Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 1, 2, 3, 4]), Buffer.alloc(MAX_FIELD_LENGTH, 0x61), Buffer.from([0])]);
  assert.equal(decodeSocks4Request(max)?.value.userId.length, MAX_FIELD_LENGTH);
});

test('SOCKS4 replies: VN 0, code 90-93, port and IPv4 address (others as 0.0.0.0)', () => {
  assert.deepEqual([...encodeSocks4Reply(Socks4Reply.GRANTED, { type: 'ipv4', host: '127.0.0.1', port: 1080 })], [0, 90, 0x04, 0x38, 127, 0, 0, 1]);
  assert.deepEqual([...encodeSocks4Reply(Socks4Reply.REJECTED)], [0, 91, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeSocks4Reply(Socks4Reply.GRANTED, { type: 'ipv6', host: '::1', port: 5 })], [0, 90, 0, 5, 0, 0, 0, 0]);
  assert.deepEqual(decodeSocks4Reply(Buffer.from([0, 91, 0, 80, 1, 2, 3, 4]))?.value, { code: 91, bound: { type: 'ipv4', host: '1.2.3.4', port: 80 } });
  assert.equal(decodeSocks4Reply(Buffer.from([0, 90, 0])), undefined);
  assert.equal(socks4ReplyName(92), 'rejected: cannot connect to identd on the client');
  assert.equal(socks4ReplyName(93), 'rejected: identd reports a different user id');
});
