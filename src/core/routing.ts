/**
 * A Router built from a plain config object (the JSON of `--rules FILE` and the extension's settings):
 *
 *   {
 *     "upstreams": [
 *       { "name": "corp",   "url": "socks5h://me:secret@proxy.corp.example:1080" },
 *       { "name": "office", "chain": ["socks5://jump.example:1080", "http://proxy.office:3128"] },
 *       { "name": "any",    "failover": ["corp", "office", "direct"] }
 *     ],
 *     "rules": [
 *       { "match": "*.corp.example", "action": "corp" },
 *       { "match": "10.0.0.0/8",     "action": "direct" },
 *       { "match": "port:25",        "action": "block" }
 *     ],
 *     "default": "direct"
 *   }
 *
 * Actions and the default are "direct", "block" or an upstream name. Dialers are built once per router,
 * so a live change is: server.setRouter(buildRouter(newConfig)); sessions already open keep their route.
 */
import type { Endpoint } from './address';
import type { Dialer, RouteContext, RouteDecision, Router } from './dialer';
import { DirectDialer } from './direct';
import { ProxyError } from './errors';
import { Logger, silentLogger } from './log';
import { CompiledRule, compileRules, firstMatch, RuleConfig } from './rules';
import { ChainDialer } from './upstream/chain';
import { FailoverDialer } from './upstream/group';
import { hopLabel } from './upstream/hop';
import { RouteInfo, routeInfo } from './route-info';
import { parseChain, redactUrl } from './upstream/url';
import { EGRESS_ROUTE, EgressDialer, isEgressRoute } from './egress/dialer';
import type { EgressEndpoint } from './egress/endpoint';

export interface UpstreamConfig {
  name: string;
  /** One upstream URL (or "direct"). */
  url?: string;
  /** Several upstream URLs, passed through in order. */
  chain?: string[];
  /** Names of other upstreams (or URLs, or "direct"), tried in order until one connects. */
  failover?: string[];
}

export interface RoutingConfig {
  upstreams?: UpstreamConfig[];
  rules?: RuleConfig[];
  /** Where requests no rule matches go: "direct" (the default), "block" or an upstream name. */
  default?: string;
}

export interface RouterOptions {
  connectTimeoutMs?: number;
  logger?: Logger;
  /**
   * The egress tunnel's endpoint: the route "egress" (this computer) goes through it. 'direct' where the
   * relay already runs on the user's computer (a local VS Code window): there the route is the direct one.
   */
  egress?: EgressEndpoint | 'direct';
}

const RESERVED = new Set(['direct', 'block', EGRESS_ROUTE]);

