/**
 * Live fuzzing of the front ends: a ProxyServer in this process, fed mutated handshakes in random chunks
 * with delays, half-closes and resets (TCP), and random UDP datagrams after a real UDP ASSOCIATE.
 * Every run fails on an uncaught exception or unhandled rejection; after a property the fixture checks
 * that sessions and handles return to their baseline and that real clients still get through.
 *
 * Nothing leaves this machine: the proxy's router dials only the fixture's loopback servers (everything
 * else is refused with a ProxyError), and UDP destinations are rewritten to loopback and our own ports.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { execFile } from 'node:child_process';
import fc from 'fast-check';
import { SocksClient } from 'socks';
import type { Dialer, DialOptions, Router, RouteDecision, UdpOptions, UdpReceiver, BindOptions } from '../../src/core/dialer';
import { DirectDialer } from '../../src/core/direct';
import { Endpoint } from '../../src/core/address';
import { ProxyError, Reply } from '../../src/core/errors';
import { decodeMethodSelection, decodeReply, decodeUdpHeader, decodeUserPassReply } from '../../src/core/socks5/protocol';
import { decodeSocks4Reply } from '../../src/core/socks4/protocol';
import { decodeConnectResponse } from '../../src/core/upstream/codecs';
import { readMessage } from '../../src/core/upstream/handshake';
import { Cancellation } from '../../src/core/cancel';
import { MemoryLogger, Running, startEchoServer, startHttpServer, startProxy, startUdpEcho } from '../helpers/servers';
import { associate, domainAddr, rawDatagram } from '../helpers/udp';
import { applyEdits, edit, NamedProperty } from './decoders';
import type { ProxyServer } from '../../src/core/server';
import { resetOrDestroy } from '../../src/core/socket-util';

export const USER = { username: 'fuzz', password: 'fuzz-secret' };

type Proxy = Running & { server: ProxyServer; logger: MemoryLogger };

export interface Fixture {
  open: Proxy;
  auth: Proxy;
  echo: Running;
  web: Running;
  udpEcho: Running;
  sink: dgram.Socket;
  uncaught: unknown[];
  /** Open handles once everything is up and one real client of each kind has been through. */
  baseline: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Dials only the fixture's loopback servers; BIND and UDP are the real direct ones (both stay local). */
class FuzzDialer implements Dialer {
  readonly label = 'fuzz';
  private readonly direct = new DirectDialer(2_000);
  constructor(private readonly ports: () => ReadonlySet<number>) {}
  dial(destination: Endpoint, options: DialOptions): Promise<net.Socket> {
    if (LOOPBACK.has(destination.host) && this.ports().has(destination.port)) return this.direct.dial(destination, options);
    return Promise.reject(new ProxyError('DIAL_FAILED', `fuzz: ${destination.host}:${destination.port} is not dialled`, Reply.HOST_UNREACHABLE));
  }
  bind(destination: Endpoint, options: BindOptions) {
    return this.direct.bind(destination, options);
  }
  openUdp(receive: UdpReceiver, options: UdpOptions) {
    return this.direct.openUdp(receive, options);
  }
}

