/**
 * Properties of every pure decoder and parser: on any bytes they return "need more" (undefined), a message
 * no longer than the input, or throw a ProxyError, nothing else; a complete message's prefixes are all
 * "need more", and extra bytes after it change nothing; decode(encode(x)) gives x back.
 * Used by decoders.test.ts (fixed seed) and scripts/fuzz.mjs (random seeds, for as long as asked).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Endpoint, encodeAddress, endpoint, readAddress } from '../../src/core/address';
import { ProxyError } from '../../src/core/errors';
import * as s5 from '../../src/core/socks5/protocol';
import * as s4 from '../../src/core/socks4/protocol';
import * as http from '../../src/core/http/parse';
import { decodeConnectResponse } from '../../src/core/upstream/codecs';
import { parseUpstreamUrl } from '../../src/core/upstream/url';
import { parseMatch } from '../../src/core/rules';
import { isHostName, undeliverable } from '../../src/core/udp-destination';

export interface NamedProperty {
  name: string;
  property: fc.IProperty<unknown> | fc.IAsyncProperty<unknown>;
  /** Runs for the fixed-seed test; the fuzz runner keeps going while it has time. */
  numRuns: number;
}

type Decoder = (buf: Buffer) => { value: unknown; length: number } | undefined;

/** Calls `f`; a ProxyError is an allowed outcome (returned as 'error'), any other throw fails the property. */
function total<T>(f: () => T): T | 'error' {
  try {
    return f();
  } catch (err) {
    if (err instanceof ProxyError) return 'error';
    throw err;
  }
}

/** The decoder contract on one input (see the file comment). */
function checkDecoder(decode: Decoder, buf: Buffer, extra: Buffer): void {
  const r = total(() => decode(buf));
  if (r === 'error' || r === undefined) return;
  assert.ok(r.length >= 1 && r.length <= buf.length, `length ${r.length} of ${buf.length} bytes`);
  for (let k = 0; k < r.length; k++) assert.equal(total(() => decode(buf.subarray(0, k))), undefined, `prefix of ${k} bytes is "need more"`);
  const more = total(() => decode(Buffer.concat([buf.subarray(0, r.length), extra])));
  assert.deepEqual(more, r, 'bytes after a complete message change nothing');
}

const decoders: [string, Decoder][] = [
  ['socks5 greeting', s5.decodeGreeting],
  ['socks5 method selection', s5.decodeMethodSelection],
  ['RFC 1929 username/password', s5.decodeUserPass],
  ['RFC 1929 reply', s5.decodeUserPassReply],
  ['socks5 request', s5.decodeRequest],
  ['socks5 reply', s5.decodeReply],
  ['socks4 request', s4.decodeSocks4Request],
  ['socks4 reply', s4.decodeSocks4Reply],
  ['HTTP CONNECT response', decodeConnectResponse],
  ['address at offset 0', (b) => {
    const a = readAddress(b, 0);
    return a && { value: a.endpoint, length: a.end };
  }],
];

// ---- arbitraries ----

const bytes = (max = 300): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));

/** A string whose UTF-8 form is 1..255 bytes and decodes back to itself. */
const field = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 80 })
  .filter((s) => Buffer.byteLength(s) <= 255 && Buffer.from(s).toString() === s);

const ipv4 = fc.ipV4().map((h) => endpoint(h, 0).host);
const ipv6 = fc.ipV6().map((h) => endpoint(h, 0).host);
const port = fc.integer({ min: 0, max: 65535 });

export const endpointArb: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.tuple(ipv4, port).map(([host, p]) => endpoint(host, p)),
  fc.tuple(ipv6, port).map(([host, p]) => endpoint(host, p)),
  fc.tuple(fc.oneof(field, fc.domain()), port).map(([host, p]): Endpoint => ({ type: 'domain', host, port: p })),
);

/** Byte edits that keep most of a valid message so the decoder gets past its first checks. */
export const edit = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: bytes(8) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }) }),
);
export type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

