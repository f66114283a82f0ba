/**
 * GSSAPI (RFC 1961) against a real MIT Kerberos KDC created for this file (test/helpers/kdc.ts): our
 * listener with a keytab, our upstream client with the ticket kinit left in a private ccache, Dante's
 * server (`socksmethod: gssapi`) and Dante's client (socksify), and curl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as net from 'node:net';
import { gssapiAuthenticate } from '../../src/core/gssapi/client';
import { parseUpstreamUrl } from '../../src/core/upstream/url';
import type { UpstreamHop } from '../../src/core/upstream/hop';
import * as path from 'node:path';
import { buildRouter } from '../../src/core/routing';
import { setGssApiForTests } from '../../src/core/gssapi/library';
import type { SessionInfo } from '../../src/core/registry';
import type { ProxyServer } from '../../src/core/server';
import { have, isRoot } from '../helpers/daemons';
import { danteGssapiPrefix, haveKdc, Kdc, REALM, socksifyEnv, startDanteGssapi, useKdc, startKdc } from '../helpers/kdc';
import { run } from '../helpers/run';
import { MemoryLogger, Running, startEchoServer, startHttpServer, startProxy, startUdpEcho } from '../helpers/servers';
import { associate, rawDatagram } from '../helpers/udp';
import { sha256 } from '../helpers/http-tools';
import { rawConnect } from '../helpers/socks';

const missing = ['curl', 'make', 'patch', 'strace'].filter((c) => !have(c));
const skip = process.env.CI ? false : !isRoot ? 'needs root (danted)' : !haveKdc() ? 'needs krb5-kdc, krb5-admin-server, krb5-user' : missing.length > 0 ? `missing ${missing.join(', ')}` : false;

const PRINCIPAL = `alice@${REALM}`;
let kdc: Kdc;
let keytab: string;
let ticket: string;
let restoreEnv: () => void = () => undefined;
let web: Running & { requests: unknown[] };
/** Dante 1.4.2 with GSS-API, built from Debian's source (Debian's own packages have it compiled out). */
let dante: string;
const toClose: { close(): Promise<void> }[] = [];

before(async () => {
  if (skip) return;
  kdc = await startKdc({ clockskew: 1 });
  keytab = kdc.addService('rcmd/localhost');
  ticket = kdc.kinit();
  restoreEnv = useKdc(kdc, ticket);
  web = await startHttpServer();
  toClose.push(web);
  dante = danteGssapiPrefix();
});

after(async () => {
  await Promise.all(toClose.map((c) => c.close().catch(() => undefined)));
  restoreEnv();
  await kdc?.close();
});

/** Environment for a child process: this realm, `ccache` (or none), no proxy variables. */
function childEnv(ccache: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...kdc.env, NO_PROXY: '', no_proxy: '', ALL_PROXY: '', all_proxy: '', http_proxy: '', HTTP_PROXY: '', ...extra };
  env.KRB5CCNAME = ccache ?? `FILE:${path.join(kdc.dir, 'no-such-ccache')}`;
  return env;
}

async function gssListener(): Promise<Running & { server: ProxyServer; logger: MemoryLogger }> {
  const proxy = await startProxy({ gssapi: { keytab } });
  toClose.push(proxy);
  return proxy;
}

/** A relay whose default route is `url`. */
async function relayVia(url: string): Promise<Running & { server: ProxyServer; logger: MemoryLogger }> {
  const proxy = await startProxy({ connectTimeoutMs: 8_000 });
  proxy.server.setRouter(buildRouter({ upstreams: [{ name: 'up', url }], default: 'up' }, { logger: proxy.logger, connectTimeoutMs: 8_000 }));
  toClose.push(proxy);
  return proxy;
}

function curlThrough(port: number, url: string, ccache?: string): ReturnType<typeof run> {
  return run('curl', ['-sS', '--max-time', '15', '--socks5-hostname', `127.0.0.1:${port}`, url], { env: childEnv(ccache), timeoutMs: 20_000 });
}

