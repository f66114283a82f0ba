/**
 * SOCKS4 and SOCKS4a messages as pure functions (SOCKS4 protocol by Ying-Da Lee; the 4a extension
 * for domain names). The decoder takes the bytes received so far and returns undefined while the request
 * is incomplete, the request and its length when it is complete, or throws a ProxyError.
 *
 *   request: VN=4 | CD | DSTPORT(2) | DSTIP(4) | USERID... | NUL [ | DOMAIN... | NUL  when DSTIP is 0.0.0.x, x != 0 ]
 *   reply:   VN=0 | CD=90..93 | DSTPORT(2) | DSTIP(4)
 */
import { Address4 } from 'ip-address';
import { Endpoint, endpoint, formatEndpoint } from '../address';
import { ProxyError, Reply } from '../errors';

export const SOCKS4_VERSION = 0x04;
/** Longest user id and SOCKS4a domain name accepted (neither is bounded by the protocol). */
export const MAX_FIELD_LENGTH = 255;

export const Socks4Command = { CONNECT: 0x01, BIND: 0x02 } as const;

export const Socks4Reply = {
  GRANTED: 90,
  REJECTED: 91,
  /** The client's identd could not be reached (never sent: identd is not used). */
  NO_IDENTD: 92,
  /** identd reported a different user id (never sent). */
  IDENTD_MISMATCH: 93,
} as const;
export type Socks4ReplyCode = (typeof Socks4Reply)[keyof typeof Socks4Reply];

const replyNames: Record<number, string> = {
  90: 'request granted',
  91: 'request rejected or failed',
  92: 'rejected: cannot connect to identd on the client',
  93: 'rejected: identd reports a different user id',
};

export function socks4ReplyName(code: number): string {
  return replyNames[code] ?? `unknown SOCKS4 reply ${code}`;
}

export interface Socks4Request {
  command: 'connect' | 'bind';
  destination: Endpoint;
  userId: string;
  /** True when the destination was a domain name (SOCKS4a). */
  socks4a: boolean;
}

/** Reads a NUL-terminated field at `offset`; undefined while the NUL has not arrived. */
function readField(buf: Buffer, offset: number, what: string): { value: string; end: number } | undefined {
  const limit = Math.min(buf.length, offset + MAX_FIELD_LENGTH + 1);
  const nul = buf.subarray(offset, limit).indexOf(0);
  if (nul < 0) {
    if (buf.length - offset > MAX_FIELD_LENGTH) throw new ProxyError('BAD_ADDRESS', `${what} longer than ${MAX_FIELD_LENGTH} bytes`, Reply.GENERAL_FAILURE);
    return undefined;
  }
  return { value: buf.toString('utf8', offset, offset + nul), end: offset + nul + 1 };
}

export function decodeSocks4Request(buf: Buffer): { value: Socks4Request; length: number } | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] !== SOCKS4_VERSION) {
    throw new ProxyError('BAD_VERSION', `version 0x${buf[0].toString(16).padStart(2, '0')} where 0x04 was expected`, Reply.GENERAL_FAILURE);
  }
  if (buf.length < 2) return undefined;
  const cd = buf[1];
  if (cd !== Socks4Command.CONNECT && cd !== Socks4Command.BIND) {
    throw new ProxyError('BAD_COMMAND', `unknown SOCKS4 command 0x${cd.toString(16).padStart(2, '0')}`, Reply.COMMAND_NOT_SUPPORTED);
  }
  if (buf.length < 8) return undefined;
  const port = buf.readUInt16BE(2);
  const ip = [buf[4], buf[5], buf[6], buf[7]];
  const user = readField(buf, 8, 'user id');
  if (!user) return undefined;
  const command = cd === Socks4Command.CONNECT ? 'connect' : 'bind';
  const socks4a = ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0;
  if (!socks4a) {
    return { value: { command, destination: { type: 'ipv4', host: ip.join('.'), port }, userId: user.value, socks4a }, length: user.end };
  }
  const domain = readField(buf, user.end, 'domain name');
  if (!domain) return undefined;
  if (domain.value.length === 0) throw new ProxyError('BAD_ADDRESS', 'empty SOCKS4a domain name', Reply.GENERAL_FAILURE);
  return { value: { command, destination: endpoint(domain.value, port), userId: user.value, socks4a }, length: domain.end };
}

