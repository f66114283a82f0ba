/**
 * Upstream URLs: the forms users already know from curl and proxychains.
 *
 *   direct                                   no upstream
 *   socks5://[user:pass@]host[:port]         SOCKS5; destination names are resolved here (like curl's socks5://)
 *   socks5h://[user:pass@]host[:port]        SOCKS5; destination names are sent to the upstream (DNS happens there)
 *   socks4://[userid@]host[:port]            SOCKS4; names resolved here to IPv4
 *   socks4a://[userid@]host[:port]           SOCKS4a; names sent to the upstream
 *   http://[user:pass@]host[:port]           HTTP CONNECT (Basic Proxy-Authorization); names sent to the upstream
 *   https://[user:pass@]host[:port][?insecure=1|?ca=/path/ca.pem]   HTTP CONNECT over TLS
 *
 * Default ports: 1080 for SOCKS, 80 for http, 443 for https. Credentials may be percent-encoded.
 * Passwords never appear in errors or labels: use redactUrl / hopLabel.
 */
import { isIP } from 'node:net';
import { formatEndpoint } from '../address';
import { ProxyError } from '../errors';

export type UpstreamKind = 'socks5' | 'socks4' | 'http';
export type UpstreamScheme = 'socks5' | 'socks5h' | 'socks4' | 'socks4a' | 'http' | 'https';

export interface TlsSettings {
  /** false with ?insecure=1: the upstream's certificate is not verified. */
  rejectUnauthorized: boolean;
  /** PEM file with the CA to trust (?ca=/path), in addition to the system store. */
  caFile?: string;
  /** SNI and certificate name (?servername=…); defaults to the host when it is a name. */
  servername?: string;
}

/** One proxy to pass through. */
export interface UpstreamHop {
  readonly kind: UpstreamKind;
  readonly scheme: UpstreamScheme;
  /** Bare host: a name or an IP literal without brackets. */
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** True when destination names are sent to the upstream unresolved (socks5h, socks4a, http, https). */
  readonly remoteDns: boolean;
  /** Set for https:// upstreams. */
  readonly tls?: TlsSettings;
}

export type UpstreamSpec = { readonly kind: 'direct' } | UpstreamHop;

const SCHEMES: Record<string, { kind: UpstreamKind; remoteDns: boolean; port: number }> = {
  socks5: { kind: 'socks5', remoteDns: false, port: 1080 },
  socks5h: { kind: 'socks5', remoteDns: true, port: 1080 },
  socks4: { kind: 'socks4', remoteDns: false, port: 1080 },
  socks4a: { kind: 'socks4', remoteDns: true, port: 1080 },
  http: { kind: 'http', remoteDns: true, port: 80 },
  https: { kind: 'http', remoteDns: true, port: 443 },
};

/** Replaces the password in anything that looks like a URL with credentials: `socks5://me:***@host:1080`. */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^:/@\s]*):([^@\s]*)@/gi, (_m, scheme: string, user: string) => `${scheme}${user}:***@`);
}

function bad(input: string, why: string): ProxyError {
  return new ProxyError('BAD_UPSTREAM_URL', `invalid upstream URL "${redactUrl(input)}": ${why}`);
}

function decode(input: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(input, `the ${what} is not valid percent-encoding`);
  }
}