function badConfig(where: string, why: string): ProxyError {
  return new ProxyError('BAD_RULE', `${where}: ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(v: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw badConfig(where, `unknown key "${k}" (expected ${allowed.join(', ')})`);
}

function stringArray(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string')) throw badConfig(where, 'expected a non-empty list of strings');
  return v;
}

/** Checks the shape of a parsed JSON config; throws ProxyError('BAD_RULE') naming the offending entry. URLs are checked by buildRouter. */
export function validateRoutingConfig(value: unknown): RoutingConfig {
  if (!isObject(value)) throw badConfig('routing config', 'expected a JSON object with "upstreams", "rules" and "default"');
  checkKeys(value, ['upstreams', 'rules', 'default'], 'routing config');
  const out: RoutingConfig = {};
  if (value.upstreams !== undefined) {
    if (!Array.isArray(value.upstreams)) throw badConfig('upstreams', 'expected a list');
    out.upstreams = value.upstreams.map((u: unknown, i): UpstreamConfig => {
      const where = `upstreams[${i}]`;
      if (!isObject(u)) throw badConfig(where, 'expected an object like {"name": "corp", "url": "socks5h://host:1080"}');
      checkKeys(u, ['name', 'url', 'chain', 'failover'], where);
      if (typeof u.name !== 'string' || u.name.trim() === '') throw badConfig(where, '"name" must be a non-empty string');
      const kinds = ['url', 'chain', 'failover'].filter((k) => u[k] !== undefined);
      if (kinds.length !== 1) throw badConfig(`${where} ("${u.name}")`, 'give exactly one of "url", "chain" or "failover"');
      const entry: UpstreamConfig = { name: u.name };
      if (u.url !== undefined) {
        if (typeof u.url !== 'string') throw badConfig(`${where} ("${u.name}")`, '"url" must be a string');
        entry.url = u.url;
      }
      if (u.chain !== undefined) entry.chain = stringArray(u.chain, `${where}.chain`);
      if (u.failover !== undefined) entry.failover = stringArray(u.failover, `${where}.failover`);
      return entry;
    });
  }
  if (value.rules !== undefined) {
    if (!Array.isArray(value.rules)) throw badConfig('rules', 'expected a list');
    out.rules = value.rules.map((r: unknown, i): RuleConfig => {
      const where = `rules[${i}] (rule ${i + 1})`;
      if (!isObject(r)) throw badConfig(where, 'expected an object like {"match": "*.corp.example", "action": "corp"}');
      checkKeys(r, ['match', 'action'], where);
      if (typeof r.match !== 'string') throw badConfig(where, '"match" must be a string');
      if (typeof r.action !== 'string' || r.action === '') throw badConfig(where, '"action" must be "direct", "block" or an upstream name');
      return { match: r.match, action: r.action };
    });
  }
  if (value.default !== undefined) {
    if (typeof value.default !== 'string' || value.default === '') throw badConfig('default', 'must be "direct", "block" or an upstream name');
    out.default = value.default;
  }
  return out;
}

/** Routes by ordered rules; see the module comment for the config. */
export class RuleRouter implements Router {
  private readonly rules: readonly CompiledRule[];
  private readonly named = new Map<string, Dialer>();
  private readonly direct: DirectDialer;
  /** Set when an upstream, rule or the default goes through this computer. */
  private egress: EgressDialer | undefined;
  private readonly decisions: RouteDecision[];
  private readonly defaultDecision: RouteDecision;
  /** A decision for an action, labelled by what chose it (a terminal's own route): see decisionFor. */
  private readonly targetFor: (action: string, where: string, label: string) => RouteDecision;

  constructor(
    config: RoutingConfig,
    private readonly options: RouterOptions = {},
  ) {
    const timeout = options.connectTimeoutMs ?? 10_000;
    const logger = options.logger ?? silentLogger;
    this.direct = new DirectDialer(timeout);
    const upstreams = config.upstreams ?? [];
    const byName = new Map<string, UpstreamConfig>();
    for (const u of upstreams) {
      if (RESERVED.has(u.name)) throw badConfig(`upstream "${u.name}"`, '"direct", "block" and "egress" are reserved names');
      if (byName.has(u.name)) throw badConfig(`upstream "${u.name}"`, 'defined twice');
      byName.set(u.name, u);
    }
    const egressDialer = (where: string): Dialer => {
      if (options.egress === 'direct') return this.direct;
      if (!options.egress) throw badConfig(where, 'the route "egress" (this computer) needs the egress tunnel: run with --egress-listen, or use it from a remote window');
      return (this.egress ??= new EgressDialer(options.egress));
    };
    const fromUrls = (name: string, urls: readonly string[]): Dialer => {
      if (urls.some(isEgressRoute)) {
        if (urls.length !== 1) throw badConfig(`upstream "${name}"`, 'egress:// (this computer) cannot be part of a chain');
        return egressDialer(`upstream "${name}"`);
      }
      let hops;
      try {
        hops = parseChain(urls);
      } catch (err) {
        throw badConfig(`upstream "${name}"`, err instanceof Error ? err.message : String(err));
      }
      return hops.length === 0 ? this.direct : new ChainDialer(hops, { connectTimeoutMs: timeout, logger });
    };
    // Plain upstreams first, then failover groups, whose members refer to them.
    for (const u of upstreams) {
      if (u.url !== undefined) this.named.set(u.name, fromUrls(u.name, [u.url]));
      else if (u.chain) this.named.set(u.name, fromUrls(u.name, u.chain));
    }
    for (const u of upstreams) {
      if (!u.failover) continue;
      const members = u.failover.map((m) => {
        if (m === 'direct') return this.direct;
        if (isEgressRoute(m)) return egressDialer(`upstream "${u.name}"`);
        const known = this.named.get(m);
        if (known) return known;
        if (byName.get(m)?.failover) throw badConfig(`upstream "${u.name}"`, `failover member "${m}" is itself a failover group`);
        if (m.includes('://')) return fromUrls(u.name, [m]);
        throw badConfig(`upstream "${u.name}"`, `failover member "${redactUrl(m)}" is not a defined upstream, a URL or "direct"`);
      });
      // A URL member is named by its redacted form: a session's route must not show a password.
      const names = u.failover.map((m) => (m.includes('://') ? redactUrl(m) : m));
      this.named.set(u.name, new FailoverDialer(u.name, members, logger, names));
    }
    const target = (action: string, where: string, rule: RouteInfo['rule'], label?: string): RouteDecision => {
      if (action === 'block' || action === 'direct') {
        const info = routeInfo(rule, action, undefined, [], label);
        return action === 'block' ? { action, route: info.text, info } : { action: 'dial', dialer: this.direct, route: info.text, info };
      }
      if (isEgressRoute(action)) {
        const info = routeInfo(rule, EGRESS_ROUTE, EGRESS_ROUTE, [], label);
        return { action: 'dial', dialer: egressDialer(where), route: info.text, info };
      }
      const dialer = this.named.get(action);
      if (!dialer) {
        const known = [...this.named.keys()];
        throw badConfig(where, `action "${action}" is not "direct", "block" or a defined upstream${known.length ? ` (${known.join(', ')})` : ''}`);
      }
      const info = routeInfo(rule, action, action, dialer instanceof ChainDialer ? dialer.hops.map(hopLabel) : [], label);
      return { action: 'dial', dialer, route: info.text, info };
    };
    this.targetFor = (action, where, label) => target(action, where, undefined, label);
    this.rules = compileRules(config.rules ?? []);
    this.decisions = this.rules.map((r) => target(r.action, `rule ${r.index}`, { index: r.index, match: r.match }));
    this.defaultDecision = target(config.default ?? 'direct', 'default', undefined);
  }

  decide(destination: Endpoint, _context?: RouteContext): RouteDecision {
    const rule = firstMatch(this.rules, destination);
    return rule ? this.decisions[rule.index - 1] : this.defaultDecision;
  }

  /** The decision of the first rule that matches, if one does (rules come before any other choice). */
  ruleDecision(destination: Endpoint): RouteDecision | undefined {
    const rule = firstMatch(this.rules, destination);
    return rule ? this.decisions[rule.index - 1] : undefined;
  }

  /**
   * The route to `action` ("direct", "block", "egress" or an upstream name) as chosen by `label` instead of
   * a rule or the default (`terminal "build" → corp`). Throws BAD_RULE for an unknown upstream.
   */
  decisionFor(action: string, label: string): RouteDecision {
    return this.targetFor(action, label, label);
  }

  /** The dialer for an upstream name ("direct" included), e.g. for a health check. */
  dialer(name: string): Dialer | undefined {
    if (isEgressRoute(name)) return this.egress ?? (this.options.egress === 'direct' ? this.direct : undefined);
    return name === 'direct' ? this.direct : this.named.get(name);
  }

  /** Whether any route goes out through the egress tunnel (the listener must then require credentials). */
  get usesEgress(): boolean {
    return this.egress !== undefined;
  }

  upstreamNames(): string[] {
    return [...this.named.keys()];
  }

  /** One line for logs: the upstreams (labels, no passwords), the rule count and the default route. */
  summary(): string {
    const ups = [...this.named].map(([name, d]) => `${name} = ${d.label}`);
    return `${ups.length ? `upstreams: ${ups.join('; ')}; ` : ''}${this.rules.length} rule(s); ${this.defaultDecision.route}`;
  }
}

/** The name `--upstream` URLs get in the CLI. */
export const CLI_UPSTREAM = 'cli';

/**
 * The CLI's routing: `--rules FILE` (parsed JSON, same shape as the extension settings) plus `--upstream URL`
 * (repeatable: a chain in order), which becomes the upstream named "cli" and the default route.
 */
export function cliRoutingConfig(upstreamUrls: readonly string[], fileConfig?: unknown): RoutingConfig {
  const base = fileConfig === undefined ? {} : validateRoutingConfig(fileConfig);
  if (upstreamUrls.length === 0) return base;
  if (base.upstreams?.some((u) => u.name === CLI_UPSTREAM)) throw badConfig('--rules', `the upstream name "${CLI_UPSTREAM}" is reserved for --upstream`);
  return { ...base, upstreams: [...(base.upstreams ?? []), { name: CLI_UPSTREAM, chain: [...upstreamUrls] }], default: CLI_UPSTREAM };
}

/** Validates `config` (e.g. parsed JSON) and builds a router; throws ProxyError with a clear, password-free message. */
export function buildRouter(config: unknown, options: RouterOptions = {}): RuleRouter {
  return new RuleRouter(validateRoutingConfig(config), options);
}
