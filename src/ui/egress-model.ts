/**
 * The route "This computer (through VS Code)" as the UI shows it: whether the window has it, its row in
 * the Upstreams tree, and the agent command for setups without the companion. Pure.
 */
import { EGRESS_ROUTE, isEgressRoute } from '../core/egress/dialer';
import { EGRESS_TOKEN_ENV } from '../core/egress/protocol';
import type { ExtensionSettings } from './settings';
import type { UpstreamNode } from './view-node';

export { EGRESS_ROUTE };
export const EGRESS_LABEL = 'This computer (through VS Code)';

/** Where the window runs: `vscode.env.remoteName` and whether the UI is a browser (code-server, Codespaces). */
export interface WindowKind {
  readonly remoteName: string | undefined;
  readonly web: boolean;
}

/**
 * The route exists where the relay does not run on the user's computer: a remote window (SSH, container,
 * WSL, tunnel) or a browser window (code-server, where the extension host is the server). In a local
 * desktop window "this computer" is the relay's own machine: the name then means direct.
 */
export function egressAvailable(w: WindowKind): boolean {
  return w.remoteName !== undefined || w.web;
}

/** What the tunnel is doing, as the tree tells it. */
export type EgressView =
  | { readonly status: 'off'; readonly why?: string }
  | { readonly status: 'waiting'; readonly companion: 'asking' | 'absent' | 'failed'; readonly detail?: string }
  | { readonly status: 'connected'; readonly rttMs?: number; readonly streams: number; readonly agent?: string }
  | { readonly status: 'disconnected'; readonly reason?: string };

export function egressStatusText(v: EgressView): string {
  switch (v.status) {
    case 'off':
      return v.why ?? 'not in use · choose it to connect';
    case 'waiting':
      return v.companion === 'asking' ? 'connecting…' : 'waiting for the agent';
    case 'connected':
      return `connected${v.rttMs !== undefined ? ` · ${v.rttMs < 10 ? v.rttMs.toFixed(1) : Math.round(v.rttMs)} ms` : ''}`;
    case 'disconnected':
      return 'disconnected';
  }
}

function tooltip(v: EgressView): string {
  const base = 'Sessions on this route leave from the computer VS Code runs on (your laptop), through a tunnel over VS Code\'s port forwarding: they reach what that computer reaches (its VPN, intranet and internet).';
  switch (v.status) {
    case 'off':
      return `${base}\n${v.why ?? 'The tunnel opens when the default route or a rule uses it (and the proxy runs).'}`;
    case 'waiting':
      return v.companion === 'absent'
        ? `${base}\nNo companion extension answered on your computer (a browser window has none). Click to copy the command that runs the agent there.`
        : v.companion === 'failed'
          ? `${base}\nThe companion could not connect${v.detail !== undefined ? `: ${v.detail}` : ''}. Click to copy the agent command instead.`
          : `${base}\nAsking the companion extension on your computer to connect…`;
    case 'connected':
      return `${base}\nConnected${v.agent !== undefined ? ` to ${v.agent}` : ''}; ${v.streams} open stream(s)${v.rttMs !== undefined ? `; round trip ${v.rttMs} ms` : ''}.`;
    case 'disconnected':
      return `${base}\nThe agent went away${v.reason !== undefined ? ` (${v.reason})` : ''}; sessions on this route are refused until it reconnects. Click to copy the agent command.`;
  }
}

/** The route's row under Upstreams. */
export function egressNode(v: EgressView, active: boolean): UpstreamNode {
  const connected = v.status === 'connected';
  const broken = v.status === 'disconnected' || (v.status === 'waiting' && v.companion !== 'asking');
  return {
    kind: 'upstream',
    upstream: EGRESS_ROUTE,
    id: `upstream:${EGRESS_ROUTE}`,
    label: EGRESS_LABEL,
    description: `${egressStatusText(v)}${active ? ' · active' : ''}`,
    tooltip: `${tooltip(v)}${active ? '\n(default route)' : ''}`,
    icon: active ? 'check' : connected ? 'vm-connect' : broken ? 'debug-disconnect' : 'vm-outline',
    iconColor: connected ? 'charts.green' : broken && active ? 'list.warningForeground' : undefined,
    contextValue: active ? 'upstream.egress.active' : 'upstream.egress',
    ...(broken ? { command: 'socksRelay.egress.copyAgentCommand' } : {}),
  };
}

/** The shell command that runs the agent on the user's computer (the secret inline: the user copies it there). */
export function agentCommandLine(url: string, token: string): string {
  return `${EGRESS_TOKEN_ENV}=${token} socks-relay egress-agent --connect ${url}`;
}

/** Whether the settings send anything through this computer: the default route, a rule, or an upstream. */
export function routeUsesEgress(s: Pick<ExtensionSettings, 'activeUpstream' | 'rules' | 'upstreams'>): boolean {
  return (
    isEgressRoute(s.activeUpstream) ||
    s.rules.some((r) => isEgressRoute(r.action)) ||
    s.upstreams.some((u) => (Array.isArray(u.url) ? u.url : [u.url]).some(isEgressRoute))
  );
}
