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
import { markFailure, meansUnreachable } from '../outcome';
import type { CommandName } from '../socks5/protocol';
import { driverSupports, HopDriver, NO_ADDRESS } from './driver';
import { hopDriver, udpDriverTitles } from './drivers';
import { deadline } from './handshake';
import { hopLabel, UpstreamHop } from './hop';
import type { CancelSignal } from '../cancel';

export interface ChainOptions {
  connectTimeoutMs: number;
  logger?: Logger;
}

const commandText: Record<CommandName, string> = { connect: 'CONNECT', bind: 'BIND', 'udp-associate': 'UDP ASSOCIATE' };

export class ChainDialer implements Dialer {
  readonly label: string;
  private readonly logger: Logger;
  /** hops[i]'s driver, looked up once: the registry is asked, never a switch on the kind. */
  private readonly drivers: readonly HopDriver[];

  constructor(
    readonly hops: readonly UpstreamHop[],
    private readonly options: ChainOptions,
  ) {
    if (hops.length === 0) throw new ProxyError('BAD_UPSTREAM_URL', 'a chain needs at least one upstream');
    this.drivers = hops.map(hopDriver);
    this.label = hops.map(hopLabel).join(' → ');
    this.logger = options.logger ?? silentLogger;
  }

  async dial(destination: Endpoint, options: DialOptions): Promise<Socket> {
    return (await this.open(destination, 'connect', options.signal)).socket;
  }

  /** BIND through the last hop (one whose driver reads a second reply): the first reply is where the peer should connect, the second who did. */
  async bind(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
    const last = this.hops[this.hops.length - 1];
    const driver = this.drivers[this.drivers.length - 1];
    const readSecondReply = driver.readSecondReply;
    if (!readSecondReply) throw new ProxyError('BAD_COMMAND', `BIND is not possible through the ${driver.title} upstream ${hopLabel(last)}`, Reply.COMMAND_NOT_SUPPORTED);
    const { socket, bound } = await this.open(destination, 'bind', options.signal);
    const where = isUnspecified(bound) ? this.lastHopAddress(socket, bound.port) : bound;
    let settled = false;
    const wait = deadline(options.signal, options.timeoutMs, `BIND through ${this.label}: waiting for the peer`, 'BIND_TIMEOUT');
    const accepted = (async () => {
      try {
        const peer = await readSecondReply.call(driver, socket, last, wait.signal);
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

  /** UDP ASSOCIATE through a single upstream whose driver relays UDP (datagrams cannot cross the TCP hops of a longer chain). */
  async openUdp(receive: UdpReceiver, options: UdpOptions): Promise<UdpPath> {
    const hop = this.hops[0];
    const driver = this.drivers[0];
    const openUdp = driver.openUdp;
    if (this.hops.length !== 1 || !openUdp) {
      throw new ProxyError('BAD_COMMAND', `UDP ASSOCIATE needs a single ${udpDriverTitles().join(' or ')} upstream, not ${this.label}`, Reply.COMMAND_NOT_SUPPORTED);
    }
    const { socket, bound } = await this.open(NO_ADDRESS, 'udp-associate', options.signal);
    try {
      return await openUdp.call(driver, socket, bound, hop, receive, this.logger, options.onDrop);
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
    // The hop being set up, for the outcome's failedHop: the first until it is reached, then each in turn.
    let at = 0;
    let asking = false;
    try {
      socket = await this.connectFirst(dl.signal);
      guarded.push(socket.on('error', guard));
      let bound = NO_ADDRESS;
      for (let i = 0; i < this.hops.length; i++) {
        const hop = this.hops[i];
        at = i;
        asking = false;
        if (hop.tls) {
          socket = await startTls(socket, hop, dl.signal);
          guarded.push(socket.on('error', guard));
        }
        const last = i === this.hops.length - 1;
        const next = last ? destination : endpoint(this.hops[i + 1].host, this.hops[i + 1].port);
        const driver = this.drivers[i];
        const asked = last ? command : 'connect';
        if (!driverSupports(driver, asked)) throw new ProxyError('BAD_COMMAND', `${driver.title} upstream ${hopLabel(hop)} cannot do ${commandText[asked]}`, Reply.COMMAND_NOT_SUPPORTED);
        asking = true;
        const done = await driver.handshake(socket, hop, asked, next, dl.signal);
        if ('socket' in done) {
          socket = done.socket;
          guarded.push(socket.on('error', guard));
          bound = done.bound;
        } else {
          bound = done;
        }
      }
      return { socket, bound };
    } catch (caught) {
      socket?.destroy();
      const err: unknown = dl.signal.aborted ? dl.signal.reason : caught;
      // A middle hop that could not reach the next one (refused, unreachable): the next hop is the one that failed.
      const failed = asking && at < this.hops.length - 1 && meansUnreachable(caught) ? at + 1 : at;
      markFailure(err, { hop: { index: failed, label: hopLabel(this.hops[failed]) } });
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
