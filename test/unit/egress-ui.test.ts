/** The route "This computer" in the UI and the companion's contract: pure parts, no VS Code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSettings } from '../../src/ui/settings';
import { configTree, describeRoute } from '../../src/ui/config-model';
import { agentCommandLine, EGRESS_LABEL, egressAvailable, egressNode, routeUsesEgress } from '../../src/ui/egress-model';
import { checkConnectRequest, CONTRACT_VERSION } from '../../src/companion/contract';
import { AgentLike, CompanionAgents, Consent } from '../../src/companion/agents';
import { buildRouter } from '../../src/core/routing';
import { endpoint } from '../../src/core/address';
import { DirectDialer } from '../../src/core/direct';
import type { AgentState } from '../../src/core/egress/agent';
import type { ViewNode } from '../../src/ui/view-node';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz012345';

test('egress availability: remote and browser windows have the route, a local desktop window does not', () => {
  assert.equal(egressAvailable({ remoteName: 'ssh-remote', web: false }), true);
  assert.equal(egressAvailable({ remoteName: undefined, web: true }), true);
  assert.equal(egressAvailable({ remoteName: undefined, web: false }), false);
});

test('egress usage: default route, a rule, or an upstream URL', () => {
  assert.equal(routeUsesEgress(defaultSettings), false);
  assert.equal(routeUsesEgress({ ...defaultSettings, activeUpstream: 'egress' }), true);
  assert.equal(routeUsesEgress({ ...defaultSettings, rules: [{ match: '*.corp.example', action: 'egress' }] }), true);
  assert.equal(routeUsesEgress({ ...defaultSettings, upstreams: [{ name: 'home', url: 'egress://' }] }), true);
  assert.equal(routeUsesEgress({ ...defaultSettings, activeUpstream: 'corp', upstreams: [{ name: 'corp', url: 'socks5://p:1080' }] }), false);
});

test('egress row: state text, icon, click target, active marker', () => {
  const waiting = egressNode({ status: 'waiting', companion: 'absent' }, true);
  assert.equal(waiting.label, EGRESS_LABEL);
  assert.equal(waiting.upstream, 'egress');
  assert.equal(waiting.description, 'waiting for the agent · active');
  assert.equal(waiting.command, 'socksRelay.egress.copyAgentCommand', 'a click copies the agent command when nothing answered');
  assert.equal(waiting.contextValue, 'upstream.egress.active');
  assert.match(waiting.tooltip ?? '', /copy the command/);
  const connected = egressNode({ status: 'connected', rttMs: 3.14159, streams: 2, agent: 'laptop' }, false);
  assert.equal(connected.description, 'connected · 3.1 ms');
  assert.equal(connected.command, undefined);
  assert.equal(connected.iconColor, 'charts.green');
  assert.equal(connected.contextValue, 'upstream.egress');
  const gone = egressNode({ status: 'disconnected', reason: 'the tunnel closed' }, true);
  assert.equal(gone.description, 'disconnected · active');
  assert.match(gone.tooltip ?? '', /the tunnel closed/);
  assert.equal(gone.iconColor, 'list.warningForeground');
  assert.equal(egressNode({ status: 'waiting', companion: 'asking' }, false).description, 'connecting…');
});

test('config tree: the route sits after Direct where the window has it; the default route reads "this computer"', () => {
  const s = { ...defaultSettings, activeUpstream: 'egress', rules: [{ match: '*.corp.example', action: 'egress' }], upstreams: [{ name: 'corp', url: 'socks5://p:1080' }] };
  const flat = (nodes: ViewNode[]): ViewNode[] => nodes.flatMap((n) => [n, ...flat(n.children ?? [])]);
  const remote = flat(configTree({ settings: s, state: 'running', egress: { status: 'waiting', companion: 'absent' }, credentialsForced: true }));
  const ups = remote.find((n) => n.id === 'upstreams');
  assert.deepEqual(ups?.children?.map((c) => c.label), ['Direct', EGRESS_LABEL, 'corp']);
  assert.equal(ups?.description, 'default route: this computer', 'not reported as an undefined upstream');
  assert.equal(remote.find((n) => n.id === 'listener.auth')?.description, 'per-run password · required by "This computer"');
  assert.equal(remote.find((n) => n.kind === 'rule')?.description, '→ this computer');
  const local = flat(configTree({ settings: { ...s, activeUpstream: '' }, state: 'running' }));
  assert.deepEqual(local.find((n) => n.id === 'upstreams')?.children?.map((c) => c.label), ['Direct', 'corp']);
  assert.equal(local.find((n) => n.id === 'listener.auth')?.description, 'none');
  assert.equal(describeRoute({ ...defaultSettings, activeUpstream: 'egress' }), 'this computer');
});

test('agent command line: the secret from the environment variable, the forwarded address', () => {
  assert.equal(agentCommandLine('http://127.0.0.1:8080/proxy/4123/', TOKEN), `SOCKS_RELAY_EGRESS_TOKEN=${TOKEN} socks-relay egress-agent --connect http://127.0.0.1:8080/proxy/4123/`);
});

test('router: "egress" is reserved; without a tunnel it is refused, in a local window it is the direct route', () => {
  assert.throws(() => buildRouter({ default: 'egress' }), /needs the egress tunnel/);
  assert.throws(() => buildRouter({ upstreams: [{ name: 'egress', url: 'socks5://p:1' }] }), /reserved/);
  assert.throws(() => buildRouter({ upstreams: [{ name: 'x', chain: ['egress://', 'socks5://p:1'] }] }, { egress: 'direct' }), /cannot be part of a chain/);
  const local = buildRouter({ rules: [{ match: '*.corp.example', action: 'egress' }], default: 'egress://' }, { egress: 'direct' });
  const d = local.decide(endpoint('a.corp.example', 443));
  assert.equal(d.action, 'dial');
  if (d.action === 'dial') {
    assert.ok(d.dialer instanceof DirectDialer);
    assert.equal(d.route, 'rule 1 (*.corp.example) → egress');
  }
  assert.equal(local.usesEgress, false, 'no tunnel in use: the listener needs no forced credentials');
  assert.ok(local.dialer('egress') instanceof DirectDialer);
});

test('companion contract: only well-formed requests for this computer\'s loopback', () => {
  const ok = { version: CONTRACT_VERSION, id: 'abc', url: 'http://localhost:4123/', token: TOKEN, window: 'ssh-remote+box' };
  assert.deepEqual(checkConnectRequest(ok), ok);
  assert.equal(typeof checkConnectRequest({ ...ok, url: 'http://[::1]:4123/' }), 'object');
  assert.match(String(checkConnectRequest({ ...ok, url: 'http://10.0.0.5:4123/' })), /loopback/);
  assert.match(String(checkConnectRequest({ ...ok, url: 'http://evil.example/' })), /loopback/);
  assert.match(String(checkConnectRequest({ ...ok, url: 'file:///etc/passwd' })), /http/);
  assert.match(String(checkConnectRequest({ ...ok, url: 'http://u:p@localhost:1/' })), /credentials/);
  assert.match(String(checkConnectRequest({ ...ok, version: 99 })), /version/);
  assert.match(String(checkConnectRequest({ ...ok, token: 'short' })), /secret/);
  assert.match(String(checkConnectRequest({ ...ok, id: 5 })), /"id"/);
  assert.match(String(checkConnectRequest(null)), /object/);
});

class FakeAgent implements AgentLike {
  started = 0;
  stopped = 0;
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}
  get state(): AgentState {
    return { status: this.stopped ? 'stopped' : 'connecting', since: 0, carried: 0, open: 0 };
  }
  start(): void {
    this.started++;
  }
  stop(): void {
    this.stopped++;
  }
}

function companion(answer: Consent) {
  const remembered = new Set<string>();
  const agents: FakeAgent[] = [];
  const asked: string[] = [];
  const logs: string[] = [];
  const c = new CompanionAgents({
    ask: (w) => {
      asked.push(w);
      return Promise.resolve(answer);
    },
    isRemembered: (w) => remembered.has(w),
    remember: (w) => {
      remembered.add(w);
      return Promise.resolve();
    },
    createAgent: (url, token) => {
      const a = new FakeAgent(url, token);
      agents.push(a);
      return a;
    },
    log: (m) => logs.push(m),
  });
  return { c, remembered, agents, asked, logs };
}

const request = (id = 'relay-1', window = 'ssh-remote+box') => ({ version: CONTRACT_VERSION, id, url: 'http://127.0.0.1:4123/', token: TOKEN, window });

test('companion: asks before a remote window may use this network; declined starts nothing', async () => {
  const { c, agents, asked } = companion(undefined);
  const r = await c.connect(request());
  assert.equal(r.ok, false);
  assert.equal(r.ok === false && r.code, 'DECLINED');
  assert.deepEqual(asked, ['ssh-remote+box']);
  assert.equal(agents.length, 0);
});

test('companion: "always" is remembered per remote; one agent per relay id, replaced on reconnect; status and disconnect', async () => {
  const { c, agents, asked, remembered, logs } = companion('always');
  assert.equal((await c.connect(request())).ok, true);
  assert.ok(remembered.has('ssh-remote+box'));
  assert.equal((await c.connect(request())).ok, true, 'the same relay asks again (its window reloaded)');
  assert.deepEqual(asked, ['ssh-remote+box'], 'asked once');
  assert.equal(agents.length, 2);
  assert.equal(agents[0].stopped, 1, 'the first agent was replaced');
  assert.equal(agents[1].started, 1);
  assert.equal(agents[1].token, TOKEN);
  await c.connect(request('relay-2', 'dev-container+x'));
  assert.deepEqual(asked, ['ssh-remote+box', 'dev-container+x']);
  assert.deepEqual(c.status().map((s) => s.id), ['relay-1', 'relay-2']);
  assert.deepEqual(c.disconnect({ id: 'relay-1' }), { ok: true });
  assert.deepEqual(c.disconnect({ id: 'relay-1' }), { ok: false });
  assert.deepEqual(c.status().map((s) => s.id), ['relay-2']);
  c.dispose();
  assert.equal(agents[2].stopped, 1);
  assert.ok(logs.every((l) => !l.includes(TOKEN)), 'the secret is never logged');
});

test('companion: a bad request is refused without asking', async () => {
  const { c, asked, agents } = companion('once');
  const r = await c.connect({ ...request(), url: 'http://192.168.1.1:80/' });
  assert.equal(r.ok === false && r.code, 'BAD_REQUEST');
  assert.deepEqual(asked, []);
  assert.equal(agents.length, 0);
});

import { editorProxyPlan, editorProxyText } from '../../src/ui/editor-proxy';

test('editor traffic: applied only while running without credentials, and never where http.proxy would be used on the user\'s computer', () => {
  const listener = { host: '127.0.0.1', port: 1080 };
  const base = { enabled: true, listener, remoteName: undefined, web: false, useLocalProxyConfiguration: true };
  assert.deepEqual(editorProxyPlan(base), { apply: true, url: 'http://127.0.0.1:1080' });
  assert.deepEqual(editorProxyPlan({ ...base, enabled: false }), { apply: false, why: undefined });
  assert.match(editorProxyPlan({ ...base, listener: undefined }).apply ? '' : String((editorProxyPlan({ ...base, listener: undefined }) as { why: string }).why), /not running/);
  const creds = editorProxyPlan({ ...base, listener: { ...listener, credentials: { username: 'relay', password: 'pw' } } });
  assert.equal(creds.apply, false);
  assert.match(creds.apply ? '' : String(creds.why), /credentials/);
  const remote = editorProxyPlan({ ...base, remoteName: 'ssh-remote' });
  assert.equal(remote.apply, false, 'microsoft/vscode#134964: the remote address would be used locally');
  assert.match(remote.apply ? '' : String(remote.why), /useLocalProxyConfiguration/);
  assert.equal(editorProxyPlan({ ...base, remoteName: 'ssh-remote', useLocalProxyConfiguration: false }).apply, true);
  assert.equal(editorProxyPlan({ ...base, remoteName: 'code-server', web: true }).apply, true, 'a browser window: settings and relay on the same host');
  assert.match(editorProxyText({ apply: true, url: 'http://127.0.0.1:1080' }, true).description, /routed \(http\.proxy → http:\/\/127\.0\.0\.1:1080\)/);
  assert.match(editorProxyText({ apply: false, why: undefined }, false).description, /off/);
});
