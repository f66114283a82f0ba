import type { EgressEndpoint } from '../core/egress/endpoint';
import { checkUpstream as engineCheck } from '../core/health';
import type { Logger } from '../core/log';
import { buildRouter as engineBuildRouter, RuleRouter } from '../core/routing';
import { hopUrls, PasswordLookup, resolvedHops, routingConfig } from '../ui/routing-config';
import type { ExtensionSettings, UpstreamSetting } from '../ui/settings';
import type { Secrets } from './secrets';

/** Reads the stored passwords of every hop of `upstreams` (SecretStorage is async; the routing config is not). */
async function passwords(upstreams: readonly UpstreamSetting[], secrets: Secrets): Promise<PasswordLookup> {
  const found = new Map<string, string | undefined>();
  for (const u of upstreams) {
    for (let i = 0; i < hopUrls(u).length; i++) found.set(`${i}\0${u.name}`, await secrets.upstreamPassword(u.name, i));
  }
  return (name, hop) => found.get(`${hop}\0${name}`);
}

/** Builds the engine's router from settings and stored passwords. Throws a clear, password-free error on bad config. */
export async function buildRouter(s: ExtensionSettings, secrets: Secrets, logger: Logger, egress?: EgressEndpoint | 'direct'): Promise<RuleRouter> {
  return engineBuildRouter(routingConfig(s, await passwords(s.upstreams, secrets)), { logger, ...(egress !== undefined ? { egress } : {}) });
}

export interface TestResult {
  ok: boolean;
  latencyMs: number;
  error?: string;
  authFailed?: boolean;
}

/** "Test upstream": connects through the upstream (or directly when undefined) to `target`. */
export async function checkUpstream(upstream: UpstreamSetting | undefined, secrets: Secrets, target: string): Promise<TestResult> {
  const urls = upstream ? resolvedHops(upstream, await passwords([upstream], secrets)) : ['direct'];
  const r = await engineCheck(urls.length === 1 ? urls[0] : urls, target, { timeoutMs: 10_000 });
  return { ok: r.ok, latencyMs: r.latencyMs, error: r.error, authFailed: r.code === 'UPSTREAM_AUTH_FAILED' };
}
