/**
 * Which settings a folder may change, decided from `inspect()` results. Pure (no `vscode`).
 *
 * A folder's `.vscode/settings.json` (or a `.code-workspace` file) comes with the code you clone, so it
 * must not be able to expose the proxy to the network or route your traffic through a host it names:
 * - in an untrusted folder (Restricted Mode) the restricted keys (setting-keys.ts) take only user and default values;
 * - in a trusted folder they may come from the folder (per-project routing), except a value that widens
 *   who can reach the proxy (a non-loopback listen address, authentication turned off), which needs the
 *   user's OK once per folder and value; until then the user's value is used.
 * VS Code's `restrictedConfigurations` already hides such values in Restricted Mode; this is the second
 * line (nested `{"socksRelay": {…}}` objects, for one, get past VS Code's per-key filter).
 */
import { BlockList, isIP } from 'node:net';
import { redactUrl } from '../core/upstream/url';
import { ExtensionSettings, readSettings } from './settings';
import { RESTRICTED_KEYS, RestrictedKey, SettingKey } from './setting-keys';

const restricted: ReadonlySet<string> = new Set(RESTRICTED_KEYS);
export function isRestrictedKey(key: string): key is RestrictedKey {
  return restricted.has(key);
}

/** The parts of `WorkspaceConfiguration.inspect()` this model reads. */
export interface InspectedSetting {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}
export type SettingInspector = (key: SettingKey) => InspectedSetting | undefined;

export type ConsentDecision = 'allow' | 'deny';
/** The user's answers for this folder, by consentKey(). */
export type ConsentRecord = Readonly<Record<string, ConsentDecision>>;

/** One answer per key *and value*: allowing `0.0.0.0` says nothing about a later `192.168.1.5`. */
export function consentKey(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

/** Why a folder value is not in effect. */
export type IgnoreReason = 'untrusted' | 'needs-consent' | 'declined';

export interface IgnoredSetting {
  key: string;
  value: unknown;
  reason: IgnoreReason;
}

/** A trusted folder's value that widens exposure and waits for the user's answer. */
export interface ExposureRequest {
  key: 'listen.host' | 'auth.mode';
  value: string;
  /** The value used instead until the user allows this one. */
  fallback: string;
}

export interface PolicyInput {
  inspect: SettingInspector;
  trusted: boolean;
  consent: ConsentRecord;
  /**
   * Restricted values found by reading the folder's settings files. In Restricted Mode VS Code drops them
   * before `inspect()` sees them, so this is the only way to tell the user they were ignored.
   */
  fileValues?: ReadonlyMap<string, unknown>;
}

export interface EffectiveSettings {
  settings: ExtensionSettings;
  /** Folder values not in effect, in RESTRICTED_KEYS order. */
  ignored: IgnoredSetting[];
  /** Widening values not in effect, answered 'deny' or not at all (listed in `ignored` too). */
  withheld: ExposureRequest[];
  /** Those of `withheld` with no answer yet: to ask about. */
  pending: ExposureRequest[];
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** 127.0.0.0/8, ::1 (in any spelling, also as ::ffff:127.x) and `localhost`: reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  const family = isIP(h);
  return family !== 0 && loopback.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

const folderValue = (i: InspectedSetting | undefined): unknown => (i?.workspaceFolderValue !== undefined ? i.workspaceFolderValue : i?.workspaceValue);
const userValue = (i: InspectedSetting | undefined): unknown => (i?.globalValue !== undefined ? i.globalValue : i?.defaultValue);

export function effectiveSettings(input: PolicyInput): EffectiveSettings {
  const { inspect, trusted, consent } = input;
  const ignored = new Map<string, IgnoredSetting>();
  const overridden = new Map<SettingKey, unknown>(); // key → the user value used instead of the folder's
  const raw = (key: SettingKey): unknown => {
    if (overridden.has(key)) return overridden.get(key);
    const i = inspect(key);
    const f = folderValue(i);
    return f !== undefined ? f : userValue(i);
  };
  const userRaw = (key: SettingKey): unknown => userValue(inspect(key));

  if (!trusted) {
    for (const key of RESTRICTED_KEYS) {
      const f = folderValue(inspect(key));
      const fromFile = input.fileValues?.get(key);
      if (f === undefined && fromFile === undefined) continue;
      ignored.set(key, { key, value: f !== undefined ? f : fromFile, reason: 'untrusted' });
      overridden.set(key, userRaw(key));
    }
    return { settings: readSettings(raw), ignored: ordered(ignored), withheld: [], pending: [] };
  }

  const withheld: ExposureRequest[] = [];
  const chosen = readSettings(raw);
  const safe = readSettings((key) => (isRestrictedKey(key) ? userRaw(key) : raw(key)));
  const requests: ExposureRequest[] = [];
  if (folderValue(inspect('listen.host')) !== undefined && !isLoopbackHost(chosen.host) && chosen.host !== safe.host) {
    requests.push({ key: 'listen.host', value: chosen.host, fallback: safe.host });
  }
  if (folderValue(inspect('auth.mode')) !== undefined && chosen.auth === 'none' && safe.auth !== 'none') {
    requests.push({ key: 'auth.mode', value: chosen.auth, fallback: safe.auth });
  }
  for (const r of requests) {
    const answer = consent[consentKey(r.key, r.value)];
    if (answer === 'allow') continue;
    overridden.set(r.key, r.fallback);
    ignored.set(r.key, { key: r.key, value: r.value, reason: answer === 'deny' ? 'declined' : 'needs-consent' });
    withheld.push(r);
  }
  return { settings: readSettings(raw), ignored: ordered(ignored), withheld, pending: withheld.filter((r) => consent[consentKey(r.key, r.value)] === undefined) };
}

function ordered(m: Map<string, IgnoredSetting>): IgnoredSetting[] {
  return RESTRICTED_KEYS.filter((k) => m.has(k)).map((k) => m.get(k)!);
}

/** A short, password-free rendering of a folder's value for the UI and the log. */
export function describeValue(key: string, value: unknown): string {
  if (key === 'upstreams' && Array.isArray(value)) {
    return value
      .map((u: unknown) => {
        const { name, url } = (typeof u === 'object' && u !== null ? u : {}) as { name?: unknown; url?: unknown };
        const urls = (Array.isArray(url) ? url : [url]).filter((x): x is string => typeof x === 'string').map(redactUrl);
        return `${typeof name === 'string' ? name : '?'} (${urls.join(' → ')})`;
      })
      .join(', ');
  }
  if (key === 'rules' && Array.isArray(value)) return `${value.length} rule(s)`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** What a widening value does, in words, for the confirmation dialog. */
export function exposureText(r: ExposureRequest): string {
  return r.key === 'listen.host'
    ? `listen on ${r.value}, which other machines on your network can reach (your setting: ${r.fallback})`
    : `accept clients without a password (your setting: ${r.fallback})`;
}