/** Parses and validates an upstream URL; throws ProxyError('BAD_UPSTREAM_URL') with a message that never shows the password. */
export function parseUpstreamUrl(input: string): UpstreamSpec {
  const text = input.trim();
  if (text === '') throw bad(input, 'it is empty');
  if (/^direct(:\/\/)?$/i.test(text)) return { kind: 'direct' };
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (!schemeMatch) throw bad(input, 'expected scheme://host:port, e.g. socks5h://proxy.example:1080 (or "direct")');
  const scheme = schemeMatch[1].toLowerCase();
  const info = SCHEMES[scheme];
  if (!info) throw bad(input, `unsupported scheme "${scheme}" (use socks5, socks5h, socks4, socks4a, http, https or direct)`);
  const authority = text.slice(schemeMatch[0].length).split(/[/?#]/)[0];
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const portText = /^(?:\[[^\]]*\]|[^:]*):(.*)$/.exec(hostPort)?.[1];
  if (portText !== undefined && portText !== '' && (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)) {
    throw bad(input, `the port must be a number from 1 to 65535, not "${portText}"`);
  }
  if (hostPort === '' || hostPort.startsWith(':')) throw bad(input, 'the host is missing');
  let url: URL;
  try {
    // Parse as a non-special scheme so http/https get the same treatment as socks (no default-port stripping).
    url = new URL(`x-upstream://${text.slice(schemeMatch[0].length)}`);
  } catch {
    throw bad(input, 'it is not a well-formed URL');
  }
  let host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw bad(input, 'the host is missing');
  if (isIP(host) === 0 && !/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i.test(host)) {
    throw bad(input, `"${host}" is not a valid host name or IP address`);
  }
  let port = info.port;
  if (url.port !== '') {
    port = Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(input, 'the port must be 1 to 65535');
  } else if (/:\d*$/.test(url.host) || /\]:$/.test(url.host)) {
    throw bad(input, 'the port is empty');
  }
  if (url.pathname !== '' && url.pathname !== '/') throw bad(input, `unexpected path "${url.pathname}"`);
  if (url.hash !== '') throw bad(input, 'unexpected #fragment');
  const username = url.username === '' ? undefined : decode(input, url.username, 'username');
  const password = url.password === '' ? undefined : decode(input, url.password, 'password');
  switch (info.kind) {
    case 'socks5':
      if ((username === undefined) !== (password === undefined)) throw bad(input, 'SOCKS5 username/password authentication needs both a username and a password');
      if (username !== undefined && Buffer.byteLength(username) > 255) throw bad(input, 'the username is longer than 255 bytes (RFC 1929)');
      if (password !== undefined && Buffer.byteLength(password) > 255) throw bad(input, 'the password is longer than 255 bytes (RFC 1929)');
      break;
    case 'socks4':
      if (password !== undefined) throw bad(input, 'SOCKS4 has no passwords; give only a user id (socks4://userid@host:port)');
      if (username?.includes('\0')) throw bad(input, 'the user id must not contain NUL');
      break;
    case 'http':
      if (username?.includes(':')) throw bad(input, 'the username must not contain ":" (HTTP Basic)');
      break;
  }
  let tls: TlsSettings | undefined;
  if (scheme === 'https') tls = { rejectUnauthorized: true };
  for (const [key, value] of url.searchParams) {
    if (!tls) throw bad(input, `unknown option "${key}" (options are for https:// upstreams only)`);
    if (key === 'insecure') {
      if (!['', '1', 'true', '0', 'false'].includes(value)) throw bad(input, 'insecure must be 1/true or 0/false');
      tls.rejectUnauthorized = value === '0' || value === 'false';
    } else if (key === 'ca') {
      if (value === '') throw bad(input, 'ca needs a file path');
      tls.caFile = value;
    } else if (key === 'servername') {
      if (value === '') throw bad(input, 'servername must not be empty');
      tls.servername = value;
    } else {
      throw bad(input, `unknown option "${key}" (https:// accepts insecure, ca, servername)`);
    }
  }
  return {
    kind: info.kind,
    scheme: scheme as UpstreamScheme,
    host,
    port,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    remoteDns: info.remoteDns,
    ...(tls ? { tls } : {}),
  };
}

/** A label for logs and the UI: scheme, user (never the password), host and port. */
export function hopLabel(hop: UpstreamHop): string {
  const user = hop.username !== undefined ? `${encodeURIComponent(hop.username)}@` : '';
  return `${hop.scheme}://${user}${formatEndpoint({ host: hop.host, port: hop.port })}`;
}

export function specLabel(spec: UpstreamSpec): string {
  return spec.kind === 'direct' ? 'direct' : hopLabel(spec);
}

/** Parses a list of URLs (a chain, in order); `direct` entries are dropped. Empty result: direct. */
export function parseChain(urls: readonly string[]): UpstreamHop[] {
  const hops: UpstreamHop[] = [];
  for (const u of urls) {
    const spec = parseUpstreamUrl(u);
    if (spec.kind !== 'direct') hops.push(spec);
  }
  return hops;
}