class FuzzRouter implements Router {
  private readonly dial: RouteDecision;
  constructor(dialer: Dialer) {
    this.dial = { action: 'dial', dialer, route: 'fuzz' };
  }
  decide(destination: Endpoint): RouteDecision {
    // Port 9 (discard) exercises the refusal path of every front end.
    return destination.port === 9 ? { action: 'block', route: 'fuzz-block' } : this.dial;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function handles(): unknown[] {
  return (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
}

function activeHandles(): number {
  return handles().length;
}

/** What the open handles are, for a failure message. */
function describeHandles(): string {
  return handles()
    .map((h) => {
      const o = h as { constructor: { name: string }; localPort?: number; remotePort?: number; address?: () => unknown; pid?: number };
      const dg = o.constructor.name === 'Socket' && typeof o.address === 'function' && o.localPort === undefined ? (() => { try { return JSON.stringify(o.address?.()); } catch { return 'unbound'; } })() : '';
      return `${o.constructor.name}${o.localPort !== undefined ? ` ${o.localPort}→${o.remotePort}` : ''}${dg ? ` udp ${dg}` : ''}${o.pid ? ` pid ${o.pid}` : ''}`;
    })
    .join(', ');
}

export async function startFixture(): Promise<Fixture> {
  const uncaught: unknown[] = [];
  const record = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  const echo = await startEchoServer();
  const web = await startHttpServer();
  const udpEcho = await startUdpEcho();
  const sink = dgram.createSocket('udp4');
  sink.on('message', () => undefined);
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  const ports = new Set([0, echo.port, web.port]);
  const router = new FuzzRouter(new FuzzDialer(() => ports));
  // Short handshake and BIND limits: a client that half-closes mid-handshake or during BIND is only let go
  // at those limits (see the report in the fuzz commit), and each run waits for its session to close.
  const options = { handshakeTimeoutMs: 500, bindTimeoutMs: 500, udpIdleTimeoutMs: 5_000, idleTimeoutMs: 10_000 };
  const open = await startProxy(options, router);
  const auth = await startProxy({ ...options, users: [USER] }, router);
  const f: Fixture = {
    open,
    auth,
    echo,
    web,
    udpEcho,
    sink,
    uncaught,
    baseline: 0,
    close: async () => {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
      await open.close();
      await auth.close();
      await echo.close();
      await web.close();
      await udpEcho.close();
      await new Promise<void>((r) => sink.close(() => r()));
    },
  };
  await checkServes(f);
  await settle(f);
  f.baseline = activeHandles();
  return f;
}

function noUncaught(f: Fixture): void {
  if (f.uncaught.length > 0) {
    const errs = f.uncaught.splice(0);
    throw new Error(`thrown out of the proxy: ${errs.map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e))).join('\n')}`);
  }
}

async function sessionsClosed(f: Fixture, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const sessions = (): number => f.open.server.registry.size + f.auth.server.registry.size;
  while (sessions() > 0 && Date.now() < until) await sleep(10);
  assert.equal(sessions(), 0, `sessions still open: ${JSON.stringify([...f.open.server.registry.snapshot(), ...f.auth.server.registry.snapshot()])}`);
}

/**
 * Sessions of both proxies back to 0 and open handles back to the baseline, within a bounded wait.
 * Tolerance 2: handles that close asynchronously a moment after their session (a destroyed socket's
 * handle, a curl child's pipes) may still be counted at the instant of the check; a leak grows with the
 * number of runs (dozens per property) and stays far above it.
 */
export async function settle(f: Fixture, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  await sessionsClosed(f, timeoutMs);
  // A destroyed socket still holding its handle is a leak whatever the count (Node never closes it: see resetOrDestroy).
  const zombies = (): number => handles().filter((h) => h instanceof net.Socket && h.destroyed).length;
  while (zombies() > 0 && Date.now() < until) await sleep(20);
  assert.equal(zombies(), 0, `destroyed sockets still hold their handles: ${describeHandles()}`);
  if (f.baseline === 0) return;
  while (activeHandles() > f.baseline + 2 && Date.now() < until) await sleep(20);
  assert.ok(activeHandles() <= f.baseline + 2, `open handles ${activeHandles()}, baseline ${f.baseline}: ${describeHandles()}`);
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], { env: { ...process.env, NO_PROXY: '', no_proxy: '' } }, (err, stdout, stderr) =>
      err ? reject(new Error(`curl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

async function echoThrough(socket: net.Socket): Promise<void> {
  const got = new Promise<string>((resolve, reject) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.length >= 5) resolve(text);
    });
    socket.once('error', reject);
    setTimeout(() => reject(new Error(`echo timed out; got "${text}"`)), 3_000).unref();
  });
  socket.write('alive');
  assert.equal(await got, 'alive');
  socket.destroy();
}

/** Real clients through every front end: socks (npm) for SOCKS5 with and without RFC 1929 and SOCKS4/4a, curl for HTTP, and UDP. */
export async function checkServes(f: Fixture): Promise<void> {
  const dest = { host: '127.0.0.1', port: f.echo.port };
  const s5 = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.open.port, type: 5 }, command: 'connect', destination: dest, timeout: 3_000 });
  await echoThrough(s5.socket);
  const s5a = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.auth.port, type: 5, userId: USER.username, password: USER.password }, command: 'connect', destination: dest, timeout: 3_000 });
  await echoThrough(s5a.socket);
  const s4 = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.open.port, type: 4 }, command: 'connect', destination: dest, timeout: 3_000 });
  await echoThrough(s4.socket);
  const s4a = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.open.port, type: 4 }, command: 'connect', destination: { host: 'localhost', port: f.echo.port }, timeout: 3_000 });
  await echoThrough(s4a.socket);
  assert.equal(await curl(['-x', `http://127.0.0.1:${f.open.port}`, `http://127.0.0.1:${f.web.port}/alive`]), 'hello /alive');
  assert.equal(await curl(['-x', `http://127.0.0.1:${f.auth.port}`, '--proxy-user', `${USER.username}:${USER.password}`, `http://127.0.0.1:${f.web.port}/auth`]), 'hello /auth');
  const a = await associate(f.open.port);
  try {
    a.send(rawDatagram([1, 127, 0, 0, 1], f.udpEcho.port, 'udp alive'));
    const answer = await a.next(3_000);
    assert.ok(answer, 'UDP answer');
    assert.equal(decodeUdpHeader(answer).payload.toString(), 'echo:udp alive');
  } finally {
    a.close();
  }
}

// ---- TCP scripts ----

/** `finish`: the rest of the bytes and the FIN in one write (a request, its data and the end arrive together). */
type Step = { k: 'chunk'; n: number } | { k: 'delay'; ms: number } | { k: 'end' } | { k: 'finish' } | { k: 'reset' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 64 }).map((n): Step => ({ k: 'chunk', n })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 15 }).map((ms): Step => ({ k: 'delay', ms })) },
  { weight: 1, arbitrary: fc.constant<Step>({ k: 'end' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ k: 'finish' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ k: 'reset' }) },
);

