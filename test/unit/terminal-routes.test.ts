/** Terminals with routes of their own: the engine's per-user routes (rules first) and the UI's pure parts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../src/core/address';
import { buildRouter } from '../../src/core/routing';
import { UserRouteRouter } from '../../src/core/user-routes';
import { newTerminalCredentials, routeChoices, terminalName } from '../../src/ui/terminal-routes';
import { OTHER_CLIENTS, sessionTree } from '../../src/ui/sessions-model';
import { defaultSettings } from '../../src/ui/settings';
import type { SessionInfo } from '../../src/core/registry';

const base = () =>
  buildRouter(
    { upstreams: [{ name: 'corp', url: 'socks5://127.0.0.1:1' }], rules: [{ match: '*.blocked.example', action: 'block' }], default: 'direct' },
    { egress: 'direct' },
  );

test('a terminal\'s own route replaces the default route; rules still decide first; other clients route as before', () => {
  const r = new UserRouteRouter(base(), new Map([
    ['term-a', { label: 'terminal "A"', action: 'corp' }],
    ['term-b', { label: 'terminal "B"', action: 'block' }],
    ['term-c', { label: 'terminal "C"', action: '' }],
  ]));
  const a = r.decide(endpoint('example.com', 443), { command: 'connect', user: 'term-a' });
  assert.equal(a.route, 'terminal "A" → corp');
  assert.equal(a.info?.upstream, 'corp');
  assert.equal(r.decide(endpoint('x.blocked.example', 443), { command: 'connect', user: 'term-a' }).route, 'rule 1 (*.blocked.example) → block', 'a matching rule wins');
  assert.equal(r.decide(endpoint('example.com', 443), { command: 'connect', user: 'term-b' }).action, 'block');
  assert.equal(r.decide(endpoint('example.com', 443), { command: 'connect', user: 'term-c' }).route, 'default → direct', 'the default route');
  assert.equal(r.decide(endpoint('example.com', 443), { command: 'connect', user: 'someone' }).route, 'default → direct');
  assert.equal(r.decide(endpoint('example.com', 443), { command: 'connect' }).route, 'default → direct', 'anonymous clients as before');
  assert.throws(() => new UserRouteRouter(base(), new Map([['t', { label: 'terminal "X"', action: 'nope' }]])), /not "direct", "block" or a defined upstream/);
});

test('terminal credentials are fresh each time; names stay unique; the choices list every route', () => {
  const a = newTerminalCredentials();
  const b = newTerminalCredentials();
  assert.match(a.username, /^term-[0-9a-f]{12}$/);
  assert.notEqual(a.username, b.username);
  assert.notEqual(a.password, b.password);
  assert.equal(terminalName('corp', []), 'SOCKS Relay · corp');
  assert.equal(terminalName('corp', ['SOCKS Relay · corp']), 'SOCKS Relay · corp (2)');
  assert.equal(terminalName('egress', []), 'SOCKS Relay · this computer');
  assert.equal(terminalName('', []), 'SOCKS Relay · default route');
  const choices = routeChoices({ ...defaultSettings, upstreams: [{ name: 'corp', url: 'socks5://p:1' }] }, true).map((c) => c.action);
  assert.deepEqual(choices, ['', 'direct', 'block', 'egress', 'corp']);
  assert.deepEqual(routeChoices(defaultSettings, false).map((c) => c.action), ['', 'direct', 'block']);
});

const session = (id: number, user: string | undefined, route: string): SessionInfo => ({
  id, protocol: 'socks5', command: 'connect', client: '127.0.0.1:5000', user, authMethod: undefined, destination: `host${id}:80`, route, routeInfo: undefined, state: 'open',
  startedAt: 1000 + id, closedAt: undefined, bytesUp: 1, bytesDown: 2, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0,
  outcome: undefined, reply: undefined, outcomeKind: undefined, outcomeCode: undefined, failedHop: undefined, failedMember: undefined,
});

test('sessions model: rows name their terminal; grouping by terminal, everything else in one group last', () => {
  const terminals = new Map([['term-a', 'SOCKS Relay · corp'], ['term-b', 'SOCKS Relay · direct']]);
  const live = [session(1, 'term-a', 'terminal "SOCKS Relay · corp" → corp'), session(2, undefined, 'default → direct'), session(3, 'term-b', 'terminal "SOCKS Relay · direct" → direct'), session(4, 'relay', 'default → direct')];
  const flat = sessionTree(live, [], { filter: '', grouping: 'none', now: 2000, terminals });
  const row1 = flat.find((n) => n.id === 'session-1');
  assert.match(row1?.description ?? '', /⌨ SOCKS Relay · corp · terminal "SOCKS Relay · corp" → corp$/);
  assert.match(row1?.tooltip ?? '', /terminal "SOCKS Relay · corp"/);
  assert.doesNotMatch(flat.find((n) => n.id === 'session-2')?.description ?? '', /⌨/);
  const grouped = sessionTree(live, [], { filter: '', grouping: 'terminal', now: 2000, terminals });
  assert.deepEqual(grouped.map((g) => [g.label, g.children?.map((c) => c.id)]), [
    ['SOCKS Relay · corp', ['session-1']],
    ['SOCKS Relay · direct', ['session-3']],
    [OTHER_CLIENTS, ['session-4', 'session-2']],
  ]);
  assert.deepEqual(sessionTree(live, [], { filter: 'corp', grouping: 'none', now: 2000, terminals }).map((n) => n.id), ['session-1'], 'the filter sees terminal names');
});
