/**
 * A Dialer through one or more upstreams, in order: TCP to the first hop, then each hop's handshake over
 * the stream so far asks it to connect to the next hop, and the last one to the destination.
 * The whole setup (TCP connect, TLS, every handshake) is bounded by the connect timeout.
 */
import { readFile } from 'node:fs/promises';
import { isIP, Socket } from 'node:net';
import * as tls from 'node:tls';
import { Endpoint, endpoint, isUnspecified, normalizeIp } from '../address';
import type { BindHandle, BindOptions, Dialer, DialOptions, UdpOptions, UdpPath, UdpReceiver } from '../dialer';
import { connectTcp } from '../direct';
import { describeError, ProxyError, Reply, replyForError } from '../errors';
import { Logger, silentLogger } from '../log';
import type { CommandName } from '../socks5/protocol';
import { deadline } from './handshake';
import { httpConnectHandshake } from './http-connect-client';
import { readSocks4Reply, socks4Handshake } from './socks4-client';
import { readSocks5Reply, socks5Handshake } from './socks5-client';
import { Socks5UdpPath } from './udp-client';
import { hopLabel, UpstreamHop } from './url';
import type { CancelSignal } from '../cancel';

export interface ChainOptions {
  connectTimeoutMs: number;
  logger?: Logger;
}

const NO_ADDRESS: Endpoint = { type: 'ipv4', host: '0.0.0.0', port: 0 };

export class ChainDialer implements Dialer {
  readonly label: string;
  private readonly logger: Logger;

  constructor(
    readonly hops: readonly UpstreamHop[],
    private readonly options: ChainOptions,
  ) {
    if (hops.length === 0) throw new ProxyError('BAD_UPSTREAM_URL', 'a chain needs at least one upstream');
    this.label = hops.map(hopLabel).join(' → ');
    this.logger = options.logger ?? silentLogger;
  }

  async dial(destination: Endpoint, options: DialOptions): Promise<Socket> {
    return (await this.open(destination, 'connect', options.signal)).socket;
  }

  /** BIND through the last hop (SOCKS5 or SOCKS4): its first reply is where the peer should connect, the second who did. */
  async bind(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
    const last = this.hops[this.hops.length - 1];
    if (last.kind === 'http') throw new ProxyError('BAD_COMMAND', `BIND is not possible through an HTTP upstream (${hopLabel(last)})`, Reply.COMMAND_NOT_SUPPORTED);
    const { socket, bound } = await this.open(destination, 'bind', options.signal);
    const where = isUnspecified(bound) ? this.lastHopAddress(socket, bound.port) : bound;
    let settled = false;
    const wait = deadline(options.signal, options.timeoutMs, `BIND through ${this.label}: waiting for the peer`, 'BIND_TIMEOUT');
    const accepted = (async () => {
      try {
        const peer = last.kind === 'socks5' ? await readSocks5Reply(socket, last, wait.signal, 'BIND (second reply)') : await readSocks4Reply(socket, last, wait.signal, 'BIND (second reply)');
        return { socket, peer };
      } catch (err) {
        socket.destroy();
        throw err;
      } finally {
        settled = true;
        wait.dispose();
      }
    })();
    accepted.catch(() => undefined);
    return {
      bound: where,
      accepted,
      close: () => {
        if (!settled) socket.destroy();
      },
    };
  }

  /** UDP ASSOCIATE through a single SOCKS5 upstream (datagrams cannot cross the TCP hops of a longer chain). */
  async openUdp(receive: UdpReceiver, options: UdpOptions): Promise<UdpPath> {
    const hop = this.hops[0];
    if (this.hops.length !== 1 || hop.kind !== 'socks5') {
      throw new ProxyError('BAD_COMMAND', `UDP ASSOCIATE needs a single SOCKS5 upstream, not ${this.label}`, Reply.COMMAND_NOT_SUPPORTED);
    }
    const { socket, bound } = await this.open(NO_ADDRESS, 'udp-associate', options.signal);
    try {
      return await Socks5UdpPath.open(socket, bound, hop, receive, this.logger, options.onDrop);
    } catch (err) {
      socket.destroy();
      throw new ProxyError('UPSTREAM_FAILED', `UDP through ${this.label}: ${describeError(err)}`, Reply.GENERAL_FAILURE, { cause: err });
    }
  }

