/** The configuration tree (listener, upstreams, rules) as plain data. Pure. */
import { redactUrl } from '../core/upstream/url';
import type { ExtensionSettings, UpstreamSetting } from './settings';
import type { ProxyState } from './status';
import { SECTION } from './setting-keys';
import type { InfoNode, RuleNode, UpstreamNode, ViewNode } from './view-node';
import { describeValue, IgnoredSetting, IgnoreReason } from './workspace-policy';
import { egressNode, EgressView } from './egress-model';
import { isEgressRoute } from '../core/egress/dialer';

export interface ConfigModelInput {
  settings: ExtensionSettings;
  state: ProxyState;
  /** Where it actually listens when running (port 0 resolves to a real port). */
  listening?: string;
  error?: string;
  /** Folder settings not in effect (see workspace-policy.ts). */
  ignored?: readonly IgnoredSetting[];
  /** The route "This computer", in windows that have it (egress-model.ts). */
  egress?: EgressView;
  /** Credentials are required although auth is "none" (a route goes through this computer). */
  credentialsForced?: boolean;
  /** This window's part in the user's shared relay. */
  sharing?: SharingInfo;
  /** The engine's word on GSSAPI while this window runs the listener (else the row shows the setting). */
  gssapi?: { readonly offered: boolean; readonly detail: string };
  /** The Editor traffic row (editor-proxy.ts editorProxyText). */
  editorTraffic?: { readonly description: string; readonly tooltip: string; readonly routed: boolean };
}

/** One relay per user: this window runs it (with `others` windows attached) or shows the one `owner` runs. */
export type SharingInfo = { readonly role: 'owner'; readonly others: number } | { readonly role: 'member'; readonly owner: string };

function sharingText(v: SharingInfo): { description: string; tooltip: string } {
  if (v.role === 'member') return { description: `run by window "${v.owner}"`, tooltip: `Every window of yours shares one relay. Window "${v.owner}" runs it; this window shows it and sends it Start, Stop and the rest. If that window closes, one of the others carries the relay on, on the same port.` };
  return {
    description: v.others === 0 ? 'this window (no other window attached)' : `this window · ${v.others} other window${v.others === 1 ? '' : 's'} attached`,
    tooltip: 'Every window of yours shares one relay; this window runs it. If it closes, another window carries it on, on the same port, with the same credentials.',
  };
}

/** The Kerberos row: the keytab in use, or why GSSAPI is not offered (library or keytab missing). */
function gssapiRow(keytab: string, status: ConfigModelInput['gssapi']): InfoNode {
  const base = { kind: 'info' as const, id: 'listener.gssapi', label: 'Kerberos (GSSAPI)', contextValue: 'listener.field' };
  if (status && !status.offered) {
    return { ...base, description: `not offered: ${status.detail}`, tooltip: `SOCKS5 clients cannot use GSSAPI: ${status.detail}. Username/password and the other settings work as before.`, icon: 'warning', iconColor: 'problemsWarningIcon.foreground' };
  }
  const file = keytab.split(/[\\/]/).pop() || keytab;
  return {
    ...base,
    description: status ? `offered · keytab ${file}` : `keytab ${file}`,
    tooltip: `SOCKS5 clients may authenticate with a Kerberos ticket (RFC 1961); the principal becomes the session's user.\n${status ? status.detail : `keytab ${keytab}`} (setting ${SECTION}.auth.gssapiKeytab)`,
    icon: 'key',
  };
}

export function upstreamUrlText(u: UpstreamSetting): string {
  const urls = Array.isArray(u.url) ? u.url : [u.url];
  return urls.map(redactUrl).join(' → ');
}

const authText = { none: 'none', generated: 'per-run password', password: 'password' } as const;

export function describeRoute(settings: ExtensionSettings): string {
  if (isEgressRoute(settings.activeUpstream)) return 'this computer';
  return settings.activeUpstream === '' ? 'direct' : settings.activeUpstream;
}

const reasonText: Record<IgnoreReason, string> = {
  untrusted: 'Restricted Mode',
  'needs-consent': 'waiting for your OK',
  declined: 'you chose your user settings',
};

