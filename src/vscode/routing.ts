import type { Router } from '../core/dialer';
import { checkUpstream as engineCheck } from '../core/health';
import type { Logger } from '../core/log';
import { buildRouter as engineBuildRouter } from '../core/routing';
import { hopUrls, routingConfig, withPassword } from '../ui/routing-config';
import type { ExtensionSettings, UpstreamSetting } from '../ui/settings';
import type { Secrets } from './secrets';

async function passwords(s: ExtensionSettings, secrets: Secrets): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const u of s.upstreams) {
    for (let i = 0; i < hopUrls(u).length; i++) out.set(`${i}\0${u.name}`, await secrets.upstreamPassword(u.name, i));
  }
  return out;
}

/** Builds the engine's router from settings and stored passwords. Throws a clear, password-free error on bad config. */
export async function buildRouter(s: ExtensionSettings, secrets: Secrets, logger: Logger): Promise<Router> {
  const pw = await passwords(s, secrets);
  return engineBuildRouter(
    routingConfig(s, (name, hop) => pw.get(`${hop}\0${name}`)),
    { logger },
  );
}

export interface TestResult {
  ok: boolean;
  latencyMs: number;
  error?: string;
  authFailed?: boolean;
}

/** "Test upstream": connects through the upstream (or directly when undefined) to `target`. */
export async function checkUpstream(upstream: UpstreamSetting | undefined, secrets: Secrets, target: string): Promise<TestResult> {
  let urls = ['direct'];
  if (upstream) {
    const hops = hopUrls(upstream);
    urls = [];
    for (let i = 0; i < hops.length; i++) urls.push(withPassword(hops[i], await secrets.upstreamPassword(upstream.name, i)));
  }
  const r = await engineCheck(urls.length === 1 ? urls[0] : urls, target, { timeoutMs: 10_000 });
  return { ok: r.ok, latencyMs: r.latencyMs, error: r.error, authFailed: r.code === 'UPSTREAM_AUTH_FAILED' };
}
