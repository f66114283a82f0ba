import { isIP } from 'node:net';
import { Address4, Address6 } from 'ip-address';
import { ProxyError, Reply } from './errors';

export type AddressType = 'ipv4' | 'ipv6' | 'domain';

/** A host and port as carried in SOCKS messages. */
export interface Endpoint {
  readonly type: AddressType;
  readonly host: string;
  readonly port: number;
}

export const ATYP = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/** Strips the IPv4-mapped prefix Node reports on dual-stack sockets (::ffff:1.2.3.4 → 1.2.3.4). */
export function normalizeIp(ip: string | undefined): string {
  if (ip === undefined) return '0.0.0.0';
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ip.slice(7);
  return ip;
}

/** Classifies a host string (IP literal, bracketed IPv6 or name) into an endpoint. */
export function endpoint(host: string, port: number): Endpoint {
  // Fast path (every CONNECT reply): net.isIP accepts only the canonical dotted quad (no leading zeros),
  // which is already what Address4.correctForm() would return.
  if (isIP(host) === 4) return { type: 'ipv4', host, port };
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (Address4.isValid(bare) && isIP(bare) === 4) return { type: 'ipv4', host: new Address4(bare).correctForm(), port };
  if (Address6.isValid(bare)) {
    const a6 = new Address6(bare);
    if (a6.is4()) return { type: 'ipv4', host: a6.to4().correctForm(), port };
    return { type: 'ipv6', host: a6.correctForm(), port };
  }
  return { type: 'domain', host: bare, port };
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatEndpoint(ep: { host: string; port: number; type?: AddressType }): string {
  const v6 = ep.type === 'ipv6' || (ep.type === undefined && isIP(ep.host) === 6);
  return v6 ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
}

/** Byte length of an encoded ATYP+ADDR+PORT. */
export function encodedAddressLength(ep: Endpoint): number {
  switch (ep.type) {
    case 'ipv4':
      return 1 + 4 + 2;
    case 'ipv6':
      return 1 + 16 + 2;
    case 'domain':
      return 1 + 1 + Buffer.byteLength(ep.host) + 2;
  }
}

/** Writes ATYP, ADDR and PORT into `out` at `offset`; returns the offset after it. */
export function writeAddress(ep: Endpoint, out: Buffer, offset: number): number {
  let o = offset;
  switch (ep.type) {
    case 'ipv4': {
      out[o++] = ATYP.IPV4;
      o = writeIpv4(ep.host, out, o);
      break;
    }
    case 'ipv6': {
      out[o++] = ATYP.IPV6;
      const bytes = new Address6(ep.host).toUnsignedByteArray();
      // toUnsignedByteArray drops leading zero bytes; left-pad to 16.
      for (let i = bytes.length; i < 16; i++) out[o++] = 0;
      for (const b of bytes) out[o++] = b;
      break;
    }
    case 'domain': {
      const len = Buffer.byteLength(ep.host);
      if (len === 0 || len > 255) throw new ProxyError('BAD_ADDRESS', `domain name length ${len} is outside 1..255`, Reply.GENERAL_FAILURE);
      out[o++] = ATYP.DOMAIN;
      out[o++] = len;
      o += out.write(ep.host, o, 'utf8');
      break;
    }
  }
  out.writeUInt16BE(ep.port, o);
  return o + 2;
}

/** Writes a dotted-quad IPv4 address as 4 bytes without a parser object (the reply of every CONNECT). */
function writeIpv4(host: string, out: Buffer, offset: number): number {
  let o = offset;
  let v = 0;
  let digits = 0;
  for (let i = 0; i <= host.length; i++) {
    const c = i < host.length ? host.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || v > 255 || o - offset >= 4) return writeIpv4Slow(host, out, offset);
      out[o++] = v;
      v = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      v = v * 10 + (c - 0x30);
      digits++;
    } else {
      return writeIpv4Slow(host, out, offset);
    }
  }
  return o - offset === 4 ? o : writeIpv4Slow(host, out, offset);
}

function writeIpv4Slow(host: string, out: Buffer, offset: number): number {
  let o = offset;
  for (const b of new Address4(host).toArray()) out[o++] = b;
  return o;
}

export function encodeAddress(ep: Endpoint): Buffer {
  const out = Buffer.allocUnsafe(encodedAddressLength(ep));
  writeAddress(ep, out, 0);
  return out;
}

/**
 * Reads ATYP+ADDR+PORT at `offset`. Returns undefined when more bytes are needed.
 * Throws ProxyError with X'08' for an unknown ATYP and X'01' for a zero-length domain.
 */
export function readAddress(buf: Buffer, offset: number): { endpoint: Endpoint; end: number } | undefined {
  if (buf.length <= offset) return undefined;
  const atyp = buf[offset];
  switch (atyp) {
    case ATYP.IPV4: {
      const end = offset + 1 + 4 + 2;
      if (buf.length < end) return undefined;
      const host = `${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}.${buf[offset + 4]}`;
      return { endpoint: { type: 'ipv4', host, port: buf.readUInt16BE(offset + 5) }, end };
    }
    case ATYP.IPV6: {
      const end = offset + 1 + 16 + 2;
      if (buf.length < end) return undefined;
      const a6 = Address6.fromUnsignedByteArray([...buf.subarray(offset + 1, offset + 17)]);
      return { endpoint: { type: 'ipv6', host: a6.correctForm(), port: buf.readUInt16BE(offset + 17) }, end };
    }
    case ATYP.DOMAIN: {
      if (buf.length < offset + 2) return undefined;
      const len = buf[offset + 1];
      if (len === 0) throw new ProxyError('BAD_ADDRESS', 'zero-length domain name', Reply.GENERAL_FAILURE);
      const end = offset + 2 + len + 2;
      if (buf.length < end) return undefined;
      const host = buf.toString('utf8', offset + 2, offset + 2 + len);
      return { endpoint: { type: 'domain', host, port: buf.readUInt16BE(offset + 2 + len) }, end };
    }
    default:
      throw new ProxyError('BAD_ADDRESS_TYPE', `unknown address type 0x${atyp.toString(16).padStart(2, '0')}`, Reply.ADDRESS_TYPE_NOT_SUPPORTED);
  }
}

/** The endpoint of a socket address as Node reports it, normalized. */
export function endpointOfSocket(address: string | undefined, port: number | undefined): Endpoint {
  return endpoint(normalizeIp(address ?? '0.0.0.0'), port ?? 0);
}

/** True for 0.0.0.0 and :: (the "any" addresses a client sends when it does not know). */
export function isUnspecified(ep: Endpoint): boolean {
  return (ep.type === 'ipv4' && ep.host === '0.0.0.0') || (ep.type === 'ipv6' && ep.host === '::');
}
