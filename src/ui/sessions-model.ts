/** The Sessions view as plain data: live and recently closed sessions, filtered and optionally grouped by host. Pure. */
import { formatBytes, formatDuration } from '../core/format';
import type { SessionInfo } from '../core/registry';
import { replyName } from '../core/errors';
import type { SessionGrouping } from './settings';
import type { InfoNode, SessionNode, ViewNode } from './view-node';

const commandLabel: Record<string, string> = { connect: 'CONNECT', bind: 'BIND', 'udp-associate': 'UDP', http: 'HTTP' };

/** The host part of `host:port` or `[v6]:port`. */
export function hostOf(destination: string | undefined): string {
  if (!destination) return '(handshake)';
  if (destination.startsWith('[')) return destination.slice(1, destination.indexOf(']'));
  const i = destination.lastIndexOf(':');
  return i > 0 ? destination.slice(0, i) : destination;
}

function traffic(s: SessionInfo): string {
  const base = `↑${formatBytes(s.bytesUp)} ↓${formatBytes(s.bytesDown)}`;
  if (s.command !== 'udp-associate') return base;
  // Datagrams the relay could not send (port 0, a bad or unresolvable name, …) are dropped: say how many.
  const dropped = s.droppedDatagrams > 0 ? `, ${s.droppedDatagrams} dropped` : '';
  return `${base} (${s.datagramsUp}/${s.datagramsDown} datagrams${dropped})`;
}

function outcomeText(s: SessionInfo): string {
  if (s.outcomeKind === 'ok') return 'completed';
  return s.outcome ?? (s.reply !== undefined ? replyName(s.reply) : 'closed');
}

/** Routed terminals by their user name ("New Terminal Through…"): whose sessions a row names. */
export type TerminalNames = ReadonlyMap<string, string>;

const NO_TERMINALS: TerminalNames = new Map();

export function sessionNode(s: SessionInfo, now: number, terminals: TerminalNames = NO_TERMINALS): SessionNode {
  const terminal = s.user !== undefined ? terminals.get(s.user) : undefined;
  const live = s.state !== 'closed';
  const cmd = s.command === 'http' ? '' : s.command ? (commandLabel[s.command] ?? s.command) : '';
  const proto = `${s.protocol.toUpperCase()} ${cmd}`.trim();
  const age = formatDuration((live ? now : (s.closedAt ?? now)) - s.startedAt);
  const failed = !live && s.outcomeKind !== 'ok';
  // Counters and age first: they change while you watch, and stay visible in a narrow sidebar.
  // A Kerberos principal is who the client is (it proved it with a ticket): shown on the row, unlike per-run passwords.
  const who = terminal !== undefined ? `⌨ ${terminal}` : s.authMethod === 'gssapi' && s.user !== undefined ? `Kerberos ${s.user}` : undefined;
  const description = [traffic(s), live ? age : failed ? outcomeText(s) : `closed after ${age}`, proto, who, s.route]
    .filter(Boolean)
    .join(' · ');
  const tooltip = [
    `${s.destination ?? '(no request yet)'}`,
    `Client: ${s.client}${terminal !== undefined ? ` (terminal "${terminal}")` : s.user ? ` (${s.authMethod === 'gssapi' ? 'Kerberos principal' : 'user'} ${s.user})` : ''}`,
    `Protocol: ${proto}`,
    `Route: ${s.route ?? '-'}`,
    `State: ${s.state}${live ? '' : ` — ${outcomeText(s)}`}`,
    `Traffic: ${traffic(s)}`,
    `Started: ${new Date(s.startedAt).toLocaleTimeString()} (${age}${live ? ' ago' : ''})`,
  ].join('\n');
  return {
    kind: 'session',
    id: `session-${s.id}`,
    label: s.destination ?? `#${s.id} ${s.client}`,
    description,
    tooltip,
    icon: live ? (s.state === 'open' ? 'arrow-swap' : 'loading~spin') : failed ? 'error' : 'pass',
    iconColor: live ? 'charts.green' : failed ? 'errorForeground' : undefined,
    contextValue: live ? 'session.live' : 'session.closed',
    sessionId: s.id,
    destination: s.destination,
  };
}

function matches(s: SessionInfo, filter: string, terminal?: string): boolean {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return [s.destination, s.client, s.route, s.protocol, s.command, s.user, terminal].some((v) => v?.toLowerCase().includes(f));
}

/** The group of a session when grouping by terminal: the routed terminal's name, or everything else together. */
export const OTHER_CLIENTS = 'Other clients';

export function sessionTree(
  live: readonly SessionInfo[],
  closed: readonly SessionInfo[],
  options: { filter: string; grouping: SessionGrouping; now: number; terminals?: TerminalNames },
): ViewNode[] {
  const terminals = options.terminals ?? NO_TERMINALS;
  const termOf = (s: SessionInfo): string | undefined => (s.user !== undefined ? terminals.get(s.user) : undefined);
  const l = live.filter((s) => matches(s, options.filter, termOf(s))).sort((a, b) => b.startedAt - a.startedAt);
  const c = closed.filter((s) => matches(s, options.filter, termOf(s))).sort((a, b) => (b.closedAt ?? 0) - (a.closedAt ?? 0));
  if (options.grouping === 'host' || options.grouping === 'terminal') {
    const byTerminal = options.grouping === 'terminal';
    const groups = new Map<string, { live: SessionInfo[]; closed: SessionInfo[] }>();
    for (const [list, key] of [
      [l, 'live'],
      [c, 'closed'],
    ] as const) {
      for (const s of list) {
        const h = byTerminal ? (termOf(s) ?? OTHER_CLIENTS) : hostOf(s.destination);
        let g = groups.get(h);
        if (!g) groups.set(h, (g = { live: [], closed: [] }));
        g[key].push(s);
      }
    }
    return [...groups.entries()]
      .sort((a, b) => (byTerminal ? Number(a[0] === OTHER_CLIENTS) - Number(b[0] === OTHER_CLIENTS) : 0) || b[1].live.length - a[1].live.length || a[0].localeCompare(b[0]))
      .map(([host, g]): InfoNode => ({
        kind: 'info',
        id: `${byTerminal ? 'terminal' : 'host'}-${host}`,
        label: host,
        description: `${g.live.length} active${g.closed.length ? `, ${g.closed.length} closed` : ''}`,
        ...(byTerminal && host === OTHER_CLIENTS ? { tooltip: 'Sessions from everything else: terminals opened the usual way, and programs outside VS Code' } : {}),
        icon: byTerminal ? (host === OTHER_CLIENTS ? 'globe' : 'terminal') : 'globe',
        contextValue: 'sessionGroup',
        expanded: byTerminal || g.live.length > 0,
        children: [...g.live, ...g.closed].map((s) => sessionNode(s, options.now, terminals)),
      }));
  }
  const nodes: ViewNode[] = l.map((s) => sessionNode(s, options.now, terminals));
  if (c.length > 0) {
    nodes.push({
      kind: 'info',
      id: 'closed',
      label: 'Recently closed',
      description: String(c.length),
      icon: 'history',
      contextValue: 'closedGroup',
      expanded: l.length === 0,
      children: c.map((s) => sessionNode(s, options.now, terminals)),
    });
  }
  return nodes;
}