/**
 * The row that says a folder's values were not used, and why. Clicking it opens what fixes it: the
 * Workspace Trust editor in Restricted Mode, the confirmation again for values waiting for an answer.
 */
export function folderSettingsNode(ignored: readonly IgnoredSetting[]): InfoNode | undefined {
  if (ignored.length === 0) return undefined;
  const untrusted = ignored.some((i) => i.reason === 'untrusted');
  const keys = ignored.map((i) => i.key).join(', ');
  return {
    kind: 'info',
    id: 'folderSettings',
    label: untrusted ? 'Folder settings ignored' : 'Folder settings not applied',
    // The count, not the keys: the row stays readable in a narrow sidebar; the keys are its children.
    description: `${ignored.length === 1 ? ignored[0].key : `${ignored.length} values`} · ${untrusted ? 'Restricted Mode' : ignored.some((i) => i.reason === 'needs-consent') ? 'needs your OK' : 'declined'}`,
    tooltip: untrusted
      ? `This folder is not trusted (Restricted Mode), so SOCKS Relay ignores what its settings say for ${keys} and uses your user settings instead. Trust the folder to let it choose routing.`
      : `This folder's settings would expose the proxy beyond this machine (${keys}). SOCKS Relay uses your user settings for these until you allow the folder's values. Click to decide.`,
    icon: 'shield',
    iconColor: 'list.warningForeground',
    contextValue: untrusted ? 'folderSettings.untrusted' : 'folderSettings.consent',
    command: untrusted ? 'socksRelay.manageTrust' : 'socksRelay.reviewFolderSettings',
    expanded: false,
    children: ignored.map((i) => ({
      kind: 'info',
      id: `folderSettings:${i.key}`,
      label: i.key,
      description: `${describeValue(i.key, i.value)} · ${reasonText[i.reason]}`,
      tooltip: `The folder sets ${SECTION}.${i.key} to ${describeValue(i.key, i.value)}; not used: ${reasonText[i.reason]}`,
      icon: 'circle-slash',
      contextValue: 'folderSettings.field',
    })),
  };
}