async function closedSession(server: ProxyServer, match: (s: SessionInfo) => boolean = () => true): Promise<SessionInfo> {
  for (let i = 0; i < 200; i++) {
    const s = server.registry.recentlyClosed().filter(match).at(-1);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`no closed session; lines:\n${server.registry.recentlyClosed().map((s) => `${s.id} ${s.outcome}`).join('\n')}`);
}

/** Sends `size` patterned bytes through a SOCKS5 CONNECT on `relayPort` to an echo server; asserts they all come back exactly. */
async function echoThrough(relay: Running & { logger: MemoryLogger }, size: number, multiplier: number): Promise<void> {
  const echo = await startEchoServer();
  toClose.push(echo);
  const payload = Buffer.alloc(size);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE((i * multiplier) >>> 0, i);
  const c = await rawConnect(relay.port);
  c.write([5, 1, 0]);
  assert.deepEqual([...(await c.read(2))], [5, 0]);
  c.write([5, 1, 0, 1, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]);
  const reply = await c.read(10, 10_000);
  assert.equal(reply[1], 0, `reply ${reply[1]}: ${relay.logger.lines.join('\n')}`);
  const back = new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    c.socket.on('data', (d: Buffer) => parts.push(d));
    c.socket.once('end', () => resolve(Buffer.concat(parts)));
    c.socket.once('error', reject);
  });
  c.socket.end(payload);
  assert.equal(sha256(await back), sha256(payload));
  c.socket.destroy();
}

test('our upstream client authenticates to our listener with the cached ticket; the session shows the principal', { skip }, async () => {
  const listener = await gssListener();
  assert.ok(listener.logger.has('GSSAPI offered to SOCKS5 clients'), listener.logger.lines.join('\n'));
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/kerberos`);
  assert.equal(r.stdout, 'hello /kerberos', `${r.stderr}\n${listener.logger.lines.join('\n')}\n${relay.logger.lines.join('\n')}`);
  const s = await closedSession(listener.server, (x) => x.destination !== undefined);
  assert.equal(s.user, PRINCIPAL);
  assert.ok(listener.logger.has(`GSSAPI authenticated ${PRINCIPAL} (per-message integrity and confidentiality)`), listener.logger.lines.join('\n'));
});

for (const [word, name] of [
  ['none', 'no per-message protection'],
  ['integrity', 'per-message integrity'],
  ['confidentiality', 'per-message integrity and confidentiality'],
] as const) {
  test(`gssapi-protection=${word}: 4 MB each way arrive intact through our client and our listener`, { skip }, async () => {
    const listener = await gssListener();
    const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi&gssapi-protection=${word}`);
    await echoThrough(relay, 4 * 1024 * 1024, 2654435761);
    assert.ok(listener.logger.has(`GSSAPI authenticated ${PRINCIPAL} (${name})`), listener.logger.lines.join('\n'));
  });
}

test('without a ticket our upstream client fails with GSSAPI_NO_CREDENTIALS (X\'01\'), and the listener logs the abort', { skip }, async () => {
  const listener = await gssListener();
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi`);
  process.env.KRB5CCNAME = `FILE:${path.join(kdc.dir, 'no-such-ccache')}`;
  try {
    const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/none`);
    assert.equal(r.code, 97, r.stderr);
    assert.match(r.stderr, /\(1\)|general SOCKS server failure|Can't complete SOCKS5 connection/i);
  } finally {
    process.env.KRB5CCNAME = ticket;
  }
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_NO_CREDENTIALS', s.outcome);
  assert.equal(s.reply, 0x01);
  assert.match(s.outcome ?? '', /run kinit/);
  const l = await closedSession(listener.server);
  assert.equal(l.outcomeCode, 'GSSAPI_REJECTED', l.outcome);
  assert.ok(listener.logger.has('GSSAPI authentication failed [GSSAPI_REJECTED]'), listener.logger.lines.join('\n'));
});

