/** The Add/Edit Upstream input: a typed chain of hop URLs, validated as you type, with passwords split off. Pure. */
import { describeError, ProxyError } from '../core/errors';
import { parseUpstreamUrl, UpstreamSpec, urlTakesPassword } from '../core/upstream/url';
import { upstreamSchemes } from '../core/upstream/drivers';
import { withPassword } from './routing-config';

/** Splits "url1, url2" or "url1 -> url2" into hops. */
export function splitChain(text: string): string[] {
  return text
    .split(/\s*(?:,|->|→|\s)\s*/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Parses a hop URL that may name a user without a password: the password is asked for in the next
 * step and kept in secret storage, so the URL is checked as if it carried one.
 */
export function parseHop(url: string): { spec: UpstreamSpec; inlinePassword: string | undefined } {
  let inline: string | undefined;
  try {
    const u = new URL(url.trim());
    inline = u.password !== '' ? decodeURIComponent(u.password) : undefined;
  } catch {
    // parseUpstreamUrl reports what is wrong with it
  }
  const takesPassword = urlTakesPassword(url);
  const spec = parseUpstreamUrl(inline === undefined && takesPassword ? withPassword(url, 'placeholder') : url);
  return { spec, inlinePassword: inline };
}

export function validateChain(text: string): string | undefined {
  const hops = splitChain(text);
  if (hops.length === 0) return 'Enter an upstream URL, e.g. socks5h://proxy.example:1080 (several, separated by commas, make a chain)';
  for (const h of hops) {
    try {
      const { spec } = parseHop(h);
      if (spec.kind === 'direct' && hops.length > 1) return '"direct" cannot be part of a chain';
    } catch (err) {
      return err instanceof ProxyError ? err.message : describeError(err);
    }
  }
  return undefined;
}

/** Removes the password from each hop URL; returns the bare URLs and the passwords by hop. */
export function splitSecrets(hops: string[]): { urls: string[]; passwords: (string | undefined)[] } {
  const urls: string[] = [];
  const passwords: (string | undefined)[] = [];
  for (const h of hops) {
    const { inlinePassword } = parseHop(h);
    if (inlinePassword !== undefined) {
      const u = new URL(h.trim());
      u.password = '';
      urls.push(u.toString().replace(/\/$/, ''));
    } else {
      urls.push(h.trim());
    }
    passwords.push(inlinePassword);
  }
  return { urls, passwords };
}

/** The URL step's prompt, naming every registered upstream scheme (a new hop driver shows up here too). */
export function upstreamUrlPrompt(): string {
  const schemes = upstreamSchemes().map((x) => `${x}://`);
  const list = schemes.length > 1 ? `${schemes.slice(0, -1).join(', ')} or ${schemes[schemes.length - 1]}` : (schemes[0] ?? '');
  return `Upstream URL: ${list}. Several separated by commas make a chain.`;
}
