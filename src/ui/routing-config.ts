/** Turns the extension's settings (plus passwords from secret storage) into the engine's routing config. Pure. */
import type { RoutingConfig } from '../core/routing';
import type { ExtensionSettings, UpstreamSetting } from './settings';

/** Puts a stored password into a hop URL that names a user but carries none. */
export function withPassword(url: string, password: string | undefined): string {
  if (password === undefined || password === '') return url;
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return url; // left for the engine's parser to report clearly
  }
  if (u.username === '' || u.password !== '') return url;
  u.password = encodeURIComponent(password);
  return u.toString().replace(/\/$/, '');
}

export function hopUrls(u: UpstreamSetting): string[] {
  return Array.isArray(u.url) ? u.url : [u.url];
}

/** `passwordOf(name, hop)` returns the stored password for that hop, if any. */
export type PasswordLookup = (name: string, hop: number) => string | undefined;

/** An upstream's hop URLs with the stored passwords put in. */
export function resolvedHops(u: UpstreamSetting, passwordOf: PasswordLookup): string[] {
  return hopUrls(u).map((url, i) => withPassword(url, passwordOf(u.name, i)));
}

export function routingConfig(s: ExtensionSettings, passwordOf: PasswordLookup): RoutingConfig {
  return {
    upstreams: s.upstreams.map((u) => {
      const urls = resolvedHops(u, passwordOf);
      return urls.length === 1 ? { name: u.name, url: urls[0] } : { name: u.name, chain: urls };
    }),
    rules: s.rules.map((r) => ({ match: r.match, action: r.action })),
    default: s.activeUpstream === '' ? 'direct' : s.activeUpstream,
  };
}