export function configTree(input: ConfigModelInput): ViewNode[] {
  const { settings: s, state } = input;
  const running = state === 'running';
  const address = input.listening ?? `${s.host}:${s.port}`;
  const protocols = ['SOCKS5', s.socks4 ? 'SOCKS4/4a' : undefined, s.http ? 'HTTP' : undefined].filter(Boolean).join(', ');
  const stateText = state === 'error' ? `error: ${input.error ?? 'unknown'}` : state;

  const listener: InfoNode = {
    kind: 'info',
    id: 'listener',
    label: 'Listener',
    description: `${address} · ${state === 'error' ? 'error' : state}`,
    tooltip: `SOCKS Relay listens on ${address} (${protocols}); ${stateText}`,
    icon: running ? 'radio-tower' : state === 'error' ? 'error' : 'circle-slash',
    iconColor: running ? 'charts.green' : state === 'error' ? 'errorForeground' : undefined,
    contextValue: running ? 'listener.running' : 'listener.stopped',
    expanded: true,
    children: [
      { kind: 'info', id: 'listener.address', label: 'Address', description: address, icon: 'plug', contextValue: 'listener.field' },
      {
        kind: 'info',
        id: 'listener.auth',
        label: 'Authentication',
        description: s.auth === 'password' ? `password (user ${s.username})` : input.credentialsForced && s.auth === 'none' ? 'per-run password · required by "This computer"' : authText[s.auth],
        ...(input.credentialsForced && s.auth === 'none'
          ? { tooltip: 'Authentication is off in the settings, but a route goes through this computer: other users of this host must not reach your computer\'s network, so terminals get per-run credentials.' }
          : {}),
        icon: s.auth === 'none' && !input.credentialsForced ? 'unlock' : 'lock',
        contextValue: 'listener.field',
      },
      ...(s.gssapiKeytab !== '' ? [gssapiRow(s.gssapiKeytab, input.gssapi)] : []),
      { kind: 'info', id: 'listener.protocols', label: 'Protocols', description: protocols, icon: 'symbol-interface', contextValue: 'listener.field' },
      { kind: 'info', id: 'listener.state', label: 'State', description: stateText, icon: running ? 'pass' : state === 'error' ? 'error' : 'debug-pause', contextValue: 'listener.field' },
      ...(input.sharing ? [{ kind: 'info' as const, id: 'listener.shared', label: 'Shared', ...sharingText(input.sharing), icon: 'multiple-windows', contextValue: 'listener.field' }] : []),
      ...(input.editorTraffic
        ? [{ kind: 'info' as const, id: 'listener.editor', label: 'Editor traffic', description: input.editorTraffic.description, tooltip: input.editorTraffic.tooltip, icon: input.editorTraffic.routed ? 'vscode' : 'circle-slash', contextValue: 'listener.field' }]
        : []),
    ],
  };

  const active = s.activeUpstream;
  const direct: UpstreamNode = {
    kind: 'upstream',
    upstream: '',
    id: 'upstream:',
    label: 'Direct',
    description: 'no upstream',
    tooltip: 'Connect to destinations directly from this machine',
    icon: active === '' ? 'check' : 'arrow-right',
    iconColor: active === '' ? 'charts.green' : undefined,
    contextValue: active === '' ? 'upstream.direct.active' : 'upstream.direct',
  };
  const upstreamNodes = s.upstreams.map((u): UpstreamNode => {
    const isActive = u.name === active;
    return {
      kind: 'upstream',
      upstream: u.name,
      id: `upstream:${u.name}`,
      label: u.name,
      description: upstreamUrlText(u) + (isActive ? ' · active' : ''),
      tooltip: `${u.name}: ${upstreamUrlText(u)}${isActive ? '\n(default route)' : ''}`,
      icon: isActive ? 'check' : Array.isArray(u.url) && u.url.length > 1 ? 'link' : 'server',
      iconColor: isActive ? 'charts.green' : undefined,
      contextValue: isActive ? 'upstream.active' : 'upstream',
    };
  });
  const egress = input.egress ? [egressNode(input.egress, isEgressRoute(active))] : [];
  const missing = active !== '' && !isEgressRoute(active) && !s.upstreams.some((u) => u.name === active);
  const upstreams: InfoNode = {
    kind: 'info',
    id: 'upstreams',
    label: 'Upstreams',
    description: missing ? `active "${active}" is not defined` : `default route: ${describeRoute(s)}`,
    icon: 'server-environment',
    iconColor: missing ? 'errorForeground' : undefined,
    contextValue: 'upstreams',
    expanded: true,
    children: [direct, ...egress, ...upstreamNodes],
  };

  const ruleNodes = s.rules.map((r, i): RuleNode => {
    const pos = [i === 0 ? 'first' : '', i === s.rules.length - 1 ? 'last' : ''].filter(Boolean).join(',');
    return {
      kind: 'rule',
      index: i,
      id: `rule:${i}:${r.match}`,
      label: r.match,
      description: `→ ${isEgressRoute(r.action) ? 'this computer' : r.action}`,
      tooltip: `Rule ${i + 1}: connections matching "${r.match}" go ${r.action === 'block' ? 'nowhere (blocked)' : r.action === 'direct' ? 'direct' : isEgressRoute(r.action) ? 'out from this computer' : `through ${r.action}`}`,
      icon: r.action === 'block' ? 'circle-slash' : r.action === 'direct' ? 'arrow-right' : isEgressRoute(r.action) ? 'vm-connect' : 'server',
      contextValue: `rule[${pos}]`,
    };
  });
  const rules: InfoNode = {
    kind: 'info',
    id: 'rules',
    label: 'Rules',
    description: s.rules.length === 0 ? 'none' : `${s.rules.length}, first match wins`,
    tooltip: s.rules.length === 0 ? 'No rules: every connection takes the default route' : 'Rules are tried in order; the first match wins',
    icon: 'list-ordered',
    contextValue: 'rules',
    expanded: true,
    children: ruleNodes,
  };
  const notice = folderSettingsNode(input.ignored ?? []);
  return notice ? [notice, listener, upstreams, rules] : [listener, upstreams, rules];
}