  /** Runs every hop; resolves with the stream and the last hop's BND address. */
  async open(destination: Endpoint, command: CommandName, parent: CancelSignal): Promise<{ socket: Socket; bound: Endpoint }> {
    const dl = deadline(parent, this.options.connectTimeoutMs, `connecting through ${this.label}`);
    let socket: Socket | undefined;
    // Between reads (e.g. while a socks5:// hop resolves a name) nothing else listens for errors: keep them from crashing us.
    const guard = (): void => undefined;
    const guarded: Socket[] = [];
    try {
      socket = await this.connectFirst(dl.signal);
      guarded.push(socket.on('error', guard));
      let bound = NO_ADDRESS;
      for (let i = 0; i < this.hops.length; i++) {
        const hop = this.hops[i];
        if (hop.tls) {
          socket = await startTls(socket, hop, dl.signal);
          guarded.push(socket.on('error', guard));
        }
        const last = i === this.hops.length - 1;
        const next = last ? destination : endpoint(this.hops[i + 1].host, this.hops[i + 1].port);
        bound = await handshake(socket, hop, last ? command : 'connect', next, dl.signal);
      }
      return { socket, bound };
    } catch (caught) {
      socket?.destroy();
      const err: unknown = dl.signal.aborted ? dl.signal.reason : caught;
      if (err instanceof ProxyError && err.code === 'UPSTREAM_AUTH_FAILED') this.logger.warn(`upstream authentication failed: ${err.message}`);
      throw err;
    } finally {
      for (const s of guarded) s.off('error', guard);
      dl.dispose();
    }
  }

  private async connectFirst(signal: CancelSignal): Promise<Socket> {
    const first = this.hops[0];
    try {
      return await connectTcp(first.host, first.port, this.options.connectTimeoutMs, signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const reply = replyForError(err);
      throw new ProxyError('UPSTREAM_FAILED', `cannot reach upstream ${hopLabel(first)}: ${describeError(err)}`, reply === Reply.GENERAL_FAILURE ? Reply.HOST_UNREACHABLE : reply, { cause: err });
    }
  }

  private lastHopAddress(socket: Socket, port: number): Endpoint {
    const last = this.hops[this.hops.length - 1];
    if (isIP(last.host) !== 0) return endpoint(last.host, port);
    if (this.hops.length === 1) return endpoint(normalizeIp(socket.remoteAddress), port);
    return endpoint(last.host, port);
  }
}

async function handshake(socket: Socket, hop: UpstreamHop, command: CommandName, destination: Endpoint, signal: CancelSignal): Promise<Endpoint> {
  switch (hop.kind) {
    case 'socks5':
      return socks5Handshake(socket, hop, command, destination, signal);
    case 'socks4':
      if (command === 'udp-associate') throw new ProxyError('BAD_COMMAND', `SOCKS4 upstream ${hopLabel(hop)} has no UDP`, Reply.COMMAND_NOT_SUPPORTED);
      return socks4Handshake(socket, hop, command, destination, signal);
    case 'http':
      if (command !== 'connect') throw new ProxyError('BAD_COMMAND', `HTTP upstream ${hopLabel(hop)} only does CONNECT`, Reply.COMMAND_NOT_SUPPORTED);
      return httpConnectHandshake(socket, hop, destination, signal).then(() => NO_ADDRESS);
  }
}

/** Wraps the stream in TLS for an https:// upstream, verifying its certificate unless ?insecure=1. */
async function startTls(socket: Socket, hop: UpstreamHop, signal: CancelSignal): Promise<Socket> {
  const settings = hop.tls ?? { rejectUnauthorized: true };
  let ca: Buffer | undefined;
  if (settings.caFile !== undefined) {
    try {
      ca = await readFile(settings.caFile);
    } catch (err) {
      throw new ProxyError('UPSTREAM_FAILED', `cannot read the CA file for ${hopLabel(hop)}: ${describeError(err)}`, Reply.GENERAL_FAILURE, { cause: err });
    }
  }
  const servername = settings.servername ?? (isIP(hop.host) === 0 ? hop.host : undefined);
  return new Promise<Socket>((resolve, reject) => {
    const secure = tls.connect({
      socket,
      ...(servername !== undefined ? { servername } : {}),
      rejectUnauthorized: settings.rejectUnauthorized,
      ...(ca ? { ca: [...tls.rootCertificates, ca.toString()] } : {}),
      allowHalfOpen: true,
    } as tls.ConnectionOptions);
    const cleanup = (): void => {
      secure.off('error', onError);
      secure.off('secureConnect', onSecure);
      signal.removeEventListener('abort', onAbort);
    };
    const onError = (err: Error): void => {
      cleanup();
      secure.destroy();
      reject(new ProxyError('UPSTREAM_FAILED', `TLS with upstream ${hopLabel(hop)} failed: ${describeError(err)}`, Reply.GENERAL_FAILURE, { cause: err }));
    };
    const onAbort = (): void => {
      cleanup();
      secure.destroy();
      reject(signal.reason);
    };
    const onSecure = (): void => {
      cleanup();
      resolve(secure);
    };
    secure.once('error', onError);
    secure.once('secureConnect', onSecure);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
