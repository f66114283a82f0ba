/** UDP ASSOCIATE through a SOCKS5 upstream: datagrams go to the upstream's relay with the RFC 1928 header. */
import * as dgram from 'node:dgram';
import * as dns from 'node:dns/promises';
import type { Socket } from 'node:net';
import { Endpoint, endpoint, formatEndpoint, isUnspecified, normalizeIp } from '../address';
import type { UdpPath, UdpReceiver } from '../dialer';
import { describeError } from '../errors';
import type { Logger } from '../log';
import { decodeUdpHeader, encodeUdpHeader } from '../socks5/protocol';
import { resolveHere } from './handshake';
import { hopLabel, UpstreamHop } from './url';

const MAX_CACHE = 256;

export class Socks5UdpPath implements UdpPath {
  private closed = false;
  private readonly names = new Map<string, Endpoint>();

  private constructor(
    private readonly control: Socket,
    private readonly socket: dgram.Socket,
    private readonly relayAddr: Endpoint,
    private readonly hop: UpstreamHop,
    private readonly logger: Logger,
  ) {}

  /**
   * Wraps an association the upstream granted on `control` (BND = `bound`). The association lives as long
   * as the control connection; when the upstream closes it, the path stops.
   */
  static async open(control: Socket, bound: Endpoint, hop: UpstreamHop, receive: UdpReceiver, logger: Logger): Promise<Socks5UdpPath> {
    let relay = isUnspecified(bound) ? endpoint(normalizeIp(control.remoteAddress), bound.port) : bound;
    if (relay.type === 'domain') relay = endpoint((await dns.lookup(relay.host)).address, relay.port);
    const local = normalizeIp(control.localAddress);
    const sock = dgram.createSocket(relay.type === 'ipv6' ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      // The same local address as the control connection: the upstream expects datagrams from that host.
      sock.bind(0, relay.type === 'ipv6' ? (local.includes(':') ? local : '::') : local.includes(':') ? '0.0.0.0' : local, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    const path = new Socks5UdpPath(control, sock, relay, hop, logger);
    sock.on('error', (err) => logger.debug(`UDP via ${hopLabel(hop)}: ${err.message}`));
    sock.on('message', (msg, rinfo) => {
      if (normalizeIp(rinfo.address) !== relay.host || rinfo.port !== relay.port) return;
      try {
        const d = decodeUdpHeader(msg);
        if (d.frag !== 0) return;
        receive(d.destination, d.payload);
      } catch (err) {
        logger.debug(`UDP via ${hopLabel(hop)}: dropped a malformed datagram from the upstream relay: ${describeError(err)}`);
      }
    });
    control.on('data', () => undefined);
    control.on('error', () => undefined);
    control.once('close', () => {
      if (!path.closed) logger.debug(`UDP via ${hopLabel(hop)}: the upstream closed the association`);
      path.close();
    });
    control.resume();
    return path;
  }

  get relay(): Endpoint {
    return this.relayAddr;
  }

  send(destination: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    if (destination.type !== 'domain' || this.hop.remoteDns) {
      this.sendResolved(destination, payload);
      return;
    }
    const cached = this.names.get(destination.host);
    if (cached) {
      this.sendResolved({ ...cached, port: destination.port }, payload);
      return;
    }
    resolveHere(destination).then(
      (ep) => {
        if (this.names.size >= MAX_CACHE) this.names.clear();
        this.names.set(destination.host, ep);
        this.sendResolved(ep, payload);
      },
      (err: unknown) => this.logger.debug(`UDP via ${hopLabel(this.hop)}: ${describeError(err)}`),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    this.control.destroy();
  }

  private sendResolved(destination: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    this.socket.send([encodeUdpHeader(destination), payload], this.relayAddr.port, this.relayAddr.host, (err) => {
      if (err) this.logger.debug(`UDP via ${hopLabel(this.hop)} to ${formatEndpoint(destination)}: ${err.message}`);
    });
  }
}