test('an unknown service principal is GSSAPI_UNKNOWN_SERVICE, naming the service', { skip }, async () => {
  const listener = await gssListener();
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi=nosuchservice`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/x`);
  assert.equal(r.code, 97, r.stderr);
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_UNKNOWN_SERVICE', s.outcome);
  assert.match(s.outcome ?? '', /nosuchservice@localhost/);
});

test('an expired ticket is GSSAPI_TICKET_EXPIRED', { skip }, async () => {
  const short = kdc.kinit(undefined, undefined, '2s');
  await new Promise((r) => setTimeout(r, 3_500));
  const listener = await gssListener();
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi`);
  process.env.KRB5CCNAME = short;
  try {
    const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/x`);
    assert.equal(r.code, 97, r.stderr);
  } finally {
    process.env.KRB5CCNAME = ticket;
  }
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_TICKET_EXPIRED', s.outcome);
  assert.match(s.outcome ?? '', /kinit again/);
});

test('a listener whose keytab has no key for the ticket refuses with the abort message and logs GSSAPI_BAD_KEYTAB', { skip }, async () => {
  const otherKeytab = kdc.addService('rcmd/other.localhost');
  const listener = await startProxy({ gssapi: { keytab: otherKeytab } });
  toClose.push(listener);
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/x`);
  assert.equal(r.code, 97, r.stderr);
  const l = await closedSession(listener.server);
  assert.equal(l.outcomeCode, 'GSSAPI_BAD_KEYTAB', l.outcome);
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_REJECTED', s.outcome);
});

test('without a GSS-API library the method is not offered: one log line, X\'FF\' to a GSSAPI-only client, username/password unchanged', { skip }, async () => {
  setGssApiForTests({ ok: false, reason: 'no GSS-API library found (test)' });
  try {
    const listener = await startProxy({ gssapi: { keytab }, users: [{ username: 'u', password: 'p' }] });
    toClose.push(listener);
    assert.ok(listener.logger.has('GSSAPI is not offered: no GSS-API library found (test)'), listener.logger.lines.join('\n'));
    const c = await rawConnect(listener.port);
    c.write([5, 1, 1]);
    assert.deepEqual([...(await c.read(2))], [5, 0xff]);
    c.socket.destroy();
    const d = await rawConnect(listener.port);
    d.write([5, 2, 1, 2]);
    assert.deepEqual([...(await d.read(2))], [5, 2]);
    d.socket.destroy();
  } finally {
    setGssApiForTests(undefined);
  }
});

test('a GSSAPI listener does not let clients in without authentication', { skip }, async () => {
  const listener = await gssListener();
  const c = await rawConnect(listener.port);
  c.write([5, 1, 0]);
  assert.deepEqual([...(await c.read(2))], [5, 0xff]);
  c.socket.destroy();
});


// ---- Dante's client (socksify, real GSSAPI client) through our listener ----

for (const enctype of [undefined, 'integrity', 'clear'] as const) {
  const name = enctype === undefined ? 'per-message integrity and confidentiality' : enctype === 'integrity' ? 'per-message integrity' : 'no per-message protection';
  test(`Dante's client (socksify curl, enctype ${enctype ?? 'default'}) authenticates to our listener; the session's user is the principal`, { skip }, async () => {
    const listener = await gssListener();
    const r = await run(path.join(dante, 'bin', 'socksify'), ['curl', '-sS', '--max-time', '15', `http://127.0.0.1:${web.port}/dante-client`], { env: socksifyEnv(dante, kdc, listener.port, ticket, enctype), timeoutMs: 20_000 });
    assert.equal(r.stdout, 'hello /dante-client', `${r.stderr}\n${listener.logger.lines.join('\n')}`);
    const s = await closedSession(listener.server, (x) => x.destination !== undefined);
    assert.equal(s.user, PRINCIPAL);
    assert.equal(s.destination, `127.0.0.1:${web.port}`);
    assert.ok(listener.logger.has(`GSSAPI authenticated ${PRINCIPAL} (${name})`), listener.logger.lines.join('\n'));
  });
}

