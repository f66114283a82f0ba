/**
 * Pure encoders/decoders for the client side of SOCKS4/4a and HTTP CONNECT.
 * Decoders return undefined until the message is complete, like socks5/protocol.ts.
 */
import { Address4 } from 'ip-address';
import type { Endpoint } from '../address';
import { formatEndpoint } from '../address';
import { ProxyError, Reply, ReplyCode } from '../errors';
import type { Decoded } from '../socks5/protocol';

// ---- SOCKS4 / SOCKS4a ----

export const Socks4Reply = { GRANTED: 90, REJECTED: 91, NO_IDENTD: 92, IDENT_MISMATCH: 93 } as const;

/**
 * VN=4 CD DSTPORT DSTIP USERID NUL [HOST NUL]. An IPv4 destination is sent as is; a domain uses the
 * SOCKS4a form (DSTIP 0.0.0.x) with the name after the user id. IPv6 cannot be expressed: X'08'.
 */
export function encodeSocks4Request(command: 'connect' | 'bind', destination: Endpoint, userId = ''): Buffer {
  if (destination.type === 'ipv6') {
    throw new ProxyError('BAD_ADDRESS_TYPE', `SOCKS4 cannot carry the IPv6 destination ${formatEndpoint(destination)}`, Reply.ADDRESS_TYPE_NOT_SUPPORTED);
  }
  const user = Buffer.from(userId, 'utf8');
  const head = Buffer.alloc(8);
  head[0] = 0x04;
  head[1] = command === 'connect' ? 0x01 : 0x02;
  head.writeUInt16BE(destination.port, 2);
  if (destination.type === 'ipv4') {
    Buffer.from(new Address4(destination.host).toArray()).copy(head, 4);
    return Buffer.concat([head, user, Buffer.from([0])]);
  }
  const name = Buffer.from(destination.host, 'utf8');
  if (name.length === 0 || name.length > 255) throw new ProxyError('BAD_ADDRESS', `domain name length ${name.length} is outside 1..255`);
  head[7] = 0x01; // 0.0.0.1: "the name follows" (SOCKS4a)
  return Buffer.concat([head, user, Buffer.from([0]), name, Buffer.from([0])]);
}

export interface Socks4ReplyMessage {
  code: number;
  bound: Endpoint;
}

/** VN CD DSTPORT DSTIP (8 bytes). VN should be 0; 4 is tolerated (some servers echo it). */
export function decodeSocks4Reply(buf: Buffer): Decoded<Socks4ReplyMessage> | undefined {
  if (buf.length > 0 && buf[0] !== 0x00 && buf[0] !== 0x04) {
    throw new ProxyError('PROTOCOL_ERROR', `SOCKS4 reply: version 0x${buf[0].toString(16).padStart(2, '0')} where 0x00 was expected`);
  }
  if (buf.length < 8) return undefined;
  const host = `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`;
  return { value: { code: buf[1], bound: { type: 'ipv4', host, port: buf.readUInt16BE(2) } }, length: 8 };
}

// ---- HTTP CONNECT ----

/** The authority-form target: host:port with IPv6 bracketed. */
export function connectAuthority(destination: Endpoint): string {
  return formatEndpoint(destination);
}

export function encodeConnectRequest(destination: Endpoint, credentials?: { username: string; password: string }): Buffer {
  const authority = connectAuthority(destination);
  if (/[\s\r\n]/.test(authority)) throw new ProxyError('BAD_ADDRESS', 'destination contains whitespace');
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (credentials) {
    head += `Proxy-Authorization: Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'utf8');
}

export interface ConnectResponse {
  status: number;
  reason: string;
  headers: Record<string, string>;
}

const MAX_HEAD = 16 * 1024;

/** Status line and headers up to the blank line; what follows is tunnel data (or an error body). */
export function decodeConnectResponse(buf: Buffer): Decoded<ConnectResponse> | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD) throw new ProxyError('PROTOCOL_ERROR', `HTTP proxy response head is longer than ${MAX_HEAD} bytes`);
    if (buf.length >= 5 && !buf.subarray(0, 5).equals(Buffer.from('HTTP/'))) {
      throw new ProxyError('PROTOCOL_ERROR', 'the upstream did not answer with HTTP');
    }
    return undefined;
  }
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/\d(?:\.\d)?\s+(\d{3})(?:\s+(.*))?$/.exec(lines[0]);
  if (!m) throw new ProxyError('PROTOCOL_ERROR', `malformed HTTP status line "${lines[0].slice(0, 80)}"`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { value: { status: Number(m[1]), reason: m[2] ?? '', headers }, length: end + 4 };
}

/** The SOCKS5 reply a client should get when an HTTP upstream refuses a CONNECT. */
export function replyForHttpStatus(status: number): ReplyCode {
  if (status === 401 || status === 407) return Reply.GENERAL_FAILURE;
  if (status === 403 || status === 405) return Reply.NOT_ALLOWED;
  if (status === 504 || status === 408) return Reply.TTL_EXPIRED;
  if (status === 500 || status === 502 || status === 503) return Reply.CONNECTION_REFUSED;
  return Reply.GENERAL_FAILURE;
}