/** Connects, plays the steps over `data`, writes what is left, waits briefly for the proxy, then closes. */
async function drive(port: number, data: Buffer, steps: readonly Step[]): Promise<void> {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  sock.on('error', () => undefined);
  sock.on('data', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await Promise.race([new Promise((r) => sock.once('connect', r)), closed, sleep(2_000)]);
  let off = 0;
  let ended = false;
  for (const s of steps) {
    if (sock.destroyed) break;
    if (s.k === 'chunk' && !ended) {
      sock.write(data.subarray(off, off + s.n));
      off += s.n;
    } else if (s.k === 'delay') await sleep(s.ms);
    else if (s.k === 'end' || s.k === 'finish') {
      if (s.k === 'finish' && !ended) sock.end(data.subarray(off));
      else sock.end();
      off = data.length;
      ended = true;
    } else if (s.k === 'reset') {
      // Node cannot reset while our end() is pending (it would leak the handle): then it is a plain destroy.
      resetOrDestroy(sock);
      break;
    }
  }
  if (!sock.destroyed && !ended && off < data.length) sock.write(data.subarray(off));
  await Promise.race([closed, sleep(40)]);
  sock.destroy();
  await Promise.race([closed, sleep(1_000)]);
}

const b = (...parts: (number[] | string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const port16 = (p: number): number[] => [p >> 8, p & 0xff];

/** Valid openings of each front end (what the mutations start from), given the fixture's ports. */
type Bases = (f: Fixture) => Buffer[];

const socks5Requests = (f: Fixture): Buffer[] => {
  const e = port16(f.echo.port);
  return [
    b([5, 1, 0, 1, 127, 0, 0, 1, ...e], 'hello'),
    b([5, 1, 0, 3, 9], 'localhost', e, 'hello'),
    b([5, 1, 0, 4, ...Array(15).fill(0), 1, ...e], 'hello'),
    b([5, 1, 0, 1, 10, 0, 0, 1, 0, 80]),
    b([5, 1, 0, 1, 127, 0, 0, 1, 0, 9]),
    b([5, 2, 0, 1, 127, 0, 0, 1, 0, 0]),
    b([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]),
  ];
};

const socks5Open: Bases = (f) => socks5Requests(f).flatMap((r) => [b([5, 1, 0], r), b([5, 3, 0, 1, 2], r)]);

const socks5Auth: Bases = (f) => {
  const up = (u: string, p: string): Buffer => b([1, u.length], u, [p.length], p);
  return socks5Requests(f).flatMap((r) => [b([5, 1, 2], up(USER.username, USER.password), r), b([5, 2, 0, 2], up(USER.username, 'wrong'), r), b([5, 1, 0], r)]);
};

const socks4: Bases = (f) => {
  const e = port16(f.echo.port);
  return [b([4, 1, ...e, 127, 0, 0, 1], 'user', [0], 'hello'), b([4, 1, ...e, 0, 0, 0, 1], 'user', [0], 'localhost', [0], 'hello'), b([4, 2, 0, 0, 127, 0, 0, 1, 0]), b([4, 1, 0, 9, 127, 0, 0, 1, 0])];
};

const httpReqs = (f: Fixture, auth: boolean): Buffer[] => {
  const cred = auth ? `Proxy-Authorization: Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}\r\n` : '';
  const w = `127.0.0.1:${f.web.port}`;
  return [
    b(`CONNECT 127.0.0.1:${f.echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${f.echo.port}\r\n${cred}\r\nhello`),
    b(`GET http://${w}/x?y=1 HTTP/1.1\r\nHost: ${w}\r\n${cred}Connection: keep-alive\r\n\r\nGET http://${w}/again HTTP/1.1\r\nHost: ${w}\r\n${cred}\r\n`),
    b(`POST http://${w}/p HTTP/1.1\r\nHost: ${w}\r\n${cred}Content-Length: 5\r\n\r\nhello`),
    b(`POST http://${w}/c HTTP/1.1\r\nHost: ${w}\r\n${cred}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
    b(`GET http://127.0.0.1:${f.echo.port}/not-http HTTP/1.1\r\nHost: x\r\n${cred}\r\n`),
    b(`GET http://10.0.0.1/ HTTP/1.0\r\n${cred}\r\n`),
    b(`GET /origin-form HTTP/1.1\r\nHost: ${w}\r\n\r\n`),
  ];
};

/** A connection's bytes: a mutated valid opening, or random bytes after the front end's first byte. */
function connectionBytes(bases: Bases, firstBytes: number[]) {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('mutated' as const), base: fc.nat(), edits: fc.array(edit, { maxLength: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), first: fc.constantFrom(...firstBytes), rest: fc.uint8Array({ maxLength: 200 }) }) },
  ).map((c) => {
    const build = (f: Fixture): Buffer => {
      if (c.kind === 'random') return Buffer.concat([Buffer.from([c.first]), Buffer.from(c.rest)]);
      const all = bases(f);
      return applyEdits(all[c.base % all.length], c.edits);
    };
    // Counterexamples show the recipe (base index and edits, or the random bytes), not the function.
    return Object.assign(build, { [fc.toStringMethod]: () => fc.stringify(c) });
  });
}

function tcpProperty(name: string, target: (f: Fixture) => Proxy, bases: Bases, firstBytes: number[], numRuns: number): (f: Fixture) => NamedProperty {
  return (f) => ({
    name,
    numRuns,
    property: fc.asyncProperty(connectionBytes(bases, firstBytes), fc.array(step, { maxLength: 10 }), async (bytes, steps) => {
      await drive(target(f).port, bytes(f), steps);
      noUncaught(f);
      // Per run, so a session left open shrinks to the input that left it (our side is closed by now).
      await sessionsClosed(f, 3_000);
    }),
  });
}

// ---- UDP datagrams ----

/** What a datagram asks for, before the fixture's ports are known. */
const udpPort = fc.constantFrom('zero', 'echo', 'sink', 'one') as fc.Arbitrary<'zero' | 'echo' | 'sink' | 'one'>;
const udpAddr: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom<number[]>([1, 127, 0, 0, 1], [1, 0, 0, 0, 0], [1, 127, 1, 2, 3], [4, ...Array(15).fill(0), 1], [4, ...Array(16).fill(0)], [4, ...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1], [4, 0xfe, 0x80, ...Array(13).fill(0), 1]),
  fc.constantFrom('localhost', 'nothing.invalid', 'bad name', '..', '-x', 'a'.repeat(64), '127.0.0.1', '::1', 'ünï', 'a\0b').map((n) => domainAddr(n)),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((u) => domainAddr(Buffer.from(u))),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 20 })).map(([atyp, rest]) => [atyp, ...rest]),
);

