/** Proxy environment variables for terminals, from where the proxy listens. Pure. */
import { isIP } from 'node:net';

export interface ListenerInfo {
  host: string;
  port: number;
  credentials?: { username: string; password: string };
}

/** Where a local client should connect: a wildcard listen address is reached over loopback. */
export function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

export function proxyUrl(scheme: 'socks5h' | 'socks5' | 'http', listener: ListenerInfo, withCredentials = true): string {
  const host = connectHost(listener.host);
  const h = isIP(host) === 6 ? `[${host}]` : host;
  const c = listener.credentials;
  const auth = withCredentials && c ? `${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}@` : '';
  return `${scheme}://${auth}${h}:${listener.port}`;
}

/**
 * The variables a terminal gets: ALL_PROXY (socks5h, so names resolve at the proxy), HTTP(S)_PROXY
 * (the HTTP side of the same port) and NO_PROXY, each with its lower-case twin because tools disagree
 * on which they read.
 */
export function proxyEnvironment(listener: ListenerInfo, variables: readonly string[], noProxy: string, httpEnabled: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const set = (name: string, value: string): void => {
    out[name] = value;
    out[name.toLowerCase()] = value;
  };
  if (variables.includes('ALL_PROXY')) set('ALL_PROXY', proxyUrl('socks5h', listener));
  if (httpEnabled && variables.includes('HTTP_PROXY')) set('HTTP_PROXY', proxyUrl('http', listener));
  if (httpEnabled && variables.includes('HTTPS_PROXY')) set('HTTPS_PROXY', proxyUrl('http', listener));
  if (variables.includes('NO_PROXY') && noProxy.trim() !== '') set('NO_PROXY', noProxy.trim());
  return out;
}
