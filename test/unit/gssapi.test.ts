/**
 * RFC 1961 pieces without a KDC: message framing (whole, split at every byte, glued, abort), the URL
 * option, error classification by status codes, and both halves of the exchange against a fake GSS-API
 * whose "wrap" is visible, so protection-level handling can be checked byte by byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { GssEncapsulatedStream } from '../../src/core/gssapi/encapsulated-stream';
import { ProxyError } from '../../src/core/errors';
import { gssTarget, gssapiAuthenticate } from '../../src/core/gssapi/client';
import { gssErrorCode, Krb5 } from '../../src/core/gssapi/errors';
import { GssAcceptor, GssApi, GssCallError, GssInitiator, setGssApiForTests } from '../../src/core/gssapi/library';
import { decodeGssMessage, encodeGssAbort, encodeGssMessage, expectGssMessage, GssMessage, MessageType, Protection } from '../../src/core/gssapi/messages';
import { GssServerHandshake } from '../../src/core/gssapi/server';
import type { Decoded } from '../../src/core/socks5/protocol';
import { parseUpstreamUrl } from '../../src/core/upstream/url';
import type { UpstreamHop } from '../../src/core/upstream/hop';
import { configTree, ConfigModelInput } from '../../src/ui/config-model';
import { sessionNode } from '../../src/ui/sessions-model';
import { validateChain } from '../../src/ui/upstream-input';
import { withPassword } from '../../src/ui/routing-config';
import { defaultSettings } from '../../src/ui/settings';
import type { InfoNode } from '../../src/ui/view-node';

const NEXT = Buffer.from([0x05, 0x01, 0x00, 0x01]);

function decodeAllWays(bytes: Buffer, expected: GssMessage): void {
  const whole = decodeGssMessage(bytes);
  assert.ok(whole);
  assert.deepEqual(whole.value, expected);
  assert.equal(whole.length, bytes.length);
  for (let i = 0; i < bytes.length; i++) assert.equal(decodeGssMessage(bytes.subarray(0, i)), undefined, `prefix of ${i} bytes asks for more`);
  const glued = decodeGssMessage(Buffer.concat([bytes, NEXT])) as Decoded<GssMessage>;
  assert.deepEqual(glued.value, expected);
  assert.equal(glued.length, bytes.length, 'glued: stops at the end of the first message');
}

test('RFC 1961 messages decode whole, from every prefix and glued, for every type and token size', () => {
  for (const [type, name] of [
    [MessageType.AUTHENTICATION, 'authentication'],
    [MessageType.PROTECTION, 'protection'],
    [MessageType.ENCAPSULATION, 'encapsulation'],
  ] as const) {
    for (const size of [0, 1, 255, 256, 1500]) {
      const token = Buffer.alloc(size, size & 0xff);
      const bytes = encodeGssMessage(type, token);
      assert.deepEqual([...bytes.subarray(0, 4)], [0x01, type, size >> 8, size & 0xff]);
      decodeAllWays(bytes, { type: name, token });
    }
  }
  const max = encodeGssMessage(MessageType.AUTHENTICATION, Buffer.alloc(0xffff, 7));
  assert.equal(decodeGssMessage(max)?.length, 4 + 0xffff);
  assert.throws(() => encodeGssMessage(MessageType.AUTHENTICATION, Buffer.alloc(0x10000)), (e: unknown) => e instanceof ProxyError && e.code === 'PROTOCOL_ERROR');
});

test('the abort message is two octets (X\'01\' X\'FF\'), whole and glued', () => {
  assert.deepEqual([...encodeGssAbort()], [0x01, 0xff]);
  decodeAllWays(encodeGssAbort(), { type: 'abort' });
});

test('a wrong version or an unknown message type is a protocol error; expect() refuses the wrong type but passes an abort', () => {
  const isProtocol = (e: unknown): boolean => e instanceof ProxyError && e.code === 'PROTOCOL_ERROR';
  assert.throws(() => decodeGssMessage(Buffer.from([0x05, 0x01, 0x00, 0x00])), isProtocol);
  assert.throws(() => decodeGssMessage(Buffer.from([0x01, 0x04])), isProtocol);
  assert.throws(() => decodeGssMessage(Buffer.from([0x01, 0x00])), isProtocol);
  const expectAuth = expectGssMessage('authentication');
  assert.throws(() => expectAuth(encodeGssMessage(MessageType.PROTECTION, Buffer.from([1]))), isProtocol);
  assert.deepEqual(expectAuth(encodeGssAbort())?.value, { type: 'abort' });
});

test('upstream URLs: ?gssapi on socks5/socks5h only, with the service defaulting to rcmd', () => {
  const hop = (url: string): UpstreamHop => parseUpstreamUrl(url) as UpstreamHop;
  assert.deepEqual(hop('socks5h://proxy.corp:1080?gssapi').gssapi, { service: 'rcmd', protection: 2 });
  assert.deepEqual(hop('socks5://proxy.corp?gssapi=1').gssapi, { service: 'rcmd', protection: 2 });
  assert.deepEqual(hop('socks5h://proxy.corp?gssapi=socks').gssapi, { service: 'socks', protection: 2 });
  assert.deepEqual(hop('socks5h://10.0.0.1?gssapi=rcmd@proxy.corp').gssapi, { service: 'rcmd@proxy.corp', protection: 2 });
  assert.deepEqual(hop('socks5h://10.0.0.1?gssapi=rcmd/proxy.corp@CORP.EXAMPLE').gssapi, { service: 'rcmd/proxy.corp@CORP.EXAMPLE', protection: 2 });
  assert.deepEqual(hop('socks5h://proxy.corp?gssapi&gssapi-protection=none').gssapi, { service: 'rcmd', protection: 0 });
  assert.deepEqual(hop('socks5h://proxy.corp?gssapi-protection=clear&gssapi=socks').gssapi, { service: 'socks', protection: 0 });
  assert.deepEqual(hop('socks5h://proxy.corp?gssapi&gssapi-protection=integrity').gssapi, { service: 'rcmd', protection: 1 });
  assert.equal(hop('socks5h://proxy.corp').gssapi, undefined);
  const bad = (url: string, pattern: RegExp): void => assert.throws(() => parseUpstreamUrl(url), (e: unknown) => e instanceof ProxyError && e.code === 'BAD_UPSTREAM_URL' && pattern.test(e.message));
  bad('http://proxy.corp:3128?gssapi', /unknown option "gssapi"/);
  bad('socks4a://proxy.corp?gssapi', /unknown option "gssapi"/);
  bad('socks5h://proxy.corp?gssapi=@corp', /service name/);
  bad('socks5h://proxy.corp?gssapi=a%20b', /service name/);
  bad('socks5h://proxy.corp?kerberos', /accepts gssapi/);
  bad('socks5h://proxy.corp?gssapi&gssapi-protection=selective', /none, integrity or confidentiality/);
});

test('the GSS-API target: service@host unless the setting names a host or a principal', () => {
  assert.equal(gssTarget('rcmd', 'proxy.corp'), 'rcmd@proxy.corp');
  assert.equal(gssTarget('socks@other.corp', 'proxy.corp'), 'socks@other.corp');
  assert.equal(gssTarget('rcmd/proxy.corp@CORP', '10.0.0.1'), 'rcmd/proxy.corp@CORP');
});

test('failures are classified by status codes, never by the library\'s text', () => {
  const err = (major: number, minor: number): GssCallError => new GssCallError('call', major, minor >>> 0, 'text that is not looked at');
  const failure = 13 << 16;
  assert.equal(gssErrorCode(err(failure, Krb5.FCC_NOFILE)), 'GSSAPI_NO_CREDENTIALS');
  assert.equal(gssErrorCode(err(7 << 16, 0)), 'GSSAPI_NO_CREDENTIALS');
  assert.equal(gssErrorCode(err(failure, Krb5.AP_ERR_TKT_EXPIRED)), 'GSSAPI_TICKET_EXPIRED');
  assert.equal(gssErrorCode(err(11 << 16, 0)), 'GSSAPI_TICKET_EXPIRED');
  assert.equal(gssErrorCode(err(failure, Krb5.KDC_ERR_S_PRINCIPAL_UNKNOWN)), 'GSSAPI_UNKNOWN_SERVICE');
  assert.equal(gssErrorCode(err(failure, Krb5.AP_ERR_SKEW)), 'GSSAPI_CLOCK_SKEW');
  assert.equal(gssErrorCode(err(failure, Krb5.KDC_UNREACH)), 'GSSAPI_KDC_UNREACHABLE');
  assert.equal(gssErrorCode(err(failure, Krb5.AP_ERR_NOT_US)), 'GSSAPI_BAD_KEYTAB');
  assert.equal(gssErrorCode(err(failure, 12345)), 'GSSAPI_FAILED');
});

/** A GSS-API stand-in: tokens are visible text, "wrap" prefixes W (conf) or w (integrity), two rounds to complete. */
function fakeApi(): GssApi {
  const unwrap = (token: Buffer): { data: Buffer; confidential: boolean } => {
    if (token[0] !== 0x57 && token[0] !== 0x77) throw new GssCallError('gss_unwrap', 9 << 16, 0, 'defective token');
    return { data: token.subarray(1), confidential: token[0] === 0x57 };
  };
  const wrap = (data: Buffer, confidential: boolean): Buffer => Buffer.concat([Buffer.from(confidential ? 'W' : 'w'), data]);
  return {
    source: 'fake',
    createInitiator(): GssInitiator {
      let round = 0;
      return {
        step: async (input) => {
          round++;
          if (round === 1) return { token: Buffer.from('hello-1'), complete: false };
          assert.equal(input?.toString(), 'reply-1');
          return { token: Buffer.alloc(0), complete: true };
        },
        wrap,
        unwrap,
        maxInput: (_conf, limit) => limit - 1,
        dispose: () => undefined,
      };
    },
    createAcceptor(): GssAcceptor {
      let done = false;
      return {
        get principal() {
          return done ? 'fake@REALM' : undefined;
        },
        step: async (input) => {
          assert.equal(input.toString(), 'hello-1');
          done = true;
          return { token: Buffer.from('reply-1'), complete: true };
        },
        wrap,
        unwrap,
        maxInput: (_conf, limit) => limit - 1,
        dispose: () => undefined,
      };
    },
  };
}

