/** UDP ASSOCIATE through a SOCKS5 upstream: datagrams go to the upstream's relay with the RFC 1928 header. */
import * as dgram from 'node:dgram';
import * as dns from 'node:dns/promises';
import type { Socket } from 'node:net';
import { Endpoint, endpoint, isUnspecified, normalizeIp } from '../address';
import type { UdpDropListener, UdpPath, UdpReceiver } from '../dialer';
import { describeError, ProxyError } from '../errors';
import type { Logger } from '../log';
import { decodeUdpHeader, encodeUdpHeader } from '../socks5/protocol';
import { undeliverable } from '../udp-destination';
import { resolveHere } from './handshake';
import { hopLabel, UpstreamHop } from './hop';

const MAX_CACHE = 256;

export class Socks5UdpPath implements UdpPath {
  private closed = false;
  private readonly names = new Map<string, Endpoint>();

  private constructor(
    private readonly control: Socket,
    private readonly socket: dgram.Socket,
    private readonly relayAddr: Endpoint,
    private readonly hop: UpstreamHop,
    private readonly onDrop: UdpDropListener,
  ) {}

  /**
   * Wraps an association the upstream granted on `control` (BND = `bound`). The association lives as long
   * as the control connection; when the upstream closes it, the path stops.
   */
  static async open(
    control: Socket,
    bound: Endpoint,
    hop: UpstreamHop,
    receive: UdpReceiver,
    logger: Logger,
    onDrop: UdpDropListener = () => undefined,
  ): Promise<Socks5UdpPath> {
    // Every datagram goes to this port: 0 would make each dgram.send throw.
    if (bound.port === 0) throw new ProxyError('UPSTREAM_FAILED', `${hopLabel(hop)} granted UDP ASSOCIATE with relay port 0`);
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
    const path = new Socks5UdpPath(control, sock, relay, hop, onDrop);
    sock.on('error', (err) => logger.debug(`UDP via ${hopLabel(hop)}: ${err.message}`));
    sock.on('message', (msg, rinfo) => {
      if (normalizeIp(rinfo.address) !== relay.host || rinfo.port !== relay.port) return;
      let d;
      try {
        d = decodeUdpHeader(msg);
      } catch (err) {
        logger.debug(`UDP via ${hopLabel(hop)}: dropped a malformed datagram from the upstream relay: ${describeError(err)}`);
        return;
      }
      if (d.frag === 0) receive(d.destination, d.payload);
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
    const bad = undeliverable(destination);
    if (bad !== undefined) {
      this.onDrop(destination, payload.length, bad);
      return;
    }
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
      (err: unknown) => {
        if (!this.closed) this.onDrop(destination, payload.length, describeError(err));
      },
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    this.control.destroy();
  }

  /** Never throws: a header that cannot be encoded or a send that fails is a dropped datagram. */
  private sendResolved(destination: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    const fail = (err: unknown): void => this.onDrop(destination, payload.length, `via ${hopLabel(this.hop)}: ${describeError(err)}`);
    try {
      this.socket.send([encodeUdpHeader(destination), payload], this.relayAddr.port, this.relayAddr.host, (err) => {
        if (err) fail(err);
      });
    } catch (err) {
      fail(err);
    }
  }
}