test('Dante\'s client without a ticket gets nowhere: our listener logs the GSSAPI client that gave up, and nothing is relayed', { skip }, async () => {
  const listener = await gssListener();
  const r = await run(path.join(dante, 'bin', 'socksify'), ['curl', '-sS', '--max-time', '15', `http://127.0.0.1:${web.port}/no-ticket`], { env: socksifyEnv(dante, kdc, listener.port, undefined), timeoutMs: 20_000 });
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  const s = await closedSession(listener.server);
  assert.equal(s.destination, undefined);
  assert.ok(listener.logger.has('closed during GSSAPI authentication'), listener.logger.lines.join('\n'));
});

test('curl --socks5-gssapi completes the Kerberos context with our listener (Debian\'s curl 7.88.1 then stops on its own bug)', { skip }, async () => {
  const listener = await gssListener();
  // curl 7.88.1 has two bugs on this path (lib/socks.c): it forgets that it offered GSSAPI when the method
  // reply arrives in a later call of its state machine ("SOCKS5 GSSAPI per-message authentication is not
  // supported"), and after a successful GSSAPI exchange it falls through to "Undocumented SOCKS5 mode".
  // The first is a race curl loses when our reply comes after its first read; run under strace, curl's
  // syscalls slow down enough that most attempts get through to the exchange (one is enough).
  const outcomes = new Map<string, number>();
  for (let attempt = 0; attempt < 60; attempt++) {
    const r = await run('strace', ['-f', '-o', '/dev/null', 'curl', '-sS', '--max-time', '10', '--socks5-gssapi', '--socks5-hostname', `localhost:${listener.port}`, `http://127.0.0.1:${web.port}/curl`], { env: childEnv(ticket), timeoutMs: 15_000 });
    const last = r.code === 0 ? r.stdout : (r.stderr.trim().split('\n').pop() ?? '');
    outcomes.set(`${r.code} ${last}`, (outcomes.get(`${r.code} ${last}`) ?? 0) + 1);
    if (r.code === 0) {
      // A curl without the bugs: the whole request goes through.
      assert.equal(r.stdout, 'hello /curl');
      break;
    }
    assert.equal(r.code, 97, r.stderr);
    if (/Undocumented SOCKS5 mode/.test(r.stderr)) break;
    assert.match(r.stderr, /SOCKS5 GSSAPI per-message authentication is not supported/);
  }
  // Our side: curl's own Kerberos client proved alice to the listener, and curl's wrapped level octet (none) was read.
  assert.ok(listener.logger.has(`GSSAPI authenticated ${PRINCIPAL} (no per-message protection)`), `${JSON.stringify([...outcomes])}\n${listener.logger.lines.slice(-6).join('\n')}`);
});

// ---- our relay through Dante's server (socksmethod: gssapi) ----

async function danteWith(enctype?: 'clear' | 'integrity' | 'confidentiality' | 'any'): Promise<{ port: number; output(): string }> {
  const d = await startDanteGssapi(dante, kdc, keytab, enctype);
  toClose.push(d);
  return d;
}