export function applyEdits(base: Buffer, edits: readonly Edit[]): Buffer {
  let b = base;
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    switch (e.op) {
      case 'set':
        if (b.length > 0) {
          b = Buffer.from(b);
          b[at % b.length] = e.value;
        }
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), e.data, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'repeat': {
        // A run of one byte: length fields pointing past the data, or long names.
        const v = b.length > 0 ? b[at % b.length] : 0;
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(e.n, v), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Valid encodings of every message kind, to mutate. */
const validMessage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 255 }).map((m) => s5.encodeGreeting(m)),
  fc.record({ username: field, password: field }).map((c) => s5.encodeUserPass(c)),
  fc.tuple(fc.constantFrom('connect', 'bind', 'udp-associate') as fc.Arbitrary<s5.CommandName>, endpointArb).map(([command, destination]) => s5.encodeRequest({ command, destination })),
  fc.tuple(fc.integer({ min: 0, max: 8 }), endpointArb).map(([r, ep]) => s5.encodeReply(r as s5.ReplyMessage['reply'] as never, ep)),
  fc.tuple(endpointArb, bytes(32)).map(([ep, p]) => Buffer.concat([s5.encodeUdpHeader(ep), p])),
  fc.tuple(fc.constantFrom('connect', 'bind') as fc.Arbitrary<'connect' | 'bind'>, endpointArb.filter((e) => e.type !== 'ipv6'), fc.string({ maxLength: 20 })).map(([c, ep, user]) =>
    total(() => s4.encodeSocks4Request(c, ep, user.replace(/\0/g, ''))) as Buffer,
  ).filter((b) => typeof b !== 'string'),
  fc.tuple(fc.integer({ min: 100, max: 599 }), fc.stringMatching(/^[A-Za-z ]{0,20}$/)).map(([st, reason]) => http.encodeSimpleResponse(st, reason, 'body')),
);

const input = fc.oneof(bytes(), fc.tuple(validMessage, fc.array(edit, { maxLength: 4 })).map(([b, e]) => applyEdits(b, e)));

// ---- properties ----

const noNul = (s: string): boolean => !s.includes('\0');