test('server half: context, then the level the client asked for is granted; messages out of order are refused', async () => {
  const api = fakeApi();
  const h = new GssServerHandshake(api, undefined, 'client #1');
  const first = await h.handle({ type: 'authentication', token: Buffer.from('hello-1') });
  assert.deepEqual(first.reply, encodeGssMessage(MessageType.AUTHENTICATION, Buffer.from('reply-1')));
  assert.equal(first.principal, 'fake@REALM');
  assert.equal(first.requested, undefined);
  const second = await h.handle({ type: 'protection', token: Buffer.from([0x77, Protection.SELECTIVE]) });
  assert.deepEqual(second.reply, encodeGssMessage(MessageType.PROTECTION, Buffer.from([0x77, Protection.CONFIDENTIALITY])), 'answered wrapped, integrity only; selective granted as confidentiality');
  assert.equal(second.requested, Protection.SELECTIVE);
  assert.equal(second.agreed, Protection.CONFIDENTIALITY);
  const h3 = new GssServerHandshake(api, undefined, 'c');
  await h3.handle({ type: 'authentication', token: Buffer.from('hello-1') });
  assert.equal((await h3.handle({ type: 'protection', token: Buffer.from([0x77, Protection.NONE]) })).agreed, Protection.NONE);
  const code = (e: unknown): string | undefined => (e instanceof ProxyError ? e.code : undefined);
  await assert.rejects(new GssServerHandshake(api, undefined, 'c').handle({ type: 'protection', token: Buffer.from('w\u0000') }), (e) => code(e) === 'PROTOCOL_ERROR');
  await assert.rejects(new GssServerHandshake(api, undefined, 'c').handle({ type: 'abort' }), (e) => code(e) === 'GSSAPI_REJECTED');
  const h2 = new GssServerHandshake(api, undefined, 'c');
  await h2.handle({ type: 'authentication', token: Buffer.from('hello-1') });
  await assert.rejects(h2.handle({ type: 'protection', token: Buffer.from('not wrapped') }), (e) => code(e) === 'GSSAPI_FAILED');
});

