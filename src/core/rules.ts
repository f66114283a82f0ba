/**
 * Routing rules as pure data and pure matching (no DNS: a domain rule matches requests that carry a name,
 * a CIDR rule matches requests that carry an IP address).
 *
 * A rule's `match` is one or more conditions separated by spaces; all must hold:
 *   example.com              that exact name (case-insensitive, trailing dot ignored)
 *   *.corp.example           any name below corp.example (not corp.example itself)
 *   *                        everything
 *   10.0.0.0/8, fd00::/8     an IPv4 or IPv6 CIDR block; a bare IP means just that address
 *   port:25, port:8000-8999  a destination port or inclusive range
 * Its `action` is "direct", "block" or the name of an upstream. Rules are tried in order; the first match wins.
 */
import { isIP } from 'node:net';
import { Address4, Address6 } from 'ip-address';
import type { Endpoint } from './address';
import { ProxyError } from './errors';

export interface RuleConfig {
  match: string;
  action: string;
}

export type Condition =
  | { readonly kind: 'any' }
  | { readonly kind: 'domain'; readonly name: string }
  | { readonly kind: 'suffix'; readonly suffix: string }
  | { readonly kind: 'ipv4'; readonly subnet: Address4 }
  | { readonly kind: 'ipv6'; readonly subnet: Address6 }
  | { readonly kind: 'port'; readonly from: number; readonly to: number };

export interface CompiledRule {
  /** 1-based position, as users count. */
  readonly index: number;
  readonly match: string;
  readonly action: string;
  readonly conditions: readonly Condition[];
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

function badRule(text: string, why: string): ProxyError {
  return new ProxyError('BAD_RULE', `invalid match "${text}": ${why}`);
}

function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function validName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => l.length <= 63 && LABEL.test(l));
}

function parsePort(text: string, whole: string): number {
  if (!/^\d{1,5}$/.test(text)) throw badRule(whole, `"${text}" is not a port number`);
  const n = Number(text);
  if (n > 65535) throw badRule(whole, `port ${n} is above 65535`);
  return n;
}

/** Parses one condition; throws ProxyError('BAD_RULE') with the reason. */
export function parseCondition(token: string): Condition {
  if (token === '*') return { kind: 'any' };
  const lower = token.toLowerCase();
  if (lower.startsWith('port:')) {
    const spec = lower.slice(5);
    const dash = spec.indexOf('-');
    const from = parsePort(dash < 0 ? spec : spec.slice(0, dash), token);
    const to = dash < 0 ? from : parsePort(spec.slice(dash + 1), token);
    if (from > to) throw badRule(token, `the range ${from}-${to} is empty`);
    return { kind: 'port', from, to };
  }
  if (token.includes('/') || isIP(token) !== 0 || (token.startsWith('[') && token.endsWith(']'))) {
    const [rawAddr, rawBits, ...rest] = token.split('/');
    if (rest.length > 0) throw badRule(token, 'more than one "/"');
    const addr = rawAddr.startsWith('[') && rawAddr.endsWith(']') ? rawAddr.slice(1, -1) : rawAddr;
    const family = isIP(addr);
    if (family === 0) throw badRule(token, `"${addr}" is not an IPv4 or IPv6 address`);
    const max = family === 4 ? 32 : 128;
    let bits = max;
    if (rawBits !== undefined) {
      if (!/^\d{1,3}$/.test(rawBits) || Number(rawBits) > max) throw badRule(token, `the prefix length must be 0 to ${max}`);
      bits = Number(rawBits);
    }
    if (family === 4) return { kind: 'ipv4', subnet: new Address4(`${addr}/${bits}`) };
    const a6 = new Address6(`${addr}/${bits}`);
    // An IPv4-mapped block (::ffff:10.0.0.0/104) is the IPv4 block: requests arrive normalized to IPv4.
    if (a6.is4() && bits >= 96) return { kind: 'ipv4', subnet: new Address4(`${a6.to4().correctForm()}/${bits - 96}`) };
    return { kind: 'ipv6', subnet: a6 };
  }
  if (lower.startsWith('*.')) {
    const base = normalizeName(lower.slice(2));
    if (!validName(base)) throw badRule(token, 'a wildcard is "*." followed by a domain name, e.g. *.corp.example');
    return { kind: 'suffix', suffix: `.${base}` };
  }
  if (lower.includes('*')) throw badRule(token, 'a wildcard is allowed only as a leading "*." (e.g. *.corp.example) or alone ("*")');
  const name = normalizeName(lower);
  if (!validName(name)) throw badRule(token, 'expected a domain name, *.domain, an IP or CIDR block, port:N or port:N-M');
  return { kind: 'domain', name };
}

/** Parses a whole `match` string (space-separated conditions, all of which must hold). */
export function parseMatch(match: string): Condition[] {
  const tokens = match.trim().split(/\s+/).filter((t) => t !== '');
  if (tokens.length === 0) throw new ProxyError('BAD_RULE', 'a rule needs a match (e.g. "*.corp.example", "10.0.0.0/8", "port:25" or "*")');
  return tokens.map(parseCondition);
}

export function compileRules(rules: readonly RuleConfig[]): CompiledRule[] {
  return rules.map((r, i) => {
    try {
      return { index: i + 1, match: r.match.trim().replace(/\s+/g, ' '), action: r.action, conditions: parseMatch(r.match) };
    } catch (err) {
      if (err instanceof ProxyError) throw new ProxyError('BAD_RULE', `rule ${i + 1}: ${err.message}`);
      throw err;
    }
  });
}

export function conditionMatches(c: Condition, destination: Endpoint): boolean {
  switch (c.kind) {
    case 'any':
      return true;
    case 'port':
      return destination.port >= c.from && destination.port <= c.to;
    case 'domain':
      return destination.type === 'domain' && normalizeName(destination.host) === c.name;
    case 'suffix':
      return destination.type === 'domain' && normalizeName(destination.host).endsWith(c.suffix);
    case 'ipv4':
      return destination.type === 'ipv4' && new Address4(destination.host).isInSubnet(c.subnet);
    case 'ipv6':
      return destination.type === 'ipv6' && new Address6(destination.host).isInSubnet(c.subnet);
  }
}

export function ruleMatches(rule: CompiledRule, destination: Endpoint): boolean {
  return rule.conditions.every((c) => conditionMatches(c, destination));
}

/** The first rule that matches, or undefined (the default route applies). */
export function firstMatch(rules: readonly CompiledRule[], destination: Endpoint): CompiledRule | undefined {
  for (const r of rules) if (ruleMatches(r, destination)) return r;
  return undefined;
}
