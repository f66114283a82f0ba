/** What a folder's settings may change: Restricted Mode, per-folder consent for widening values, and the UI notice. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { configTree } from '../../src/ui/config-model';
import { parseJsonc, sectionValues } from '../../src/ui/jsonc';
import { defaultSettings } from '../../src/ui/settings';
import { statusView } from '../../src/ui/status';
import { RESTRICTED_KEYS } from '../../src/ui/setting-keys';
import { consentKey, describeValue, effectiveSettings, InspectedSetting, isLoopbackHost } from '../../src/ui/workspace-policy';

/** An inspect() over user and workspace values (defaults from the manifest come through readSettings). */
function inspector(user: Record<string, unknown>, workspace: Record<string, unknown>): (key: string) => InspectedSetting {
  return (key) => ({ globalValue: user[key], workspaceValue: workspace[key] });
}

/** The settings file of the issue: open to the network, no password, everything through the folder's upstream. */
const hostileFolder: Record<string, unknown> = {
  autoStart: true,
  'listen.host': '0.0.0.0',
  'listen.port': 18975,
  'auth.mode': 'none',
  upstreams: [{ name: 'evil', url: 'socks5h://collector:pw@198.51.100.7:1080' }],
  activeUpstream: 'evil',
  rules: [{ match: '*', action: 'evil' }],
  'terminal.noProxy': '*',
  'limits.maxSessions': 10,
};
const userSettings: Record<string, unknown> = { 'listen.port': 1081, 'auth.mode': 'generated', upstreams: [{ name: 'corp', url: 'socks5h://me@proxy:1080' }] };

test('untrusted folder: none of the restricted keys come from it; user values and defaults are used and each ignored key is reported', () => {
  const p = effectiveSettings({ inspect: inspector(userSettings, hostileFolder), trusted: false, consent: {} });
  assert.equal(p.settings.autoStart, false);
  assert.equal(p.settings.host, '127.0.0.1');
  assert.equal(p.settings.port, 1081);
  assert.equal(p.settings.auth, 'generated');
  assert.deepEqual(p.settings.upstreams, [{ name: 'corp', url: 'socks5h://me@proxy:1080' }]);
  assert.equal(p.settings.activeUpstream, '');
  assert.deepEqual(p.settings.rules, []);
  assert.equal(p.settings.noProxy, defaultSettings.noProxy);
  assert.equal(p.settings.maxSessions, 10, 'a limit is not a restricted key: the folder may lower it');
  assert.deepEqual(
    p.ignored.map((i) => [i.key, i.reason]),
    ['autoStart', 'listen.host', 'listen.port', 'auth.mode', 'upstreams', 'activeUpstream', 'rules', 'terminal.noProxy'].map((k) => [k, 'untrusted']),
  );
  assert.deepEqual(p.pending, [], 'nothing to ask: the folder is not trusted');
});

test('untrusted folder: values VS Code already hid are still reported from the settings file, and change nothing', () => {
  const fileValues = new Map<string, unknown>([['listen.host', '0.0.0.0'], ['activeUpstream', 'evil']]);
  const p = effectiveSettings({ inspect: inspector({}, {}), trusted: false, consent: {}, fileValues });
  assert.equal(p.settings.host, '127.0.0.1');
  assert.equal(p.settings.activeUpstream, '');
  assert.deepEqual(p.ignored, [
    { key: 'listen.host', value: '0.0.0.0', reason: 'untrusted' },
    { key: 'activeUpstream', value: 'evil', reason: 'untrusted' },
  ]);
});

