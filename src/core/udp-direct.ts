import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { Endpoint, endpoint, normalizeIp } from './address';
import type { UdpDropListener, UdpPath, UdpReceiver } from './dialer';
import { describeError } from './errors';
import { undeliverable } from './udp-destination';

const DNS_TTL_MS = 30_000;
const MAX_DNS_ENTRIES = 256;
const MAX_PEERS = 4096;

/**
 * Sends a UDP association's datagrams straight to their destinations, one socket per address family,
 * and passes back answers only from endpoints the client has sent to (so an association cannot be
 * used to receive unsolicited traffic).
 *
 * Nothing a datagram carries can throw out of send(): what cannot be sent (a bad port or name, a name that
 * does not resolve, a family this host has no socket for, a failed send) is reported to `onDrop`.
 */
export class DirectUdpPath implements UdpPath {
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  /** Families whose socket could not be bound (e.g. no IPv6 on this host), with the reason. */
  private readonly unusable = new Map<4 | 6, string>();
  private readonly peers = new Set<string>();
  private readonly dnsCache = new Map<string, { address: string; family: 4 | 6; expires: number }>();
  private closed = false;

  constructor(private readonly receive: UdpReceiver, private readonly onDrop: UdpDropListener = () => undefined) {}

  send(destination: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    // Checked here too, not only by the association: a path may be used on its own.
    const bad = undeliverable(destination);
    if (bad !== undefined) {
      this.onDrop(destination, payload.length, bad);
      return;
    }
    if (destination.type !== 'domain') {
      // An IPv4-mapped IPv6 address goes out on the IPv4 socket (the IPv6 one is IPv6-only).
      const ep = destination.type === 'ipv6' && destination.host.startsWith('::ffff:') ? endpoint(destination.host, destination.port) : destination;
      this.sendTo(destination, ep.host, ep.type === 'ipv4' ? 4 : 6, payload);
      return;
    }
    const cached = this.dnsCache.get(destination.host);
    if (cached && cached.expires > Date.now()) {
      this.sendTo(destination, cached.address, cached.family, payload);
      return;
    }
    try {
      dns.lookup(destination.host, (err, address, family) => {
        if (this.closed) return;
        if (err) {
          this.onDrop(destination, payload.length, `cannot resolve ${destination.host}: ${err.code ?? err.message}`);
          return;
        }
        if (this.dnsCache.size >= MAX_DNS_ENTRIES) this.dnsCache.clear();
        const fam = family === 6 ? 6 : 4;
        const addr = normalizeIp(address);
        const mapped = fam === 6 && isIP(addr) === 4;
        this.dnsCache.set(destination.host, { address: addr, family: mapped ? 4 : fam, expires: Date.now() + DNS_TTL_MS });
        this.sendTo(destination, addr, mapped ? 4 : fam, payload);
      });
    } catch (err) {
      // dns.lookup validates its arguments synchronously.
      this.onDrop(destination, payload.length, `cannot resolve ${destination.host}: ${describeError(err)}`);
    }
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }

  /** `destination` is what the client asked for (for the drop report); `address` the IP it resolved to. */
  private sendTo(destination: Endpoint, address: string, family: 4 | 6, payload: Buffer): void {
    const port = destination.port;
    const unusable = this.unusable.get(family);
    if (unusable !== undefined) {
      this.onDrop(destination, payload.length, unusable);
      return;
    }
    const key = `${address}|${port}`;
    if (!this.peers.has(key)) {
      // Bounded: forget the oldest peers first (Set keeps insertion order).
      if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.values().next().value as string);
      this.peers.add(key);
    }
    try {
      this.socket(family).send(payload, port, address, (err) => {
        if (err) this.onDrop(destination, payload.length, `send to ${address} failed: ${describeError(err)}`);
      });
    } catch (err) {
      // dgram.send throws synchronously on arguments it rejects; whatever slipped past the checks above stops here.
      this.onDrop(destination, payload.length, `send to ${address} failed: ${describeError(err)}`);
    }
  }

  private socket(family: 4 | 6): dgram.Socket {
    const existing = this.sockets.get(family);
    if (existing) return existing;
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
    let bound = false;
    sock.on('error', (err) => {
      if (bound) return; // send errors arrive in send callbacks; nothing else is expected once bound
      // The bind failed (no such family here): later datagrams of this family are dropped with the reason.
      this.unusable.set(family, `no usable IPv${family} socket: ${describeError(err)}`);
      this.sockets.delete(family);
      sock.close();
    });
    sock.on('message', (msg, rinfo) => {
      const address = normalizeIp(rinfo.address);
      if (!this.peers.has(`${address}|${rinfo.port}`)) return;
      // Built by hand: this runs per datagram and the address is already canonical.
      this.receive({ type: isIP(address) === 6 ? 'ipv6' : 'ipv4', host: address, port: rinfo.port }, msg);
    });
    sock.bind(0, family === 6 ? '::' : '0.0.0.0', () => {
      bound = true;
    });
    this.sockets.set(family, sock);
    return sock;
  }
}