/** Runs our client half against a scripted server; resolves with what the client sent and the outcome. */
async function clientAgainst(answerLevel: (level: number) => Buffer, asked: 0 | 1 | 2 = 0): Promise<{ sent: Buffer; error?: ProxyError }> {
  setGssApiForTests({ ok: true, api: fakeApi() });
  const sent: Buffer[] = [];
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    let phase = 0;
    s.on('data', (c: Buffer) => {
      sent.push(c);
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const m = decodeGssMessage(buf);
        if (!m) return;
        buf = buf.subarray(m.length);
        if (m.value.type === 'abort') return void s.end();
        if (phase++ === 0) s.write(encodeGssMessage(MessageType.AUTHENTICATION, Buffer.from('reply-1')));
        else s.write(answerLevel((m.value as { token: Buffer }).token[1]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const hop = parseUpstreamUrl('socks5h://proxy.test:1080?gssapi') as UpstreamHop;
  let error: ProxyError | undefined;
  try {
    await gssapiAuthenticate(socket, hop, { service: 'rcmd', protection: asked }, new AbortController().signal);
    await new Promise((r) => setTimeout(r, 50));
  } catch (e) {
    error = e as ProxyError;
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    socket.destroy();
    server.close();
    setGssApiForTests(undefined);
  }
  return { sent: Buffer.concat(sent), ...(error ? { error } : {}) };
}

test('client half: asks for its level wrapped for integrity; a lower answer or selective protection is refused naming the level', async () => {
  const ok = await clientAgainst(() => encodeGssMessage(MessageType.PROTECTION, Buffer.from([0x77, Protection.NONE])));
  assert.equal(ok.error, undefined);
  assert.deepEqual(ok.sent, Buffer.concat([encodeGssMessage(MessageType.AUTHENTICATION, Buffer.from('hello-1')), encodeGssMessage(MessageType.PROTECTION, Buffer.from([0x77, 0x00]))]));

  const lower = await clientAgainst(() => encodeGssMessage(MessageType.PROTECTION, Buffer.from([0x77, Protection.NONE])), 2);
  assert.equal(lower.error?.code, 'GSSAPI_PROTECTION_REFUSED');
  assert.match(lower.error?.message ?? '', /offered only no per-message protection \(level 0\) where per-message integrity and confidentiality was asked for; set gssapi-protection=none/);
  assert.deepEqual([...lower.sent.subarray(-2)], [0x01, 0xff], 'the client aborts before closing');

  const selective = await clientAgainst(() => encodeGssMessage(MessageType.PROTECTION, Buffer.from([0x77, Protection.SELECTIVE])));
  assert.equal(selective.error?.code, 'GSSAPI_PROTECTION_REFUSED');
  assert.match(selective.error?.message ?? '', /insists on selective per-message protection \(level 3\), which is not supported/);

  const refused = await clientAgainst(() => encodeGssAbort());
  assert.equal(refused.error?.code, 'GSSAPI_PROTECTION_REFUSED');
  assert.notDeepEqual([...refused.sent.subarray(-2)], [0x01, 0xff], 'no abort back to a server that aborted');
});

/** Two encapsulating streams over a TCP pair, with the fake protector. */
async function encapsulatedPair(confidential: boolean): Promise<{ a: GssEncapsulatedStream; b: GssEncapsulatedStream; rawA: net.Socket; rawB: net.Socket; close(): void }> {
  const api = fakeApi();
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const rawA = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const rawB = await accepted;
  const a = new GssEncapsulatedStream(rawA, api.createInitiator('t', 0), confidential, 'a');
  const b = new GssEncapsulatedStream(rawB, api.createAcceptor(undefined), confidential, 'b');
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  return { a, b, rawA, rawB, close: () => server.close() };
}

function collect(s: Duplex): Promise<{ data: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve({ data: Buffer.concat(parts) }));
    s.once('error', (error) => resolve({ data: Buffer.concat(parts), error }));
  });
}

test('encapsulated stream: bytes arrive exactly, in messages under 64 KiB, half-close passes as a FIN, both directions', async () => {
  const p = await encapsulatedPair(true);
  const onWire: Buffer[] = [];
  p.rawB.on('data', (c: Buffer) => onWire.push(c));
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  const got = collect(p.b);
  p.a.end(payload);
  const r = await got;
  assert.equal(r.error, undefined);
  assert.ok(r.data.equals(payload));
  assert.equal(p.a.bytesWritten, payload.length);
  assert.equal(p.b.bytesRead, payload.length);
  // Every message on the wire is 01 03 len W<data>: the fake's "encryption" marker is on each.
  let wire = Buffer.concat(onWire);
  let messages = 0;
  while (wire.length > 0) {
    const m = decodeGssMessage(wire);
    assert.ok(m && m.value.type === 'encapsulation');
    assert.equal(m.value.token[0], 0x57);
    assert.ok(m.length <= 4 + 0xffff);
    wire = wire.subarray(m.length);
    messages++;
  }
  assert.ok(messages >= 5, `${messages} messages`);
  // The other direction still flows after a's FIN.
  const back = collect(p.a);
  p.b.end('reply after half-close');
  assert.equal((await back).data.toString(), 'reply after half-close');
  p.close();
});

test('encapsulated stream: a message split at every byte decodes; truncation at EOF, a tampered token or an unencrypted message on a confidential stream is an error', async () => {
  const api = fakeApi();
  const cases: { name: string; bytes: Buffer; expect: RegExp | string }[] = [
    { name: 'byte by byte', bytes: Buffer.concat([encodeGssMessage(MessageType.ENCAPSULATION, Buffer.from('Whello')), encodeGssMessage(MessageType.ENCAPSULATION, Buffer.from('W world'))]), expect: 'hello world' },
    { name: 'truncated', bytes: encodeGssMessage(MessageType.ENCAPSULATION, Buffer.from('Whello')).subarray(0, 7), expect: /inside an encapsulated message/ },
    { name: 'tampered', bytes: encodeGssMessage(MessageType.ENCAPSULATION, Buffer.from('Xhello')), expect: /defective token/ },
    { name: 'unencrypted', bytes: encodeGssMessage(MessageType.ENCAPSULATION, Buffer.from('whello')), expect: /unencrypted message on a confidential connection/ },
    { name: 'abort', bytes: encodeGssAbort(), expect: /aborted/ },
  ];
  for (const c of cases) {
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const raw = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    const peer = await accepted;
    const s = new GssEncapsulatedStream(raw, api.createAcceptor(undefined), true, 'peer');
    const got = collect(s);
    for (const byte of c.bytes) {
      peer.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    peer.end();
    const r = await got;
    if (typeof c.expect === 'string') {
      assert.equal(r.error, undefined, c.name);
      assert.equal(r.data.toString(), c.expect, c.name);
    } else {
      assert.match(r.error?.message ?? 'no error', c.expect, c.name);
    }
    peer.destroy();
    server.close();
  }
});

test('encapsulated stream: a slow reader pauses the socket (bounded buffering), then everything arrives', async () => {
  const p = await encapsulatedPair(false);
  const payload = Buffer.alloc(4 * 1024 * 1024, 0x5a);
  p.a.end(payload);
  p.b.pause();
  await new Promise((r) => setTimeout(r, 200));
  // Nothing is read while paused: what waits sits in the kernel and the socket, not in unbounded JS buffers.
  assert.ok(p.b.readableLength <= 256 * 1024, `readable buffer ${p.b.readableLength}`);
  const got = collect(p.b);
  p.b.resume();
  const r = await got;
  assert.equal(r.data.length, payload.length);
  p.rawA.destroy();
  p.close();
});

test('UI: a Kerberos principal shows on its session row; the Listener has a Kerberos row with the keytab, or why GSSAPI is not offered', () => {
  const base = { id: 7, protocol: 'socks5' as const, command: 'connect' as const, client: '127.0.0.1:5000', destination: 'intranet:443', route: 'corp', routeInfo: undefined, state: 'open' as const, startedAt: 0, closedAt: undefined, bytesUp: 1, bytesDown: 2, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0, outcome: undefined, reply: undefined, outcomeKind: undefined, outcomeCode: undefined, failedHop: undefined, failedMember: undefined };
  const kerberos = sessionNode({ ...base, user: 'alice@CORP.EXAMPLE', authMethod: 'gssapi' }, 1_000);
  assert.match(kerberos.description ?? '', /SOCKS5 CONNECT · Kerberos alice@CORP\.EXAMPLE · corp$/);
  assert.match(kerberos.tooltip ?? '', /Client: 127\.0\.0\.1:5000 \(Kerberos principal alice@CORP\.EXAMPLE\)/);
  const password = sessionNode({ ...base, user: 'relay', authMethod: 'password' }, 1_000);
  assert.ok(!(password.description ?? '').includes('relay ·'), 'per-run and password users stay in the tooltip');

  const rows = (input: Partial<ConfigModelInput>): InfoNode[] => {
    const tree = configTree({ settings: { ...defaultSettings, gssapiKeytab: '/etc/relay.keytab' }, state: 'running', ...input });
    return ((tree.find((n) => n.id === 'listener') as InfoNode).children ?? []) as InfoNode[];
  };
  const offered = rows({ gssapi: { offered: true, detail: 'keytab /etc/relay.keytab · libgssapi_krb5.so.2' } }).find((n) => n.id === 'listener.gssapi');
  assert.equal(offered?.label, 'Kerberos (GSSAPI)');
  assert.equal(offered?.description, 'offered · keytab relay.keytab');
  assert.match(offered?.tooltip ?? '', /keytab \/etc\/relay\.keytab · libgssapi_krb5\.so\.2/);
  const missing = rows({ gssapi: { offered: false, detail: 'no GSS-API library found' } }).find((n) => n.id === 'listener.gssapi');
  assert.equal(missing?.description, 'not offered: no GSS-API library found');
  assert.equal(missing?.icon, 'warning');
  assert.equal(rows({}).find((n) => n.id === 'listener.gssapi')?.description, 'keytab relay.keytab', 'stopped or attached: the setting');
  const none = configTree({ settings: defaultSettings, state: 'running' });
  assert.equal(((none.find((n) => n.id === 'listener') as InfoNode).children ?? []).some((n) => n.id === 'listener.gssapi'), false, 'no keytab: no row');
});

test('Add Upstream accepts ?gssapi URLs as typed (alone, with a user whose password goes to secret storage, in a chain)', () => {
  assert.equal(validateChain('socks5h://proxy.corp:1080?gssapi'), undefined);
  assert.equal(validateChain('socks5h://proxy.corp:1080?gssapi=socks&gssapi-protection=integrity'), undefined);
  assert.equal(validateChain('socks5h://me@proxy.corp:1080?gssapi'), undefined);
  assert.equal(validateChain('socks5h://jump:1080?gssapi -> http://inner:3128'), undefined);
  assert.match(validateChain('socks5h://proxy.corp?gssapi-protection=strong') ?? '', /none, integrity or confidentiality/);
  assert.equal(withPassword('socks5h://me@proxy.corp:1080?gssapi', 'p w'), 'socks5h://me:p%20w@proxy.corp:1080?gssapi');
});