test('trusted folder: routing per project applies; a non-loopback address waits for the user, once per value', () => {
  const routing = { 'listen.port': 18975, upstreams: [{ name: 'lab', url: 'socks5://127.0.0.1:9' }], activeUpstream: 'lab', rules: [{ match: 'port:22', action: 'direct' }] };
  const ok = effectiveSettings({ inspect: inspector(userSettings, routing), trusted: true, consent: {} });
  assert.deepEqual(ok.ignored, []);
  assert.equal(ok.settings.activeUpstream, 'lab');
  assert.equal(ok.settings.port, 18975);
  assert.deepEqual(ok.settings.rules, routing.rules);

  const wide = { ...routing, 'listen.host': '0.0.0.0' };
  const asked = effectiveSettings({ inspect: inspector(userSettings, wide), trusted: true, consent: {} });
  assert.equal(asked.settings.host, '127.0.0.1', 'until allowed, the user value is used');
  assert.equal(asked.settings.activeUpstream, 'lab', 'the rest of the folder settings still apply');
  assert.deepEqual(asked.pending, [{ key: 'listen.host', value: '0.0.0.0', fallback: '127.0.0.1' }]);
  assert.deepEqual(asked.ignored, [{ key: 'listen.host', value: '0.0.0.0', reason: 'needs-consent' }]);

  const allowed = effectiveSettings({ inspect: inspector(userSettings, wide), trusted: true, consent: { [consentKey('listen.host', '0.0.0.0')]: 'allow' } });
  assert.equal(allowed.settings.host, '0.0.0.0');
  assert.deepEqual(allowed.ignored, []);
  assert.deepEqual(allowed.pending, []);

  const declined = effectiveSettings({ inspect: inspector(userSettings, wide), trusted: true, consent: { [consentKey('listen.host', '0.0.0.0')]: 'deny' } });
  assert.equal(declined.settings.host, '127.0.0.1');
  assert.deepEqual(declined.ignored.map((i) => i.reason), ['declined']);
  assert.deepEqual(declined.pending, [], 'a declined value is not asked about again');
  assert.equal(declined.withheld.length, 1, 'but it can be reviewed');

  const other = effectiveSettings({
    inspect: inspector(userSettings, { 'listen.host': '192.168.1.5' }),
    trusted: true,
    consent: { [consentKey('listen.host', '0.0.0.0')]: 'allow' },
  });
  assert.equal(other.settings.host, '127.0.0.1', 'allowing 0.0.0.0 does not allow another address');
  assert.equal(other.pending.length, 1);
});

test('trusted folder: turning authentication off waits for the user; loopback addresses and the user\'s own choices do not ask', () => {
  const off = effectiveSettings({ inspect: inspector({ 'auth.mode': 'password' }, { 'auth.mode': 'none' }), trusted: true, consent: {} });
  assert.equal(off.settings.auth, 'password');
  assert.deepEqual(off.pending, [{ key: 'auth.mode', value: 'none', fallback: 'password' }]);
  // Both at once: one dialog can cover both.
  const both = effectiveSettings({ inspect: inspector({ 'auth.mode': 'generated' }, { 'auth.mode': 'none', 'listen.host': '::' }), trusted: true, consent: {} });
  assert.deepEqual(both.pending.map((r) => r.key), ['listen.host', 'auth.mode']);
  assert.equal(both.settings.host, '127.0.0.1');
  assert.equal(both.settings.auth, 'generated');

  for (const host of ['::1', 'localhost', '127.0.0.2', '[::1]']) {
    const p = effectiveSettings({ inspect: inspector({}, { 'listen.host': host, 'auth.mode': 'none' }), trusted: true, consent: {} });
    assert.deepEqual(p.pending, [], host);
    assert.equal(p.settings.host, host);
  }
  const same = effectiveSettings({ inspect: inspector({ 'listen.host': '0.0.0.0' }, { 'listen.host': '0.0.0.0' }), trusted: true, consent: {} });
  assert.deepEqual(same.pending, [], 'the folder repeats what the user already chose');
  const stricter = effectiveSettings({ inspect: inspector({}, { 'auth.mode': 'generated' }), trusted: true, consent: {} });
  assert.equal(stricter.settings.auth, 'generated', 'a folder may always ask for more authentication');
});

test('loopback addresses', () => {
  for (const h of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'LOCALHOST', ' 127.0.0.1 ']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.5', '10.0.0.1', 'fe80::1', '::ffff:10.0.0.1', 'example.com', 'localhost.evil.example', '']) assert.ok(!isLoopbackHost(h), h);
});

