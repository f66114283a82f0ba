/**
 * The control channel between the windows of one user that share a relay: the window that owns the
 * listener (the owner) and the windows attached to it (members). One JSON message per line over a Unix
 * socket (a named pipe on Windows) that only this user can open; the first message proves the secret from
 * the user's 0600 token file. Pure: message types, framing, checks.
 */
import type { SessionInfo, Totals } from '../registry';

export const CONTROL_VERSION = 1;
/** A state or session batch is far below this; a longer line is not ours. */
export const MAX_LINE = 4 * 1024 * 1024;

/** What the members show and use: where the shared relay listens and with which credentials. */
export interface RelayState {
  readonly running: boolean;
  /** 'starting' | 'running' | 'stopped' | 'error', as the status bar tells it. */
  readonly state: 'stopped' | 'starting' | 'running' | 'error';
  readonly error?: string;
  readonly host?: string;
  readonly port?: number;
  /** The per-run credentials terminals get (the channel is this user's only). */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** The default route as the UI names it. */
  readonly route: string;
  /** The owning window, for "shared with …" in the UI. */
  readonly owner: string;
  readonly ownerPid: number;
  /** Terminals with routes of their own (and their credentials), so that a window taking over keeps them. */
  readonly terminals?: readonly SharedTerminal[];
}

export interface SharedTerminal {
  readonly username: string;
  readonly password: string;
  readonly name: string;
  readonly action: string;
}

export type ControlCommand =
  | { readonly name: 'start' }
  | { readonly name: 'stop' }
  | { readonly name: 'restart' }
  | { readonly name: 'terminate'; readonly session: number }
  | { readonly name: 'clearClosed' }
  | { readonly name: 'addTerminal'; readonly terminal: SharedTerminal }
  | { readonly name: 'removeTerminal'; readonly username: string }
  /** An attached window's view of the user settings (section values), for an owner whose own view lags. */
  | { readonly name: 'userSettings'; readonly set: Readonly<Record<string, unknown>>; readonly unset: readonly string[] };

/** Member → owner. */
export type MemberMessage =
  | { readonly t: 'hello'; readonly version: number; readonly token: string; readonly window: string }
  | { readonly t: 'command'; readonly id: number; readonly command: ControlCommand };

/** Owner → member. */
export type OwnerMessage =
  | { readonly t: 'welcome'; readonly version: number; readonly relay: RelayState; readonly sessions: SessionBatch }
  | { readonly t: 'denied'; readonly reason: string }
  | { readonly t: 'state'; readonly relay: RelayState }
  | { readonly t: 'sessions'; readonly batch: SessionBatch }
  | { readonly t: 'result'; readonly id: number; readonly ok: boolean; readonly error?: { readonly code: string; readonly message: string } };

/** Sessions in one message: the live ones in full, the ones closed since the last batch, the totals. */
export interface SessionBatch {
  readonly live: readonly SessionInfo[];
  readonly closed: readonly SessionInfo[];
  readonly totals: Totals;
  /** True when the member should drop its closed list first (cleared, or the first batch). */
  readonly reset: boolean;
}

export function encodeMessage(m: MemberMessage | OwnerMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/** Splits a byte stream into lines; a line longer than MAX_LINE is an error (the peer is not ours). */
export class LineDecoder {
  private pending = '';

  /** The complete lines in `chunk`, parsed; throws on an oversized line or bad JSON. */
  push(chunk: string): unknown[] {
    const text = this.pending + chunk;
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    if (this.pending.length > MAX_LINE) throw new Error(`a control message longer than ${MAX_LINE} bytes`);
    const out: unknown[] = [];
    for (const line of lines) {
      if (line.length > MAX_LINE) throw new Error(`a control message longer than ${MAX_LINE} bytes`);
      if (line.trim() === '') continue;
      out.push(JSON.parse(line));
    }
    return out;
  }
}

const COMMANDS = new Set(['start', 'stop', 'restart', 'terminate', 'clearClosed', 'addTerminal', 'removeTerminal', 'userSettings']);

function sharedTerminal(v: unknown): SharedTerminal | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const t = v as Record<string, unknown>;
  const ok = (x: unknown, max: number): x is string => typeof x === 'string' && x.length <= max;
  return ok(t.username, 255) && t.username !== '' && ok(t.password, 255) && ok(t.name, 200) && ok(t.action, 200) ? { username: t.username, password: t.password, name: t.name, action: t.action } : undefined;
}

/** A member's message, checked; undefined when it is not one. */
export function memberMessage(v: unknown): MemberMessage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  if (m.t === 'hello') {
    return typeof m.version === 'number' && typeof m.token === 'string' && typeof m.window === 'string' ? { t: 'hello', version: m.version, token: m.token, window: m.window.slice(0, 200) } : undefined;
  }
  if (m.t === 'command' && typeof m.id === 'number' && typeof m.command === 'object' && m.command !== null) {
    const c = m.command as Record<string, unknown>;
    if (typeof c.name !== 'string' || !COMMANDS.has(c.name)) return undefined;
    if (c.name === 'terminate') return typeof c.session === 'number' ? { t: 'command', id: m.id, command: { name: 'terminate', session: c.session } } : undefined;
    if (c.name === 'addTerminal') {
      const terminal = sharedTerminal(c.terminal);
      return terminal ? { t: 'command', id: m.id, command: { name: 'addTerminal', terminal } } : undefined;
    }
    if (c.name === 'userSettings') {
      const set = c.set;
      const unset = c.unset;
      if (typeof set !== 'object' || set === null || Array.isArray(set) || !Array.isArray(unset) || !unset.every((k) => typeof k === 'string')) return undefined;
      return { t: 'command', id: m.id, command: { name: 'userSettings', set: set as Record<string, unknown>, unset: unset as string[] } };
    }
    if (c.name === 'removeTerminal') return typeof c.username === 'string' ? { t: 'command', id: m.id, command: { name: 'removeTerminal', username: c.username } } : undefined;
    return { t: 'command', id: m.id, command: { name: c.name } as ControlCommand };
  }
  return undefined;
}

/** An owner's message, checked for the fields a member relies on; undefined when it is not one. */
export function ownerMessage(v: unknown): OwnerMessage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  switch (m.t) {
    case 'welcome':
      return typeof m.relay === 'object' && m.relay !== null && isBatch(m.sessions) ? (m as unknown as OwnerMessage) : undefined;
    case 'state':
      return typeof m.relay === 'object' && m.relay !== null ? (m as unknown as OwnerMessage) : undefined;
    case 'sessions':
      return isBatch(m.batch) ? (m as unknown as OwnerMessage) : undefined;
    case 'result':
      return typeof m.id === 'number' && typeof m.ok === 'boolean' ? (m as unknown as OwnerMessage) : undefined;
    case 'denied':
      return typeof m.reason === 'string' ? (m as unknown as OwnerMessage) : undefined;
    default:
      return undefined;
  }
}

function isBatch(v: unknown): v is SessionBatch {
  if (typeof v !== 'object' || v === null) return false;
  const b = v as Record<string, unknown>;
  return Array.isArray(b.live) && Array.isArray(b.closed) && typeof b.totals === 'object' && b.totals !== null;
}