const datagram = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('header' as const), addr: udpAddr, port: udpPort, frag: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), payload: fc.uint8Array({ maxLength: 64 }), edits: fc.array(edit, { maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), data: fc.uint8Array({ maxLength: 80 }) }) },
);
type DatagramSpec = typeof datagram extends fc.Arbitrary<infer T> ? T : never;

/**
 * The bytes to send. Whatever the edits made of the address, a datagram the relay would send goes only to
 * loopback and to a port of ours: a decodable IP destination elsewhere is rewritten to 127.0.0.1 or ::1,
 * and a port other than ours to the sink's.
 */
function datagramBytes(f: Fixture, d: DatagramSpec): Buffer {
  const ports = { zero: 0, echo: f.udpEcho.port, sink: f.sink.address().port, one: 1 };
  const raw = d.kind === 'random' ? Buffer.from(d.data) : applyEdits(rawDatagram(d.addr, ports[d.port], Buffer.from(d.payload), d.frag), d.edits);
  let dec;
  try {
    dec = decodeUdpHeader(raw);
  } catch {
    return raw;
  }
  const out = Buffer.from(raw);
  const ours = new Set([0, ports.echo, ports.sink]);
  const atyp = out[3];
  const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + out[4];
  if (atyp === 1 && !dec.destination.host.startsWith('127.') && dec.destination.host !== '0.0.0.0') out.set([127, 0, 0, 1], 4);
  if (atyp === 4 && !['::1', '::'].includes(dec.destination.host)) out.set([...Array(15).fill(0), 1], 4);
  if (!ours.has(dec.destination.port)) out.writeUInt16BE(ports.sink, 4 + addrLen);
  return out;
}

