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
 *   socks5h://host[:port]?gssapi[=service][&gssapi-protection=none|integrity|confidentiality]
 *                                            SOCKS5 with GSSAPI/Kerberos (RFC 1961) from the user's ticket cache;
 *                                            service rcmd (rcmd@host) by default, or name@host, or a principal;
 *                                            protection confidentiality by default
 *
 * Those are the built-in hop drivers (drivers.ts); each scheme's default port, DNS side, TLS and
 * credential rules come from its driver, so a registered driver's scheme parses the same way.
 * Default ports: 1080 for SOCKS, 80 for http, 443 for https. Credentials may be percent-encoded.
 * Passwords never appear in errors or labels: use redactUrl / hopLabel.
 */
import { isIP } from 'node:net';
import { ProxyError } from '../errors';
import { driverFor, upstreamSchemes } from './drivers';
import { protectionFromWord } from '../gssapi/messages';
import { DEFAULT_GSSAPI_PROTECTION, DEFAULT_GSSAPI_SERVICE, GssapiSettings, hopLabel, TlsSettings, UpstreamHop } from './hop';

// Re-exported: callers parse and label hops from one module.
export { hopLabel };
export type { TlsSettings, UpstreamHop };

export type UpstreamSpec = { readonly kind: 'direct' } | UpstreamHop;

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

/** The schemes whose streams run over TLS, as "https://" (for messages). */
function tlsSchemes(): string[] {
  return upstreamSchemes()
    .filter((s) => driverFor(s)?.schemes[s].tls === true)
    .map((s) => `${s}://`);
}

/** Parses and validates an upstream URL; throws ProxyError('BAD_UPSTREAM_URL') with a message that never shows the password. */
export function parseUpstreamUrl(input: string): UpstreamSpec {
  const text = input.trim();
  if (text === '') throw bad(input, 'it is empty');
  if (/^direct(:\/\/)?$/i.test(text)) return { kind: 'direct' };
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (!schemeMatch) throw bad(input, 'expected scheme://host:port, e.g. socks5h://proxy.example:1080 (or "direct")');
  const scheme = schemeMatch[1].toLowerCase();
  const driver = driverFor(scheme);
  if (!driver) throw bad(input, `unsupported scheme "${scheme}" (use ${upstreamSchemes().join(', ')} or direct)`);
  const info = driver.schemes[scheme];
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
  const why = driver.checkCredentials?.(username, password);
  if (why !== undefined) throw bad(input, why);
  let tls: TlsSettings | undefined;
  if (info.tls === true) tls = { rejectUnauthorized: true };
  let gssapi: GssapiSettings | undefined;
  for (const [key, value] of url.searchParams) {
    if (key === 'gssapi' && info.gssapi === true) {
      if (!/^[A-Za-z0-9._@/-]*$/.test(value) || value.startsWith('@') || value.startsWith('/')) throw bad(input, 'gssapi takes a service name such as rcmd, socks@proxy.example or rcmd/proxy.example@REALM');
      gssapi = { protection: DEFAULT_GSSAPI_PROTECTION, ...gssapi, service: value === '' || value === '1' || value === 'true' ? DEFAULT_GSSAPI_SERVICE : value };
      continue;
    }
    if (key === 'gssapi-protection' && info.gssapi === true) {
      const level = protectionFromWord(value);
      if (level === undefined || level > 2) throw bad(input, 'gssapi-protection is none, integrity or confidentiality');
      gssapi = { service: DEFAULT_GSSAPI_SERVICE, ...gssapi, protection: level as 0 | 1 | 2 };
      continue;
    }
    if (!tls) throw bad(input, `unknown option "${key}" (${optionHelp(scheme, info.gssapi === true)})`);
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
      throw bad(input, `unknown option "${key}" (${scheme}:// accepts insecure, ca, servername)`);
    }
  }
  return {
    kind: driver.name,
    scheme,
    host,
    port,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    remoteDns: info.remoteDns,
    ...(tls ? { tls } : {}),
    ...(gssapi ? { gssapi } : {}),
  };
}

function optionHelp(scheme: string, gssapi: boolean): string {
  const tls = `options are for ${tlsSchemes().join(', ')} upstreams only`;
  return gssapi ? `${scheme}:// accepts gssapi[=service] and gssapi-protection; other ${tls}` : tls;
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

/** Whether a URL's user comes with a password (its scheme's driver says; false for direct and unknown schemes). */
export function urlTakesPassword(url: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim())?.[1];
  return scheme !== undefined && driverFor(scheme.toLowerCase())?.takesPassword === true;
}

/** Whether a hop's user comes with a password (the UI asks for one and keeps it in secret storage). */
export function hopTakesPassword(hop: UpstreamHop): boolean {
  return driverFor(hop.scheme)?.takesPassword === true;
}
