/** Loopback servers and a proxy for tests: everything binds to 127.0.0.1 or ::1 on a free port. */
import * as http from 'node:http';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { ProxyServer } from '../../src/core/server';
import type { ProxyOptions } from '../../src/core/context';
import type { Router } from '../../src/core/dialer';
import type { Logger } from '../../src/core/log';
import type { SessionInfo, SessionRegistry } from '../../src/core/registry';

export interface Running {
  port: number;
  close(): Promise<void>;
}

/** A logger that keeps lines so tests can assert on them. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  debug = (m: string): void => void this.lines.push(`debug ${m}`);
  info = (m: string): void => void this.lines.push(`info ${m}`);
  warn = (m: string): void => void this.lines.push(`warn ${m}`);
  error = (m: string): void => void this.lines.push(`error ${m}`);
  has(fragment: string): boolean {
    return this.lines.some((l) => l.includes(fragment));
  }
}

export async function startProxy(options: Partial<ProxyOptions> = {}, router?: Router): Promise<Running & { server: ProxyServer; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const server = new ProxyServer({ host: '127.0.0.1', port: 0, ...options }, logger, router);
  const address = await server.listen();
  return { server, logger, port: address.port, close: () => server.close() };
}

/** An HTTP server answering every request with `hello <path>` (and echoing POST bodies). */
export async function startHttpServer(host = '127.0.0.1'): Promise<Running & { requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.setHeader('content-type', 'text/plain');
      res.end(body.length > 0 ? body : `hello ${req.url}`);
    });
  });
  return listenOn(server, host, () => new Promise((r) => server.close(() => r())), { requests }, () => server.closeAllConnections());
}

/** A TCP server that echoes what it receives and ends when the client ends. */
export async function startEchoServer(host = '127.0.0.1'): Promise<Running & { connections: number }> {
  const state = { connections: 0 };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    state.connections++;
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const running = await serveTcp(server, host);
  // A getter in an object literal (Object.assign would copy its value once, frozen at 0).
  return {
    ...running,
    get connections() {
      return state.connections;
    },
  };
}

/** Listens on an ephemeral port; close() destroys the connections still open, then closes the server. */
export async function serveTcp(server: net.Server, host = '127.0.0.1'): Promise<Running> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return listenOn(server, host, () => new Promise((r) => server.close(() => r())), {}, () => sockets.forEach((s) => s.destroy()));
}

/** A UDP server that answers each datagram with `echo:` + payload. */
export async function startUdpEcho(host = '127.0.0.1'): Promise<Running> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  sock.on('message', (msg, rinfo) => sock.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  return { port: sock.address().port, close: () => new Promise((r) => sock.close(() => r())) };
}

async function listenOn<T extends object>(server: net.Server, host: string, close: () => Promise<void>, extra: T, kill: () => void): Promise<Running & T> {
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(extra, {
    port,
    close: async () => {
      kill();
      await close();
    },
  });
}

/** A port that nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits (bounded) until a closed session matching `match` is in the registry's recently-closed list. */
export function waitForClosed(registry: SessionRegistry, match: (s: SessionInfo) => boolean, timeoutMs = 5000): Promise<SessionInfo> {
  return new Promise((resolve, reject) => {
    const found = (): boolean => {
      const s = registry.recentlyClosed().find(match);
      if (!s) return false;
      clearTimeout(timer);
      registry.off('close', check);
      resolve(s);
      return true;
    };
    const check = (): void => void found();
    const timer = setTimeout(() => {
      registry.off('close', check);
      reject(new Error(`no matching closed session within ${timeoutMs} ms; closed: ${JSON.stringify(registry.recentlyClosed().map((s) => [s.destination, s.outcome]))}`));
    }, timeoutMs);
    if (!found()) registry.on('close', check);
  });
}
