import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { Endpoint, normalizeIp } from './address';
import type { UdpPath, UdpReceiver } from './dialer';

const DNS_TTL_MS = 30_000;
const MAX_DNS_ENTRIES = 256;
const MAX_PEERS = 4096;

/**
 * Sends a UDP association's datagrams straight to their destinations, one socket per address family,
 * and passes back answers only from endpoints the client has sent to (so an association cannot be
 * used to receive unsolicited traffic).
 */
export class DirectUdpPath implements UdpPath {
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  private readonly peers = new Set<string>();
  private readonly dnsCache = new Map<string, { address: string; family: 4 | 6; expires: number }>();
  private closed = false;

  constructor(private readonly receive: UdpReceiver, private readonly onError: (message: string) => void = () => undefined) {}

  send(destination: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    if (destination.type !== 'domain') {
      this.sendTo(destination.host, destination.type === 'ipv4' ? 4 : 6, destination.port, payload);
      return;
    }
    const cached = this.dnsCache.get(destination.host);
    if (cached && cached.expires > Date.now()) {
      this.sendTo(cached.address, cached.family, destination.port, payload);
      return;
    }
    dns.lookup(destination.host, (err, address, family) => {
      if (err || this.closed) {
        if (err) this.onError(`UDP: cannot resolve ${destination.host}: ${err.code ?? err.message}`);
        return;
      }
      if (this.dnsCache.size >= MAX_DNS_ENTRIES) this.dnsCache.clear();
      const fam = family === 6 ? 6 : 4;
      this.dnsCache.set(destination.host, { address, family: fam, expires: Date.now() + DNS_TTL_MS });
      this.sendTo(address, fam, destination.port, payload);
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }

  private sendTo(address: string, family: 4 | 6, port: number, payload: Buffer): void {
    const key = `${address}|${port}`;
    if (!this.peers.has(key)) {
      // Bounded: forget the oldest peers first (Set keeps insertion order).
      if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.values().next().value as string);
      this.peers.add(key);
    }
    this.socket(family).send(payload, port, address, (err) => {
      if (err) this.onError(`UDP: send to ${address}:${port} failed: ${err.message}`);
    });
  }

  private socket(family: 4 | 6): dgram.Socket {
    let s = this.sockets.get(family);
    if (s) return s;
    s = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
    s.on('error', (err) => this.onError(`UDP socket error: ${err.message}`));
    s.on('message', (msg, rinfo) => {
      const address = normalizeIp(rinfo.address);
      if (!this.peers.has(`${address}|${rinfo.port}`)) return;
      // Built by hand: this runs per datagram and the address is already canonical.
      this.receive({ type: isIP(address) === 6 ? 'ipv6' : 'ipv4', host: address, port: rinfo.port }, msg);
    });
    s.bind(0, family === 6 ? '::' : '0.0.0.0');
    this.sockets.set(family, s);
    return s;
  }
}
