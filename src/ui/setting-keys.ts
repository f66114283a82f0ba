/**
 * Every `socksRelay.*` setting: its key, type, default and bounds, whether a folder may set it while
 * untrusted, and the engine option it feeds. Pure (no `vscode`). package.json's `contributes.configuration`
 * and `restrictedConfigurations` are checked against this table by test/unit/setting-keys.test.ts.
 */
import { DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULTS } from '../core/defaults';
import type { ProxyOptions } from '../core/context';

/** The configuration section; keys below are relative to it. */
export const SECTION = 'socksRelay';

export const TERMINAL_VARIABLES = ['ALL_PROXY', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;
export const AUTH_MODES = ['none', 'generated', 'password'] as const;
export const SESSION_GROUPINGS = ['none', 'host', 'terminal'] as const;

export interface SettingSpec {
  readonly type: 'boolean' | 'string' | 'integer' | 'array';
  readonly default: unknown;
  readonly enum?: readonly string[];
  readonly minimum?: number;
  readonly maximum?: number;
  /** Taken only from user settings in Restricted Mode (package.json restrictedConfigurations). */
  readonly restricted: boolean;
  /** The engine option this setting sets; `scale` converts the setting's unit to the option's. */
  readonly engine?: { readonly option: keyof ProxyOptions; readonly scale?: number };
}

/** In package.json order, which is also the order folder values not in effect are reported in. */
export const SETTINGS = {
  autoStart: { type: 'boolean', default: false, restricted: true },
  'listen.host': { type: 'string', default: DEFAULTS.host, restricted: true, engine: { option: 'host' } },
  'listen.port': { type: 'integer', default: DEFAULTS.port, minimum: 0, maximum: 65535, restricted: true, engine: { option: 'port' } },
  'auth.mode': { type: 'string', default: 'none', enum: AUTH_MODES, restricted: true },
  'auth.username': { type: 'string', default: 'relay', restricted: true },
  'auth.gssapiKeytab': { type: 'string', default: '', restricted: true },
  upstreams: { type: 'array', default: [], restricted: true },
  activeUpstream: { type: 'string', default: '', restricted: true },
  rules: { type: 'array', default: [], restricted: true },
  'terminal.enabled': { type: 'boolean', default: true, restricted: true },
  'terminal.variables': { type: 'array', default: TERMINAL_VARIABLES, restricted: true },
  'terminal.noProxy': { type: 'string', default: 'localhost,127.0.0.1,::1', restricted: true },
  // Application scope in the manifest as well: only the user's own settings can turn it on.
  editorTraffic: { type: 'boolean', default: false, restricted: true },
  'socks4.enabled': { type: 'boolean', default: DEFAULTS.socks4, restricted: true, engine: { option: 'socks4' } },
  'http.enabled': { type: 'boolean', default: DEFAULTS.http, restricted: true, engine: { option: 'http' } },
  'limits.maxSessions': { type: 'integer', default: DEFAULTS.maxSessions, minimum: 1, maximum: 100_000, restricted: false, engine: { option: 'maxSessions' } },
  // The manifest states no maximum; readSettings still caps it at a week.
  'limits.idleTimeoutSeconds': { type: 'integer', default: DEFAULT_IDLE_TIMEOUT_SECONDS, minimum: 0, restricted: false, engine: { option: 'idleTimeoutMs', scale: 1000 } },
  'sessions.keepClosed': { type: 'integer', default: 50, minimum: 0, maximum: 1000, restricted: false },
  'sessions.groupBy': { type: 'string', default: 'none', enum: SESSION_GROUPINGS, restricted: false },
  upstreamTestTarget: { type: 'string', default: 'example.com:443', restricted: true },
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The longest idle timeout readSettings accepts (the manifest leaves it open). */
export const MAX_IDLE_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** Keys a folder may not set while untrusted. */
export type RestrictedKey = { [K in SettingKey]: (typeof SETTINGS)[K]['restricted'] extends true ? K : never }[SettingKey];
export const RESTRICTED_KEYS: readonly RestrictedKey[] = SETTING_KEYS.filter((k): k is RestrictedKey => SETTINGS[k].restricted);

/** The full id, e.g. for `workbench.action.openSettings`. */
export function settingId(key: SettingKey): string {
  return `${SECTION}.${key}`;
}