test('our relay chains through Dante (GSSAPI, its default enctype) with the cached ticket: confidentiality, 3 MB exact, Dante logs the principal', { skip }, async () => {
  const d = await danteWith();
  const relay = await relayVia(`socks5h://localhost:${d.port}?gssapi`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/through-dante`);
  assert.equal(r.stdout, 'hello /through-dante', `${r.stderr}\n${relay.logger.lines.join('\n')}\n${d.output()}`);
  await echoThrough(relay, 3 * 1024 * 1024, 2246822519);
  assert.match(d.output(), new RegExp(`gssapi/confidentiality%${PRINCIPAL.replace('.', '\\.')}`));
});

test('our relay through Dante with gssapi-protection=none where Dante allows clear (enctype any)', { skip }, async () => {
  const d = await danteWith('any');
  const relay = await relayVia(`socks5h://localhost:${d.port}?gssapi&gssapi-protection=none`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/clear`);
  assert.equal(r.stdout, 'hello /clear', `${r.stderr}\n${relay.logger.lines.join('\n')}\n${d.output()}`);
  assert.match(d.output(), /gssapi\/clear%alice@/);
});

test('Dante refusing our level (none against its default) is GSSAPI_PROTECTION_REFUSED with the reason', { skip }, async () => {
  const d = await danteWith();
  const relay = await relayVia(`socks5h://localhost:${d.port}?gssapi&gssapi-protection=none`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/x`);
  assert.equal(r.code, 97, r.stderr);
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_PROTECTION_REFUSED', s.outcome);
  assert.equal(s.reply, 0x01);
  assert.match(s.outcome ?? '', /closed the connection instead of answering our request for no per-message protection/);
});

test('through Dante without a ticket: X\'01\' to the client, GSSAPI_NO_CREDENTIALS and "run kinit" on the session', { skip }, async () => {
  const d = await danteWith();
  const relay = await relayVia(`socks5h://localhost:${d.port}?gssapi`);
  process.env.KRB5CCNAME = `FILE:${path.join(kdc.dir, 'no-such-ccache')}`;
  try {
    const c = await rawConnect(relay.port);
    c.write([5, 1, 0]);
    assert.deepEqual([...(await c.read(2))], [5, 0]);
    c.write([5, 1, 0, 1, 127, 0, 0, 1, web.port >> 8, web.port & 0xff]);
    const reply = await c.read(2, 10_000);
    assert.deepEqual([...reply], [5, 0x01]);
    c.socket.destroy();
  } finally {
    process.env.KRB5CCNAME = ticket;
  }
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_NO_CREDENTIALS', s.outcome);
  assert.match(s.outcome ?? '', /no Kerberos ticket: run kinit/);
});

test('through Dante with a ticket for the wrong service (Dante holds only rcmd/other.localhost): refused with the reason', { skip }, async () => {
  const otherKeytab = kdc.addService('rcmd/other.localhost');
  const d = await startDanteGssapi(dante, kdc, otherKeytab, undefined, 'rcmd/other.localhost');
  toClose.push(d);
  const relay = await relayVia(`socks5h://localhost:${d.port}?gssapi`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/x`);
  assert.equal(r.code, 97, r.stderr);
  const s = await closedSession(relay.server);
  assert.equal(s.outcomeCode, 'GSSAPI_REJECTED', s.outcome);
  assert.equal(s.reply, 0x01);
  assert.match(s.outcome ?? '', /upstream socks5h:\/\/localhost:\d+ closed the connection instead of accepting our Kerberos ticket for rcmd@localhost/);
});

test('a keytab on a listener that allows unauthenticated clients does not break curl, which offers GSSAPI ticket or not', { skip }, async () => {
  const listener = await startProxy({ gssapi: { keytab }, allowNoAuth: true });
  toClose.push(listener);
  const r = await curlThrough(listener.port, `http://127.0.0.1:${web.port}/opportunistic`, undefined);
  assert.equal(r.stdout, 'hello /opportunistic', r.stderr);
  const s = await closedSession(listener.server, (x) => x.destination !== undefined);
  assert.equal(s.authMethod, undefined);
});

test('fuzz (fixed seed): random RFC 1961 messages and bytes after X\'01\' never throw out of the engine; each connection is closed and a real client still gets in', { skip }, async () => {
  const listener = await gssListener();
  const message = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.record({ mtyp: fc.constantFrom(1, 2, 3, 0xff, 0, 7), token: fc.uint8Array({ minLength: 0, maxLength: 3000 }) }).map(({ mtyp, token }) => {
      const head = Buffer.from([1, mtyp, token.length >> 8, token.length & 0xff]);
      return Buffer.concat([head, Buffer.from(token)]);
    }),
    // A length that promises more than is sent: the handshake deadline or the client's close ends it.
    fc.integer({ min: 1, max: 0xffff }).map((len) => Buffer.from([1, 1, len >> 8, len & 0xff, 0x60, 0x82])),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), async (messages) => {
      const c = await rawConnect(listener.port);
      c.write([5, 1, 1]);
      assert.deepEqual([...(await c.read(2))], [5, 1]);
      for (const m of messages) c.write(m);
      c.socket.end();
      // The server answers with at most a token or the abort, then closes; never relays anything.
      await c.closed(5_000);
      c.socket.destroy();
    }),
    { seed: 1961, numRuns: 120 },
  );
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi`);
  const r = await curlThrough(relay.port, `http://127.0.0.1:${web.port}/after-fuzz`);
  assert.equal(r.stdout, 'hello /after-fuzz', r.stderr);
  assert.equal(listener.server.registry.recentlyClosed().filter((s) => s.destination !== undefined && s.user !== PRINCIPAL).length, 0, 'nothing relayed for a fuzzed client');
});