function udpProperty(numRuns: number): (f: Fixture) => NamedProperty {
  return (f) => ({
    name: 'UDP: random datagrams after a real UDP ASSOCIATE (port 0, bad names, IPv6, fragments, intruders, early close)',
    numRuns,
    property: fc.asyncProperty(
      fc.boolean(),
      fc.array(fc.record({ d: datagram, intruder: fc.integer({ min: 0, max: 5 }).map((x) => x === 0) }), { minLength: 1, maxLength: 12 }),
      fc.option(fc.nat(), { nil: undefined }),
      async (useAuth, datagrams, closeAt) => {
        const a = await associate(useAuth ? f.auth.port : f.open.port, useAuth ? USER : undefined);
        const intruder = dgram.createSocket('udp4');
        await new Promise<void>((r) => intruder.bind(0, '127.0.0.1', () => r()));
        try {
          const cut = closeAt === undefined ? -1 : closeAt % (datagrams.length + 1);
          let fromClient = 0;
          for (const [i, { d, intruder: other }] of datagrams.entries()) {
            if (i === cut) a.control.socket.destroy();
            const bytes = datagramBytes(f, d);
            if (other) intruder.send(bytes, a.relay.port, a.relay.host);
            else {
              a.send(bytes);
              fromClient++;
            }
          }
          if (cut < 0) {
            a.send(rawDatagram([1, 127, 0, 0, 1], f.udpEcho.port, 'still there'));
            fromClient++;
            let answer: Buffer | undefined;
            // Answers to earlier datagrams may come first: skip them, bounded.
            const isMine = (m: Buffer | undefined): boolean => m !== undefined && m.toString('latin1').endsWith('echo:still there');
            for (let i = 0; i < 20; i++) {
              answer = await a.next(3_000);
              if (!answer || isMine(answer)) break;
            }
            assert.ok(isMine(answer), 'the association still relays after the fuzzed datagrams');
            // Every datagram from the client is relayed or counted as dropped (names may still be resolving: bounded wait).
            const reg = (useAuth ? f.auth : f.open).server.registry;
            const mine = (): { datagramsUp: number; droppedDatagrams: number } | undefined => reg.snapshot().find((s) => s.command === 'udp-associate' && s.client === `127.0.0.1:${a.control.socket.localPort}`);
            for (let i = 0; i < 100; i++) {
              const s = mine();
              if (s && s.datagramsUp + s.droppedDatagrams === fromClient) break;
              await sleep(20);
            }
            const s = mine();
            assert.ok(s, 'the association is live');
            assert.equal(s.datagramsUp + s.droppedDatagrams, fromClient, `relayed ${s.datagramsUp} + dropped ${s.droppedDatagrams} = sent ${fromClient}`);
          }
        } finally {
          a.close();
          intruder.close();
        }
        noUncaught(f);
      },
    ),
  });
}

// ---- upstream reply readers ----

const replyReaders: [string, Parameters<typeof readMessage>[1], Buffer[]][] = [
  ['SOCKS5 method selection', decodeMethodSelection, [Buffer.from([5, 0]), Buffer.from([5, 2])]],
  ['RFC 1929 reply', decodeUserPassReply, [Buffer.from([1, 0]), Buffer.from([1, 1])]],
  ['SOCKS5 reply', decodeReply, [Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 4, 56]), Buffer.from([5, 0, 0, 3, 9, ...Buffer.from('localhost'), 0, 80]), Buffer.from([5, 0, 0, 4, ...Array(15).fill(0), 1, 0, 1])]],
  ['SOCKS4 reply', decodeSocks4Reply, [Buffer.from([0, 90, 0, 80, 127, 0, 0, 1])]],
  ['HTTP CONNECT response', decodeConnectResponse, [Buffer.from('HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n'), Buffer.from('HTTP/1.0 407 Auth\r\nProxy-Authenticate: Basic\r\n\r\n')]],
];