/**
 * VN=4 CD DSTPORT DSTIP USERID NUL [HOST NUL]. An IPv4 destination is sent as is; a domain uses the
 * SOCKS4a form (DSTIP 0.0.0.x) with the name after the user id. IPv6 cannot be expressed: X'08';
 * neither can an IPv4 destination 0.0.0.x with x ≠ 0 (it would read as that marker): X'04'.
 */
export function encodeSocks4Request(command: 'connect' | 'bind', destination: Endpoint, userId = ''): Buffer {
  if (destination.type === 'ipv6') {
    throw new ProxyError('BAD_ADDRESS_TYPE', `SOCKS4 cannot carry the IPv6 destination ${formatEndpoint(destination)}`, Reply.ADDRESS_TYPE_NOT_SUPPORTED);
  }
  const user = Buffer.from(userId, 'utf8');
  const head = Buffer.alloc(8);
  head[0] = SOCKS4_VERSION;
  head[1] = command === 'connect' ? Socks4Command.CONNECT : Socks4Command.BIND;
  head.writeUInt16BE(destination.port, 2);
  if (destination.type === 'ipv4') {
    const ip = new Address4(destination.host).toArray();
    // 0.0.0.x (x ≠ 0) on the wire means "a SOCKS4a name follows": the upstream would read our NUL-terminated
    // user id as the start of a name. 0.0.0.0/8 is "this network" (RFC 6890), never a reachable destination,
    // so refuse it as X'04' host unreachable (what a direct connect to it amounts to), not X'01' (nothing failed here).
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
      throw new ProxyError('BAD_ADDRESS', `SOCKS4 cannot carry the destination ${formatEndpoint(destination)}: 0.0.0.x is the SOCKS4a "name follows" marker`, Reply.HOST_UNREACHABLE);
    }
    Buffer.from(ip).copy(head, 4);
    return Buffer.concat([head, user, Buffer.from([0])]);
  }
  const name = Buffer.from(destination.host, 'utf8');
  if (name.length === 0 || name.length > 255) throw new ProxyError('BAD_ADDRESS', `domain name length ${name.length} is outside 1..255`);
  head[7] = 0x01; // 0.0.0.1: "the name follows" (SOCKS4a)
  return Buffer.concat([head, user, Buffer.from([0]), name, Buffer.from([0])]);
}

/** VN=0, CD, DSTPORT, DSTIP. Addresses that are not IPv4 are sent as 0.0.0.0 ("use the proxy's address"). */
export function encodeSocks4Reply(code: Socks4ReplyCode, bound?: Endpoint): Buffer {
  const out = Buffer.alloc(8);
  out[1] = code;
  if (bound) {
    out.writeUInt16BE(bound.port, 2);
    if (bound.type === 'ipv4') bound.host.split('.').forEach((octet, i) => (out[4 + i] = Number(octet)));
  }
  return out;
}

/** VN CD DSTPORT DSTIP (8 bytes). VN should be 0; 4 is tolerated (some servers echo it). */
export function decodeSocks4Reply(buf: Buffer): { value: { code: number; bound: Endpoint }; length: number } | undefined {
  if (buf.length > 0 && buf[0] !== 0x00 && buf[0] !== 0x04) {
    throw new ProxyError('PROTOCOL_ERROR', `SOCKS4 reply: version 0x${buf[0].toString(16).padStart(2, '0')} where 0x00 was expected`);
  }
  if (buf.length < 8) return undefined;
  const host = `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`;
  return { value: { code: buf[1], bound: { type: 'ipv4', host, port: buf.readUInt16BE(2) } }, length: 8 };
}