export const decoderProperties: NamedProperty[] = [
  {
    name: 'every decoder: ProxyError or "need more" or a consistent message, on random and mutated bytes',
    numRuns: 3000,
    property: fc.property(fc.constantFrom(...decoders), input, bytes(16), ([, decode], buf, extra) => checkDecoder(decode, buf, extra)),
  },
  {
    name: 'UDP header: whole or invalid (ProxyError), payload is the rest',
    numRuns: 1000,
    property: fc.property(input, (buf) => {
      const d = total(() => s5.decodeUdpHeader(buf));
      if (d === 'error') return;
      assert.ok(d.payload.length <= buf.length - 4);
      assert.equal(Buffer.compare(d.payload, buf.subarray(buf.length - d.payload.length)), 0);
    }),
  },
  {
    name: 'SOCKS5 round trips: greeting, RFC 1929, request, reply, UDP header, address',
    numRuns: 500,
    property: fc.property(
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 255 }),
      fc.record({ username: field, password: field }),
      fc.constantFrom('connect', 'bind', 'udp-associate') as fc.Arbitrary<s5.CommandName>,
      endpointArb,
      bytes(64),
      (methods, creds, command, ep, payload) => {
        assert.deepEqual(s5.decodeGreeting(s5.encodeGreeting(methods))?.value, methods);
        assert.deepEqual(s5.decodeUserPass(s5.encodeUserPass(creds))?.value, { ...creds });
        assert.deepEqual(s5.decodeRequest(s5.encodeRequest({ command, destination: ep }))?.value, { command, destination: ep });
        assert.deepEqual(s5.decodeReply(s5.encodeReply(0, ep))?.value, { reply: 0, bound: ep });
        const d = s5.decodeUdpHeader(Buffer.concat([s5.encodeUdpHeader(ep), payload]));
        assert.deepEqual([d.frag, d.destination, d.payload], [0, ep, payload]);
        const enc = encodeAddress(ep);
        assert.deepEqual(readAddress(enc, 0), { endpoint: ep, end: enc.length });
      },
    ),
  },
  {
    name: 'SOCKS4/4a round trips: request and reply',
    numRuns: 500,
    property: fc.property(
      fc.constantFrom('connect', 'bind') as fc.Arbitrary<'connect' | 'bind'>,
      // 0.0.0.x (x ≠ 0) is SOCKS4a's "a name follows" marker, so it cannot be sent as an address.
      fc.oneof(
        ipv4.filter((h) => !/^0\.0\.0\.[1-9]/.test(h)).map((h) => endpoint(h, 0)),
        fc.domain().map((h): Endpoint => ({ type: 'domain', host: h, port: 0 })),
      ),
      fc.integer({ min: 0, max: 65535 }),
      fc.string({ maxLength: 40 }).filter(noNul).filter((u) => Buffer.byteLength(u) <= 255 && Buffer.from(u).toString() === u),
      fc.constantFrom(90, 91, 92, 93) as fc.Arbitrary<s4.Socks4ReplyCode>,
      (command, dest, p, userId, code) => {
        const destination = { ...dest, port: p };
        const r = s4.decodeSocks4Request(s4.encodeSocks4Request(command, destination, userId));
        assert.deepEqual(r?.value, { command, destination: endpoint(destination.host, p), userId, socks4a: destination.type === 'domain' });
        if (destination.type === 'ipv4') assert.deepEqual(s4.decodeSocks4Reply(s4.encodeSocks4Reply(code, destination))?.value, { code, bound: destination });
      },
    ),
  },
  {
    name: 'HTTP: a simple response decodes to its status, reason and headers',
    numRuns: 300,
    property: fc.property(
      fc.integer({ min: 100, max: 599 }),
      fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,30}$/),
      fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/)), { maxLength: 5 }),
      (status, reason, headers) => {
        const r = decodeConnectResponse(http.encodeSimpleResponse(status, reason, 'x', headers));
        assert.ok(r);
        assert.equal(r.value.status, status);
        assert.equal(r.value.reason, reason);
        for (const [n, v] of headers) {
          const reserved = ['content-type', 'content-length', 'connection'].includes(n.toLowerCase());
          const last = headers.filter(([m]) => m.toLowerCase() === n.toLowerCase()).at(-1);
          if (!reserved && last?.[1] === v) assert.equal(r.value.headers[n.toLowerCase()], v.trim());
        }
      },
    ),
  },
  {
    name: 'HTTP request targets, authorities, Basic credentials and hop-by-hop filtering never throw and stay in range',
    numRuns: 2000,
    property: fc.property(
      fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), fc.webUrl().map((u) => u.replace(/^https/, 'http')), fc.tuple(fc.domain(), fc.integer({ min: -5, max: 70000 })).map(([h, p]) => `${h}:${p}`)),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 8 }),
      (text, raw) => {
        for (const hp of [http.parseAuthority(text), http.parseAuthority(text, 80), http.parseConnectTarget(text), http.parseAbsoluteTarget(text)]) {
          if (hp) assert.ok(hp.port >= 1 && hp.port <= 65535 && hp.host.length > 0, JSON.stringify(hp));
        }
        http.targetScheme(text);
        const creds = http.parseBasicCredentials(text);
        if (creds) assert.equal(typeof creds.username, 'string');
        const kept = http.stripHopByHop(raw);
        assert.ok(kept.length <= raw.length && kept.length % 2 === 0);
        for (let i = 0; i < kept.length; i += 2) assert.ok(!http.HOP_BY_HOP.has(kept[i].toLowerCase()));
        http.statusForParseError(text);
      },
    ),
  },
  {
    name: 'HTTP: Basic credentials and authorities round-trip',
    numRuns: 300,
    property: fc.property(fc.string({ maxLength: 20 }).filter((u) => !u.includes(':')), fc.string({ maxLength: 20 }), fc.domain(), fc.integer({ min: 1, max: 65535 }), ipv6.filter((h) => h.includes(':')), (user, pass, host, p, v6) => {
      const header = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
      assert.deepEqual(http.parseBasicCredentials(header), { username: user, password: pass });
      assert.deepEqual(http.parseAuthority(`${host}:${p}`), { host, port: p });
      assert.deepEqual(http.parseAuthority(`[${v6}]:${p}`), { host: v6, port: p });
    }),
  },
  {
    name: 'addresses, upstream URLs, rule matches and UDP destinations: never anything but a ProxyError',
    numRuns: 2000,
    property: fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.webUrl(), fc.ipV6(), fc.domain()), port, (text, p) => {
      const ep = endpoint(text, p);
      assert.ok(['ipv4', 'ipv6', 'domain'].includes(ep.type));
      total(() => parseUpstreamUrl(text));
      total(() => parseUpstreamUrl(`socks5://${text}`));
      total(() => parseMatch(text));
      const why = undeliverable(ep);
      if (p === 0) assert.ok(why, 'port 0 is never sent to');
      if (why === undefined && ep.type === 'domain') assert.ok(isHostName(ep.host) || ep.host.includes(':') || /^[0-9.]+$/.test(ep.host));
    }),
  },
];