/**
 * The client side's readers (readMessage with each upstream decoder) against an "upstream" that answers with
 * a mutated reply and trailing bytes, in random chunks, maybe closing early: the read resolves or rejects with
 * a ProxyError, never hangs past the close, and the bytes after a message are left for the next reader.
 */
function readerProperty(numRuns: number): (f: Fixture) => NamedProperty {
  return (f) => ({
    name: 'upstream reply readers: mutated replies in random chunks, trailing bytes, early close',
    numRuns,
    property: fc.asyncProperty(
      fc.nat(),
      fc.nat(),
      fc.array(edit, { maxLength: 3 }),
      fc.uint8Array({ maxLength: 16 }),
      fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 8 }),
      fc.boolean(),
      async (which, base, edits, trailing, chunks, closeEarly) => {
        const [, decode, bases] = replyReaders[which % replyReaders.length];
        const bytes = Buffer.concat([applyEdits(bases[base % bases.length], edits), Buffer.from(trailing)]);
        const server = net.createServer((s) => {
          s.on('error', () => undefined);
          void (async () => {
            let off = 0;
            for (const n of chunks) {
              if (off >= bytes.length) break;
              s.write(bytes.subarray(off, off + n));
              off += n;
              await sleep(1);
            }
            if (off < bytes.length) s.write(bytes.subarray(off));
            if (closeEarly) s.end();
          })();
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
        const sock = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
        sock.on('error', () => undefined);
        const deadline = new Cancellation();
        const timer = setTimeout(() => deadline.abort(new ProxyError('CONNECT_TIMEOUT', 'reader test deadline')), 300);
        try {
          await new Promise((r) => sock.once('connect', r));
          let expected: { value: unknown; length: number } | undefined | 'error';
          try {
            expected = decode(bytes);
          } catch {
            expected = 'error';
          }
          let result: unknown;
          try {
            result = await readMessage(sock, decode, deadline.signal, 'reply');
          } catch (err) {
            assert.ok(err instanceof ProxyError, `rejected with ${String(err)}`);
            // Whole input is invalid, or incomplete and the upstream closed (or the deadline, when it did not).
            assert.ok(expected === 'error' || expected === undefined, `rejected although the bytes decode: ${String(err)}`);
            return;
          }
          assert.ok(expected !== 'error' && expected !== undefined, 'resolved only when the bytes decode');
          assert.deepEqual(result, expected.value);
          // What followed the message is still there for the next reader (the relay).
          const rest = bytes.subarray(expected.length);
          if (rest.length > 0) {
            const got: Buffer[] = [];
            let n = 0;
            sock.on('data', (d: Buffer) => {
              got.push(d);
              n += d.length;
            });
            sock.resume();
            for (let i = 0; i < 100 && n < rest.length; i++) await sleep(5);
            assert.deepEqual(Buffer.concat(got), rest);
          }
        } finally {
          clearTimeout(timer);
          sock.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        }
        noUncaught(f);
      },
    ),
  });
}

/** The live properties, each with its run count for the fixed-seed test. */
export const liveProperties: ((f: Fixture) => NamedProperty)[] = [
  tcpProperty('SOCKS5 without authentication: mutated handshakes, chunking, half-close, reset', (f) => f.open, socks5Open, [5], 60),
  tcpProperty('SOCKS5 with RFC 1929 username/password: mutated handshakes, chunking, half-close, reset', (f) => f.auth, socks5Auth, [5], 50),
  tcpProperty('SOCKS4/4a: mutated requests, chunking, half-close, reset', (f) => f.open, socks4, [4], 40),
  tcpProperty('HTTP proxy: mutated CONNECT and absolute-form requests, chunking, half-close, reset', (f) => f.open, (f) => httpReqs(f, false), [0x47, 0x43, 0x50], 50),
  tcpProperty('HTTP proxy with Basic authentication: mutated requests', (f) => f.auth, (f) => [...httpReqs(f, true), ...httpReqs(f, false).slice(0, 2)], [0x47, 0x43], 30),
  udpProperty(150),
  readerProperty(150),
];
