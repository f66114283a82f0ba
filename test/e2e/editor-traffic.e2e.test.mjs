// End-to-end: socksRelay.editorTraffic. With it on, the relay sets http.proxy while it runs, so an HTTP request made in
// the extension host (a test-only probe extension, through VS Code's patched node:http) goes through the relay and shows
// in the Sessions view; stopping puts the user's previous http.proxy back exactly, "unset" included.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer } from './code-server.mjs';
import { NO_PROXY_ENV, openSidebar, ROOT, VSIX, workbench } from './workbench.mjs';

const CS_PORT = Number(process.env.E2E_EDITOR_PORT || 18947);
const PROXY_PORT = Number(process.env.E2E_EDITOR_PROXY_PORT || 18948);
// 127.0.0.2, not 127.0.0.1 or localhost: VS Code's proxy support sends those two direct whatever http.proxy says.
const PROBE_HOST = '127.0.0.2';

let cs;
let browser;
let page;
let web;
let webPort;
let probeVsix;
let tmp;
const hits = [];
const { shot, waitFor, viewRows } = workbench(() => page, { prefix: 'editor-' });

const userSettings = () => JSON.parse(fs.readFileSync(path.join(cs.userDataDir, 'User', 'settings.json'), 'utf8'));

async function probe() {
  await runCommand(page, 'E2E Probe: Fetch From the Extension Host');
  const toast = page.locator('.notification-toast', { hasText: 'probe:' }).last();
  await toast.waitFor({ state: 'visible', timeout: 15_000 });
  const text = await toast.innerText();
  await toast.hover();
  await toast.locator('.codicon-notifications-clear, .codicon-close').first().click({ timeout: 5_000 }).catch(() => undefined);
  return text;
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-editor-'));
  // The probe extension, packaged here (it is test-only and never shipped).
  const src = path.join(ROOT, 'test/e2e/probe-extension');
  const dir = path.join(tmp, 'probe');
  fs.cpSync(src, dir, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(dir, 'LICENSE'));
  probeVsix = path.join(tmp, 'probe.vsix');
  execFileSync(path.join(ROOT, 'node_modules/.bin/vsce'), ['package', '--allow-missing-repository', '--no-dependencies', '--out', probeVsix], { cwd: dir, stdio: 'ignore' });
  web = http.createServer((req, res) => {
    hits.push({ url: req.url, via: req.headers.via });
    res.end(`editor-hello ${req.url}`);
  });
  await new Promise((r) => web.listen(0, PROBE_HOST, r));
  webPort = web.address().port;
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: [VSIX, probeVsix],
    settings: { 'socksRelay.listen.port': PROXY_PORT, 'socksRelay.editorTraffic': true, 'http.proxySupport': 'override' },
    env: { E2E_PROBE_URL: `http://${PROBE_HOST}:${webPort}/from-the-extension-host`, ...NO_PROXY_ENV },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
  await openSidebar(page, { widen: 260 });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('stopped: http.proxy stays unset and the extension host goes direct', async () => {
  assert.equal(userSettings()['http.proxy'], undefined);
  const text = await probe();
  assert.match(text, /probe: 200 editor-hello \/from-the-extension-host/);
});

test('running with editorTraffic on: http.proxy points at the relay and an extension-host request shows in Sessions', async () => {
  await runCommand(page, 'SOCKS Relay: Start Proxy');
  await waitFor('http.proxy set', async () => (userSettings()['http.proxy'] === `http://127.0.0.1:${PROXY_PORT}` ? true : undefined));
  const row = await waitFor('Editor traffic row', async () => (await viewRows('Configuration')).find((r) => r.startsWith('Editor traffic routed')));
  assert.match(row, new RegExp(`http\\.proxy → http://127\\.0\\.0\\.1:${PROXY_PORT}`));
  // VS Code reads the new value without a reload; give its proxy resolver a moment.
  let text = '';
  let session;
  for (let i = 0; i < 5 && !session; i++) {
    text = await probe();
    session = await waitFor('the probe\'s session', async () => (await viewRows('Sessions')).find((r) => r.includes(`${PROBE_HOST}:${webPort}`)), 3_000).catch(() => undefined);
  }
  assert.match(text, /probe: 200 editor-hello/);
  assert.ok(session, 'the extension host\'s request went through the relay');
  assert.match(session, /HTTP/);
  await page.mouse.move(1300, 20);
  await shot('editor-traffic', page.locator('#workbench\\.parts\\.sidebar'));
});

test('stop puts the previous http.proxy back exactly: unset', async () => {
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('http.proxy unset again', async () => (!('http.proxy' in userSettings()) ? true : undefined));
});

test('a value the user had is restored exactly, too', async () => {
  const file = path.join(cs.userDataDir, 'User', 'settings.json');
  fs.writeFileSync(file, JSON.stringify({ ...userSettings(), 'http.proxy': 'http://corp-proxy.invalid:3128' }, null, 2));
  // code-server picks up the file change; wait until VS Code's view of the setting has it (the tree repaints on config changes).
  await new Promise((r) => setTimeout(r, 2_000));
  await runCommand(page, 'SOCKS Relay: Start Proxy');
  await waitFor('http.proxy set over the user\'s value', async () => (userSettings()['http.proxy'] === `http://127.0.0.1:${PROXY_PORT}` ? true : undefined));
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('the user\'s value back', async () => (userSettings()['http.proxy'] === 'http://corp-proxy.invalid:3128' ? true : undefined));
});
