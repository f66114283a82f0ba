/**
 * The command contract between SOCKS Relay in a remote window (workspace extension host) and its
 * companion on the user's computer (UI extension host). Commands cross between the two hosts with JSON
 * arguments, so everything here is plain data. Pure.
 */

export const COMPANION_ID = 'socks-relay.socks-relay-egress';
export const COMMANDS = {
  /** Start (or replace) the agent for one remote relay: ConnectRequest → ConnectResult. */
  connect: 'socksRelayEgress.connect',
  /** Stop the agent of one remote relay: { id } → { ok: true }. */
  disconnect: 'socksRelayEgress.disconnect',
  /** The agents running, for the UI: → AgentSummary[]. */
  status: 'socksRelayEgress.status',
} as const;
export const CONTRACT_VERSION = 1;

export interface ConnectRequest {
  readonly version: number;
  /** The endpoint's id (random per run of the relay): one agent per id. */
  readonly id: string;
  /** The forwarded endpoint address as this computer sees it (asExternalUri's answer). */
  readonly url: string;
  readonly token: string;
  /** Names the remote window in the consent question (e.g. "ssh-remote+build-box"). */
  readonly window: string;
}

export type ConnectResult =
  | { readonly ok: true; readonly version: number; readonly agent: string }
  | { readonly ok: false; readonly version: number; readonly code: 'BAD_REQUEST' | 'DECLINED' | 'FAILED'; readonly message: string };

export interface AgentSummary {
  readonly id: string;
  readonly window: string;
  readonly url: string;
  readonly status: string;
  readonly carried: number;
  readonly open: number;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Checks a connect request; the reason when it must be refused. The address must be this computer's
 * loopback (where VS Code puts forwarded ports): a remote window cannot send the agent anywhere else.
 */
export function checkConnectRequest(arg: unknown): ConnectRequest | string {
  if (typeof arg !== 'object' || arg === null) return 'expected an object';
  const r = arg as Record<string, unknown>;
  if (r.version !== CONTRACT_VERSION) return `unsupported contract version ${String(r.version)} (this companion speaks ${CONTRACT_VERSION})`;
  for (const key of ['id', 'url', 'token', 'window'] as const) {
    if (typeof r[key] !== 'string' || r[key] === '' || (r[key] as string).length > 2048) return `"${key}" must be a non-empty string`;
  }
  let url: URL;
  try {
    url = new URL(r.url as string);
  } catch {
    return 'the address is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'the address must be http:// or https://';
  if (!LOOPBACK.has(url.hostname.toLowerCase())) return `the address must be on this computer's loopback (a forwarded port), not ${url.hostname}`;
  if (url.username !== '' || url.password !== '') return 'the address must not contain credentials';
  if (!/^[A-Za-z0-9_-]{16,512}$/.test(r.token as string)) return 'the secret is malformed';
  return { version: CONTRACT_VERSION, id: r.id as string, url: url.href, token: r.token as string, window: (r.window as string).slice(0, 200) };
}
