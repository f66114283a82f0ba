/**
 * Pure encoders/decoders for the client side of HTTP CONNECT (SOCKS4/4a lives in socks4/protocol.ts).
 * Decoders return undefined until the message is complete, like socks5/protocol.ts.
 */
import type { Endpoint } from '../address';
import { formatEndpoint } from '../address';
import { ProxyError, Reply, ReplyCode } from '../errors';
import type { Decoded } from '../socks5/protocol';

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
