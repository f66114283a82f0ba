/** Status bar text and tooltip content. Pure. */
import { formatBytes } from '../core/format';
import type { SessionInfo, Totals } from '../core/registry';
import type { IgnoredSetting } from './workspace-policy';

export type ProxyState = 'stopped' | 'starting' | 'running' | 'error';

export interface StatusModel {
  state: ProxyState;
  totals?: Totals;
  listener?: string;
  upstream: string;
  error?: string;
  /** Folder settings not in effect (workspace-policy.ts), said in every state's tooltip. */
  ignored?: readonly IgnoredSetting[];
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** 'error' and 'warning' map to the theme's status bar background colours. */
  background?: 'error' | 'warning';
}

/** One tooltip line naming the folder values that were not used, and why. */
export function ignoredLine(ignored: readonly IgnoredSetting[] | undefined): string | undefined {
  if (!ignored || ignored.length === 0) return undefined;
  const keys = ignored.map((i) => `\`${i.key}\``).join(', ');
  return ignored.some((i) => i.reason === 'untrusted')
    ? `$(shield) This folder's settings for ${keys} are ignored (Restricted Mode); your user settings are used.`
    : `$(shield) This folder's ${keys} is not applied until you allow it (SOCKS Relay: Review Folder Settings…).`;
}

export function statusView(m: StatusModel): StatusView {
  const v = baseView(m);
  const line = ignoredLine(m.ignored);
  return line ? { ...v, tooltip: v.tooltip.replace(/(\n\nClick for actions)?$/, `\n\n${line}$1`) } : v;
}

function baseView(m: StatusModel): StatusView {
  switch (m.state) {
    case 'running': {
      const t = m.totals ?? { active: 0, opened: 0, bytesUp: 0, bytesDown: 0, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 };
      return {
        text: `$(radio-tower) ${t.active} · ↑${formatBytes(t.bytesUp)} ↓${formatBytes(t.bytesDown)}`,
        tooltip: [
          `**SOCKS Relay** is running`,
          ``,
          `| | |`,
          `|---|---|`,
          `| Listener | \`${m.listener ?? '?'}\` |`,
          `| Upstream | ${m.upstream} |`,
          `| Active sessions | ${t.active} |`,
          `| Sessions since start | ${t.opened} |`,
          `| Sent ↑ | ${formatBytes(t.bytesUp)} |`,
          `| Received ↓ | ${formatBytes(t.bytesDown)} |`,
          ``,
          `Click for actions`,
        ].join('\n'),
      };
    }
    case 'starting':
      return { text: '$(loading~spin) SOCKS Relay', tooltip: 'SOCKS Relay is starting…' };
    case 'error':
      return { text: '$(error) SOCKS Relay', tooltip: `**SOCKS Relay** failed: ${m.error ?? 'unknown error'}\n\nClick for actions`, background: 'error' };
    case 'stopped':
      return { text: '$(circle-slash) SOCKS Relay: off', tooltip: `**SOCKS Relay** is stopped\n\nUpstream: ${m.upstream}\n\nClick for actions` };
  }
}

/** True when a session ended because an upstream refused our credentials (by its code, never its text), so the UI can offer to edit them. */
export function isUpstreamAuthFailure(s: Pick<SessionInfo, 'outcomeCode'> | undefined): boolean {
  return s?.outcomeCode === 'UPSTREAM_AUTH_FAILED';
}

/**
 * The configured upstream whose credentials a session's failure blames: the failover member that failed
 * when it is configured by name, else the route's upstream (a chain, or the group holding a URL member).
 * Names are compared whole: an upstream named `co` is not `corp`.
 */
export function credentialFixTarget(s: Pick<SessionInfo, 'outcomeCode' | 'routeInfo' | 'failedMember'>, upstreamNames: readonly string[]): string | undefined {
  if (!isUpstreamAuthFailure(s)) return undefined;
  return [s.failedMember, s.routeInfo?.upstream].find((n): n is string => n !== undefined && upstreamNames.includes(n));
}