test('a GSSAPI-only listener refuses HTTP proxy clients with 403 (no HTTP credentials can succeed) and SOCKS4 clients', { skip }, async () => {
  const listener = await gssListener();
  const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-x', `http://127.0.0.1:${listener.port}`, `http://127.0.0.1:${web.port}/http`], { env: childEnv(ticket), timeoutMs: 15_000 });
  assert.equal(r.stdout, '403', r.stderr);
  assert.ok(listener.logger.has('refused with 403 Forbidden: this listener authenticates SOCKS5 clients with Kerberos (GSSAPI) only'), listener.logger.lines.join('\n'));
  const s4 = await rawConnect(listener.port);
  s4.write([4, 1, web.port >> 8, web.port & 0xff, 127, 0, 0, 1, 0]);
  const reply = await s4.read(8);
  assert.equal(reply[1], 91, 'SOCKS4 request rejected');
  s4.socket.destroy();
});

test('UDP through a GSSAPI-protected upstream is not relayed: the datagram is dropped and the log says why', { skip }, async () => {
  const listener = await gssListener();
  const relay = await relayVia(`socks5h://localhost:${listener.port}?gssapi&gssapi-protection=integrity`);
  const echo = await startUdpEcho();
  toClose.push(echo);
  const a = await associate(relay.port);
  try {
    a.send(rawDatagram([1, 127, 0, 0, 1], echo.port, 'over kerberos?'));
    assert.equal(await a.next(1_500), undefined, 'nothing comes back');
  } finally {
    a.close();
  }
  assert.ok(relay.logger.has('would need GSSAPI-protected datagrams, which are not supported (use gssapi-protection=none)'), relay.logger.lines.join('\n'));
});

test('our listener refuses UDP ASSOCIATE on an integrity-protected connection with X\'07\', inside the encapsulation', { skip }, async () => {
  const listener = await gssListener();
  const socket = net.connect(listener.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.write(Buffer.from([5, 1, 1]));
  const selected = await new Promise<Buffer>((r) => socket.once('data', r));
  assert.deepEqual([...selected], [5, 1]);
  socket.pause();
  const hop = parseUpstreamUrl(`socks5h://localhost:${listener.port}?gssapi&gssapi-protection=integrity`) as UpstreamHop;
  const stream = await gssapiAuthenticate(socket, hop, hop.gssapi!, new AbortController().signal);
  assert.notEqual(stream, socket, 'encapsulated');
  stream.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
  const reply = await new Promise<Buffer>((r) => stream.once('data', r));
  assert.deepEqual([...reply.subarray(0, 2)], [5, 0x07]);
  stream.destroy();
  const l = await closedSession(listener.server, (x) => x.command === 'udp-associate');
  assert.equal(l.reply, 0x07);
  assert.equal(l.user, PRINCIPAL);
});