test('JSONC settings files: comments, trailing commas, strings that look like either; flat and nested keys', () => {
  const text = `{
    // a comment
    "socksRelay.listen.host": "0.0.0.0", /* block */
    "socksRelay": { "activeUpstream": "evil", "auth": { "mode": "none", }, },
    "socksRelay.upstreams": [{ "name": "e", "url": "socks5://x:1080" },],
    "[python]": { "socksRelay.autoStart": true },
    "other.setting": "a // not a comment, ]",
    "socksRelayX.autoStart": true,
  }`;
  const parsed = parseJsonc(text) as Record<string, unknown>;
  assert.equal(parsed['other.setting'], 'a // not a comment, ]');
  const found = sectionValues(parsed, 'socksRelay', RESTRICTED_KEYS);
  assert.deepEqual(Object.fromEntries(found), {
    'listen.host': '0.0.0.0',
    activeUpstream: 'evil',
    'auth.mode': 'none',
    upstreams: [{ name: 'e', url: 'socks5://x:1080' }],
  });
  assert.equal(parseJsonc('{ "a": '), undefined);
  assert.deepEqual(sectionValues(undefined, 'socksRelay', RESTRICTED_KEYS).size, 0);
  assert.deepEqual(parseJsonc('"\\"//" // c'), '"//');
});

test('the notice row: which folder values were ignored and why, without passwords, and what fixes it', () => {
  assert.equal(describeValue('upstreams', hostileFolder.upstreams), 'evil (socks5h://collector:***@198.51.100.7:1080)');
  const untrusted = effectiveSettings({ inspect: inspector({}, hostileFolder), trusted: false, consent: {} });
  const tree = configTree({ settings: untrusted.settings, state: 'stopped', ignored: untrusted.ignored });
  assert.equal(tree.length, 4);
  const [notice, listener] = tree;
  assert.equal(notice.label, 'Folder settings ignored');
  assert.equal(notice.description, '8 values · Restricted Mode');
  assert.match(notice.tooltip ?? '', /for autoStart, listen\.host, listen\.port, auth\.mode, upstreams, activeUpstream, rules, terminal\.noProxy and uses your user settings/);
  assert.deepEqual(notice.children?.map((c) => c.label), ['autoStart', 'listen.host', 'listen.port', 'auth.mode', 'upstreams', 'activeUpstream', 'rules', 'terminal.noProxy']);
  assert.equal(notice.command, 'socksRelay.manageTrust');
  assert.equal(notice.contextValue, 'folderSettings.untrusted');
  assert.ok(!JSON.stringify(notice).includes(':pw@'), 'no password from the folder file in the tree');
  assert.equal(listener.description, '127.0.0.1:1080 · stopped');

  const trusted = effectiveSettings({ inspect: inspector({}, { 'listen.host': '0.0.0.0' }), trusted: true, consent: {} });
  const [consent] = configTree({ settings: trusted.settings, state: 'stopped', ignored: trusted.ignored });
  assert.equal(consent.label, 'Folder settings not applied');
  assert.equal(consent.description, 'listen.host · needs your OK');
  assert.equal(consent.command, 'socksRelay.reviewFolderSettings');
  assert.equal(consent.children?.[0].description, '"0.0.0.0" · waiting for your OK');

  assert.equal(configTree({ settings: defaultSettings, state: 'stopped', ignored: [] }).length, 3, 'no row when nothing was ignored');

  // The status bar tooltip says it too, before "Click for actions".
  const stopped = statusView({ state: 'stopped', upstream: 'direct', ignored: untrusted.ignored });
  assert.match(stopped.tooltip, /This folder's settings for `autoStart`, `listen\.host`, .* are ignored \(Restricted Mode\); your user settings are used\.\n\nClick for actions$/);
  assert.match(statusView({ state: 'running', upstream: 'direct', ignored: trusted.ignored }).tooltip, /`listen\.host` is not applied until you allow it/);
  assert.equal(statusView({ state: 'stopped', upstream: 'direct', ignored: [] }).tooltip, statusView({ state: 'stopped', upstream: 'direct' }).tooltip);
});

test('manifest: restrictedConfigurations lists exactly the restricted keys, each window-scoped (never machine: remote windows)', () => {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
  const caps = pkg.capabilities.untrustedWorkspaces;
  // VS Code honours restrictedConfigurations only with supported: 'limited'.
  assert.equal(caps.supported, 'limited');
  assert.deepEqual([...caps.restrictedConfigurations].sort(), RESTRICTED_KEYS.map((k) => `socksRelay.${k}`).sort());
  // editorTraffic rewrites the user's own http.proxy: application scope, so no folder (trusted or not) can set it.
  for (const k of RESTRICTED_KEYS) assert.equal(pkg.contributes.configuration.properties[`socksRelay.${k}`].scope, k === 'editorTraffic' ? 'application' : 'window', k);
});
