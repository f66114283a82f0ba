/**
 * The extension's settings as a typed value. Pure (no `vscode`): the UI layer reads raw values from
 * the configuration and passes them here, so validation and defaults are testable in plain Node.
 */
import { AUTH_MODES, MAX_IDLE_TIMEOUT_SECONDS, SESSION_GROUPINGS, SettingKey, SETTINGS, TERMINAL_VARIABLES } from './setting-keys';

export type AuthMode = (typeof AUTH_MODES)[number];
export type SessionGrouping = (typeof SESSION_GROUPINGS)[number];

export interface UpstreamSetting {
  name: string;
  /** One URL, or several for a chain (first hop first). Passwords are kept in SecretStorage, not here. */
  url: string | string[];
}

export interface RuleSetting {
  /** `example.com`, `*.corp.example`, `10.0.0.0/8`, `::1/128`, `port:22`, `port:8000-8999`, or combined with spaces (all must match). */
  match: string;
  /** `direct`, `block`, or the name of an upstream. */
  action: string;
}

export interface ExtensionSettings {
  host: string;
  port: number;
  auth: AuthMode;
  username: string;
  autoStart: boolean;
  upstreams: UpstreamSetting[];
  /** Name of the upstream used when no rule matches; '' means direct. */
  activeUpstream: string;
  rules: RuleSetting[];
  /** Keytab for SOCKS5 GSSAPI (Kerberos) clients; '' when GSSAPI is not offered. */
  gssapiKeytab: string;
  terminalEnabled: boolean;
  /** Route VS Code's own HTTP traffic (http.proxy) through the relay while it runs. */
  editorTraffic: boolean;
  terminalVariables: string[];
  noProxy: string;
  socks4: boolean;
  http: boolean;
  maxSessions: number;
  idleTimeoutSeconds: number;
  keepClosedSessions: number;
  sessionGrouping: SessionGrouping;
  /** host:port that "Test Upstream" connects to. */
  upstreamTestTarget: string;
}

/** The settings' defaults, from the one table (setting-keys.ts). */
export const defaultSettings: ExtensionSettings = {
  host: SETTINGS['listen.host'].default,
  port: SETTINGS['listen.port'].default,
  auth: SETTINGS['auth.mode'].default,
  username: SETTINGS['auth.username'].default,
  gssapiKeytab: SETTINGS['auth.gssapiKeytab'].default,
  autoStart: SETTINGS.autoStart.default,
  upstreams: [],
  activeUpstream: SETTINGS.activeUpstream.default,
  rules: [],
  terminalEnabled: SETTINGS['terminal.enabled'].default,
  editorTraffic: SETTINGS.editorTraffic.default,
  terminalVariables: [...SETTINGS['terminal.variables'].default],
  noProxy: SETTINGS['terminal.noProxy'].default,
  socks4: SETTINGS['socks4.enabled'].default,
  http: SETTINGS['http.enabled'].default,
  maxSessions: SETTINGS['limits.maxSessions'].default,
  idleTimeoutSeconds: SETTINGS['limits.idleTimeoutSeconds'].default,
  keepClosedSessions: SETTINGS['sessions.keepClosed'].default,
  sessionGrouping: SETTINGS['sessions.groupBy'].default,
  upstreamTestTarget: SETTINGS.upstreamTestTarget.default,
};

/** Reads one raw setting: `get(key)` returns whatever the configuration holds (possibly garbage). */
export type RawGetter = (key: SettingKey) => unknown;

function str(v: unknown, d: string): string {
  return typeof v === 'string' ? v : d;
}
function bool(v: unknown, d: boolean): boolean {
  return typeof v === 'boolean' ? v : d;
}
function int(v: unknown, d: number, min: number, max: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : d;
}
function oneOf<T extends string>(v: unknown, options: readonly T[], d: T): T {
  return typeof v === 'string' && (options as readonly string[]).includes(v) ? (v as T) : d;
}

function upstreams(v: unknown): UpstreamSetting[] {
  if (!Array.isArray(v)) return [];
  const out: UpstreamSetting[] = [];
  for (const item of v) {
    if (typeof item !== 'object' || item === null) continue;
    const { name, url } = item as { name?: unknown; url?: unknown };
    if (typeof name !== 'string' || name.trim() === '') continue;
    if (typeof url === 'string' || (Array.isArray(url) && url.length > 0 && url.every((u) => typeof u === 'string'))) {
      out.push({ name: name.trim(), url: url as string | string[] });
    }
  }
  return out;
}

function rules(v: unknown): RuleSetting[] {
  if (!Array.isArray(v)) return [];
  return v.filter(
    (r): r is RuleSetting => typeof r === 'object' && r !== null && typeof (r as RuleSetting).match === 'string' && typeof (r as RuleSetting).action === 'string',
  );
}

export function readSettings(get: RawGetter): ExtensionSettings {
  const d = defaultSettings;
  const vars = get('terminal.variables');
  return {
    host: str(get('listen.host'), d.host).trim() || d.host,
    port: int(get('listen.port'), d.port, SETTINGS['listen.port'].minimum, SETTINGS['listen.port'].maximum),
    auth: oneOf(get('auth.mode'), AUTH_MODES, d.auth),
    username: str(get('auth.username'), d.username).trim() || d.username,
    gssapiKeytab: str(get('auth.gssapiKeytab'), d.gssapiKeytab).trim(),
    autoStart: bool(get('autoStart'), d.autoStart),
    upstreams: upstreams(get('upstreams')),
    activeUpstream: str(get('activeUpstream'), d.activeUpstream),
    rules: rules(get('rules')),
    terminalEnabled: bool(get('terminal.enabled'), d.terminalEnabled),
    editorTraffic: bool(get('editorTraffic'), d.editorTraffic),
    terminalVariables: Array.isArray(vars) ? vars.filter((x): x is string => typeof x === 'string' && (TERMINAL_VARIABLES as readonly string[]).includes(x)) : d.terminalVariables,
    noProxy: str(get('terminal.noProxy'), d.noProxy),
    socks4: bool(get('socks4.enabled'), d.socks4),
    http: bool(get('http.enabled'), d.http),
    maxSessions: int(get('limits.maxSessions'), d.maxSessions, SETTINGS['limits.maxSessions'].minimum, SETTINGS['limits.maxSessions'].maximum),
    idleTimeoutSeconds: int(get('limits.idleTimeoutSeconds'), d.idleTimeoutSeconds, SETTINGS['limits.idleTimeoutSeconds'].minimum, MAX_IDLE_TIMEOUT_SECONDS),
    keepClosedSessions: int(get('sessions.keepClosed'), d.keepClosedSessions, SETTINGS['sessions.keepClosed'].minimum, SETTINGS['sessions.keepClosed'].maximum),
    sessionGrouping: oneOf(get('sessions.groupBy'), SESSION_GROUPINGS, d.sessionGrouping),
    upstreamTestTarget: str(get('upstreamTestTarget'), d.upstreamTestTarget).trim() || d.upstreamTestTarget,
  };
}

/** True when a change between two settings values needs the listener restarted (address, auth, protocols, limits). */
export function listenerChanged(a: ExtensionSettings, b: ExtensionSettings): boolean {
  return a.host !== b.host || a.port !== b.port || a.auth !== b.auth || a.username !== b.username || a.gssapiKeytab !== b.gssapiKeytab || a.socks4 !== b.socks4 || a.http !== b.http;
}
