/**
 * Terminals with a route of their own ("New Terminal Through…"): each gets credentials of its own, so the
 * relay knows which terminal a session came from and can route it. Pure: the record, the choices, labels.
 */
import { randomBytes } from 'node:crypto';
import { EGRESS_LABEL, EGRESS_ROUTE } from './egress-model';
import type { ExtensionSettings } from './settings';
import { upstreamUrlText } from './config-model';

export interface TerminalRoute {
  /** The terminal's own user name: `term-` and random (never reused). */
  readonly username: string;
  readonly password: string;
  /** The terminal's name as the user sees it. */
  readonly name: string;
  /** "" (the default route), "direct", "block", "egress" or an upstream name. */
  readonly action: string;
}

export const TERMINAL_USER_PREFIX = 'term-';

export function newTerminalCredentials(): { username: string; password: string } {
  return { username: `${TERMINAL_USER_PREFIX}${randomBytes(6).toString('hex')}`, password: randomBytes(18).toString('base64url') };
}

/** How the route reads in names and rows. */
export function routeLabel(action: string): string {
  if (action === '') return 'default route';
  if (action === EGRESS_ROUTE) return 'this computer';
  return action;
}

export interface RouteChoice {
  readonly label: string;
  readonly description: string;
  readonly action: string;
}

/** The routes a terminal can take: the default, direct, block, this computer (where the window has it), each upstream. */
export function routeChoices(s: Pick<ExtensionSettings, 'upstreams' | 'activeUpstream'>, egress: boolean): RouteChoice[] {
  const current = s.activeUpstream === '' ? 'direct' : routeLabel(s.activeUpstream);
  return [
    { label: '$(arrow-swap) Default route', description: `rules, then ${current}`, action: '' },
    { label: '$(arrow-right) Direct', description: 'rules, then straight from this machine', action: 'direct' },
    { label: '$(circle-slash) Block', description: 'rules, then refused (nothing leaves unless a rule says so)', action: 'block' },
    ...(egress ? [{ label: `$(vm-connect) ${EGRESS_LABEL}`, description: 'rules, then out from your computer', action: EGRESS_ROUTE }] : []),
    ...s.upstreams.map((u) => ({ label: `$(server) ${u.name}`, description: `rules, then ${upstreamUrlText(u)}`, action: u.name })),
  ];
}

/** A terminal name for a route, unique among `taken`: "SOCKS Relay · corp", "SOCKS Relay · corp (2)". */
export function terminalName(action: string, taken: Iterable<string>): string {
  const base = `SOCKS Relay · ${routeLabel(action)}`;
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base} (${i})`)) return `${base} (${i})`;
}
