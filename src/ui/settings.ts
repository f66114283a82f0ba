/**
 * The extension's settings as a typed value. Pure (no `vscode`): the UI layer reads raw values from
 * the configuration and passes them here, so validation and defaults are testable in plain Node.
 */
export type AuthMode = 'none' | 'generated' | 'password';
export type SessionGrouping = 'none' | 'host';

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
  terminalEnabled: boolean;
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

export const TERMINAL_VARIABLES = ['ALL_PROXY', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

export const defaultSettings: ExtensionSettings = {
  host: '127.0.0.1',
  port: 1080,
  auth: 'none',
  username: 'relay',
  autoStart: false,
  upstreams: [],
  activeUpstream: '',
  rules: [],
  terminalEnabled: true,
  terminalVariables: [...TERMINAL_VARIABLES],
  noProxy: 'localhost,127.0.0.1,::1',
  socks4: true,
  http: true,
  maxSessions: 4096,
  idleTimeoutSeconds: 600,
  keepClosedSessions: 50,
  sessionGrouping: 'none',
  upstreamTestTarget: 'example.com:443',
};

/** Reads one raw setting: `get(key)` returns whatever the configuration holds (possibly garbage). */
export type RawGetter = (key: string) => unknown;

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
    port: int(get('listen.port'), d.port, 0, 65535),
    auth: oneOf(get('auth.mode'), ['none', 'generated', 'password'] as const, d.auth),
    username: str(get('auth.username'), d.username).trim() || d.username,
    autoStart: bool(get('autoStart'), d.autoStart),
    upstreams: upstreams(get('upstreams')),
    activeUpstream: str(get('activeUpstream'), d.activeUpstream),
    rules: rules(get('rules')),
    terminalEnabled: bool(get('terminal.enabled'), d.terminalEnabled),
    terminalVariables: Array.isArray(vars) ? vars.filter((x): x is string => typeof x === 'string' && (TERMINAL_VARIABLES as readonly string[]).includes(x)) : d.terminalVariables,
    noProxy: str(get('terminal.noProxy'), d.noProxy),
    socks4: bool(get('socks4.enabled'), d.socks4),
    http: bool(get('http.enabled'), d.http),
    maxSessions: int(get('limits.maxSessions'), d.maxSessions, 1, 100_000),
    idleTimeoutSeconds: int(get('limits.idleTimeoutSeconds'), d.idleTimeoutSeconds, 0, 7 * 24 * 3600),
    keepClosedSessions: int(get('sessions.keepClosed'), d.keepClosedSessions, 0, 1000),
    sessionGrouping: oneOf(get('sessions.groupBy'), ['none', 'host'] as const, d.sessionGrouping),
    upstreamTestTarget: str(get('upstreamTestTarget'), d.upstreamTestTarget).trim() || d.upstreamTestTarget,
  };
}

/** True when a change between two settings values needs the listener restarted (address, auth, protocols, limits). */
export function listenerChanged(a: ExtensionSettings, b: ExtensionSettings): boolean {
  return a.host !== b.host || a.port !== b.port || a.auth !== b.auth || a.username !== b.username || a.socks4 !== b.socks4 || a.http !== b.http;
}
