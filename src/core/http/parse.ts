/**
 * Pure helpers for the HTTP proxy front end (RFC 9110, RFC 9112): request targets, hop-by-hop
 * header filtering and Basic proxy credentials. Message framing itself is left to Node's llhttp parser.
 */

/** A request target reduced to what the proxy needs: where to connect and what to ask for there. */
export interface HttpTarget {
  host: string;
  port: number;
  /** The authority as it goes into the Host header (no userinfo). */
  authority: string;
  /** origin-form path and query, never empty. */
  path: string;
}

/** Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus the proxy's own. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=%]+$/;
const IPV6_LITERAL = /^[0-9A-Fa-f:.]+$/;

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const port = Number(s);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Parses `host[:port]` (IPv6 in brackets). Returns undefined when it is malformed, or when the port is
 * missing and there is no default (CONNECT's authority-form must carry one).
 */
export function parseAuthority(authority: string, defaultPort?: number): { host: string; port: number } | undefined {
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return undefined;
    host = authority.slice(1, close);
    if (host.length === 0 || !IPV6_LITERAL.test(host) || !host.includes(':')) return undefined;
    const rest = authority.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else host = authority;
    if (host.length === 0 || host.length > 255 || !REG_NAME.test(host)) return undefined;
  }
  let port: number | undefined;
  if (portText === undefined || portText === '') port = defaultPort;
  else port = parsePort(portText);
  if (port === undefined) return undefined;
  return { host, port };
}

/** CONNECT's request target (authority-form, RFC 9112 section 3.2.3): host and a port, nothing else. */
export function parseConnectTarget(target: string): { host: string; port: number } | undefined {
  return parseAuthority(target);
}

/**
 * An absolute-form request target (`http://host[:port]/path?query`, RFC 9112 section 3.2.2).
 * The path is kept byte for byte (no dot-segment or percent normalization), so the origin sees what the
 * client sent. Returns undefined for origin-form, other schemes and malformed authorities.
 */
export function parseAbsoluteTarget(target: string): HttpTarget | undefined {
  const m = /^http:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (!m) return undefined;
  let authority = m[1];
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1); // userinfo is deprecated and never forwarded
  const hp = parseAuthority(authority, 80);
  if (!hp) return undefined;
  let path = m[2];
  if (path === '') path = '/';
  else if (path.startsWith('?')) path = `/${path}`;
  return { host: hp.host, port: hp.port, authority, path };
}

/** The scheme of an absolute-form target, lower-cased, or undefined for origin-form and `*`. */
export function targetScheme(target: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target);
  return m ? m[1].toLowerCase() : undefined;
}

/**
 * Removes hop-by-hop headers from a raw header list ([name, value, name, value, ...] as Node's
 * rawHeaders): the fixed set above and every header named in Connection (or Proxy-Connection).
 * `drop` names further headers to remove (lower case). Order, case and duplicates of the rest are kept.
 */
export function stripHopByHop(raw: readonly string[], drop: readonly string[] = []): string[] {
  // Per request twice (request and response): no Set is built unless a Connection header names more fields.
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name !== 'connection' && name !== 'proxy-connection') continue;
    for (const token of raw[i + 1].split(',')) {
      const t = token.trim().toLowerCase();
      if (t.length > 0 && TOKEN.test(t)) (named ??= new Set()).add(t);
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || named?.has(name) || (drop.length > 0 && drop.includes(name))) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/** `Proxy-Authorization: Basic base64(user:pass)` (RFC 7617). Undefined for other schemes or bad encoding. */
export function parseBasicCredentials(header: string): { username: string; password: string } | undefined {
  const m = /^\s*Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The HTTP status to answer for an error code from Node's HTTP parser. */
export function statusForParseError(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'HPE_HEADERS_TIMEOUT':
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    default:
      return 400;
  }
}

/** A complete, self-contained HTTP/1.1 response that closes the connection, for paths outside node:http. */
export function encodeSimpleResponse(status: number, reason: string, body: string, headers: readonly [string, string][] = []): Buffer {
  const payload = Buffer.from(body, 'utf8');
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}
