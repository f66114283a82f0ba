/** Typed outcomes and routes: what a session records as data, and the UI decisions made from it (never from text). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint } from '../../src/core/address';
import { buildRouter } from '../../src/core/routing';
import { SessionRegistry } from '../../src/core/registry';
import type { SessionInfo } from '../../src/core/registry';
import { credentialFixTarget, isUpstreamAuthFailure } from '../../src/ui/status';

type FixInput = Pick<SessionInfo, 'outcomeCode' | 'routeInfo' | 'failedMember'>;

const authFailure = (upstream: string | undefined, failedMember?: string): FixInput => ({
  outcomeCode: 'UPSTREAM_AUTH_FAILED',
  routeInfo: { action: upstream ?? 'direct', ...(upstream !== undefined ? { upstream } : {}), hops: [], text: `default → ${upstream ?? 'direct'}` },
  failedMember,
});

test('credential fix: an upstream named "co" is not "corp" (whole names, not substrings)', () => {
  const names = ['co', 'corp'];
  assert.equal(credentialFixTarget(authFailure('corp'), names), 'corp');
  assert.equal(credentialFixTarget(authFailure('co'), names), 'co');
  // The route text `rule 1 (*.corp.example) → corp` contains "co"; the name is what counts.
  assert.equal(credentialFixTarget({ ...authFailure('corp'), routeInfo: { ...authFailure('corp').routeInfo!, text: 'rule 1 (*.co.example) → corp' } }, ['co']), undefined);
  // Not an auth failure: nothing to fix, whatever the text says.
  assert.equal(credentialFixTarget({ ...authFailure('corp'), outcomeCode: 'ECONNREFUSED' }, names), undefined);
  assert.equal(credentialFixTarget(authFailure(undefined), names), undefined);
});

test('credential fix: through a failover group, the member that failed (by name), else the group', () => {
  assert.equal(credentialFixTarget(authFailure('ha', 'corp'), ['co', 'corp', 'ha']), 'corp');
  // A URL member is named by its redacted URL: its credentials live in the group's config.
  assert.equal(credentialFixTarget(authFailure('ha', 'socks5://me@proxy:1080'), ['co', 'corp', 'ha']), 'ha');
  assert.equal(isUpstreamAuthFailure({ outcomeCode: 'UPSTREAM_AUTH_FAILED' }), true);
  assert.equal(isUpstreamAuthFailure({ outcomeCode: undefined }), false);
});

test('route info: rule, default, block and chain upstreams as data; the text is what it always was', () => {
  const router = buildRouter({
    upstreams: [
      { name: 'corp', chain: ['socks5://me:secret@jump.example:1080', 'http://proxy.corp:3128'] },
      { name: 'ha', failover: ['corp', 'direct'] },
    ],
    rules: [
      { match: '*.corp.example', action: 'corp' },
      { match: 'port:25', action: 'block' },
    ],
    default: 'ha',
  });
  const corp = router.decide(endpoint('a.corp.example', 443), { command: 'connect' });
  assert.equal(corp.route, 'rule 1 (*.corp.example) → corp');
  assert.deepEqual(corp.info, {
    rule: { index: 1, match: '*.corp.example' },
    action: 'corp',
    upstream: 'corp',
    hops: ['socks5://me@jump.example:1080', 'http://proxy.corp:3128'],
    text: 'rule 1 (*.corp.example) → corp',
  });
  const blocked = router.decide(endpoint('mail.example', 25), { command: 'connect' });
  assert.deepEqual([blocked.action, blocked.route, blocked.info?.rule?.index, blocked.info?.upstream], ['block', 'rule 2 (port:25) → block', 2, undefined]);
  const fallback = router.decide(endpoint('example.com', 80), { command: 'connect' });
  assert.deepEqual([fallback.route, fallback.info?.rule, fallback.info?.upstream, fallback.info?.hops], ['default → ha', undefined, 'ha', []]);
});

test('session: the failover member joins the route text and data; outcomes keep kind, code and place', () => {
  const reg = new SessionRegistry();
  const router = buildRouter({ upstreams: [{ name: 'ha', failover: ['direct'] }], default: 'ha' });
  const decision = router.decide(endpoint('example.com', 80), { command: 'connect' });
  const a = reg.open('socks5', '127.0.0.1:1');
  a.update({ route: decision.route, routeInfo: decision.info });
  a.via('direct');
  a.complete();
  const ai = reg.recentlyClosed()[0];
  assert.deepEqual([ai.route, ai.routeInfo?.via, ai.routeInfo?.upstream, ai.outcome, ai.outcomeKind, ai.outcomeCode], ['default → ha via direct', 'direct', 'ha', 'ok', 'ok', 'OK']);

  const b = reg.open('socks5', '127.0.0.1:2');
  b.failed({ kind: 'failed', code: 'UPSTREAM_AUTH_FAILED', hop: { index: 1, label: 'socks5://me@b:1080' }, member: 'corp' });
  b.close('general SOCKS server failure: upstream socks5://me@b:1080 rejected the username/password', 1);
  const bi = reg.recentlyClosed()[1];
  assert.deepEqual([bi.outcomeKind, bi.outcomeCode, bi.reply, bi.failedHop, bi.failedMember], ['failed', 'UPSTREAM_AUTH_FAILED', 1, { index: 1, label: 'socks5://me@b:1080' }, 'corp']);

  // No typed failure noted: it just closed (the text is the handler's own words), and 'ok' is a clean end.
  const c = reg.open('socks5', '127.0.0.1:3');
  c.close('client closed during handshake');
  const d = reg.open('http', '127.0.0.1:4');
  d.close('ok');
  const [ci, di] = reg.recentlyClosed().slice(2);
  assert.deepEqual([ci.outcomeKind, ci.outcomeCode, ci.outcome], ['closed', 'CLOSED', 'client closed during handshake']);
  assert.deepEqual([di.outcomeKind, di.outcomeCode], ['ok', 'OK']);
});
