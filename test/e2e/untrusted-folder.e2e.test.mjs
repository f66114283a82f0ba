// End-to-end: an untrusted folder (Restricted Mode) whose .vscode/settings.json tries to open the proxy to the
// network and route everything through its own upstream. The packaged .vsix in code-server with Workspace Trust on.
// Needs `npm run package` and `bash test/e2e/install-code-server.sh`. E2E_VSIX runs it against another build.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, statusBarItems } from './code-server.mjs';
import { accepts, listeningOn, NO_PROXY_ENV, STATUS_ID, VSIX, workbench } from './workbench.mjs';

const CS_PORT = Number(process.env.E2E_TRUST_PORT || 18960);
const USER_PORT = Number(process.env.E2E_TRUST_PROXY_PORT || 18971); // the user's listen.port
const FOLDER_PORT = USER_PORT - 1; // the folder's listen.port
const FOLDER_UPSTREAM_PORT = USER_PORT + 2; // the folder's upstream: records every connection

// The machine's own non-loopback addresses: a proxy on 0.0.0.0 / :: would answer on them.
const EXTERNAL = Object.values(os.networkInterfaces())
  .flat()
  .filter((a) => a && !a.internal && !a.address.startsWith('fe80:'))
  .map((a) => a.address);

let cs;
let browser;
let page;
const { shot, statusText, waitFor, viewRows } = workbench(() => page, { prefix: 'untrusted-' });
let web;
let webPort;
let webHits = 0;
let upstream;
let workspaceDir;
const upstreamConnections = [];

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  web = http.createServer((req, res) => {
    webHits++;
    res.end(`hello-direct ${req.url}\n`);
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  webPort = web.address().port;
  // The folder's "upstream": it only records who connects (a hijacked route would show up here).
  upstream = net.createServer((s) => {
    upstreamConnections.push(s.remoteAddress);
    s.destroy();
  });
  await new Promise((r) => upstream.listen(FOLDER_UPSTREAM_PORT, '127.0.0.1', r));

  workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trust-e2e-ws-'));
  fs.mkdirSync(path.join(workspaceDir, '.vscode'));
  fs.writeFileSync(path.join(workspaceDir, 'README.md'), '# a cloned project\n');
  fs.writeFileSync(
    path.join(workspaceDir, '.vscode', 'settings.json'),
    `{
  // What a hostile repository could ship.
  "socksRelay.autoStart": true,
  "socksRelay.listen.host": "0.0.0.0",
  "socksRelay.listen.port": ${FOLDER_PORT},
  "socksRelay.auth.mode": "none",
  "socksRelay.upstreams": [{ "name": "folder-upstream", "url": "socks5://127.0.0.1:${FOLDER_UPSTREAM_PORT}" }],
  "socksRelay.activeUpstream": "folder-upstream",
  "socksRelay.rules": [{ "match": "127.0.0.0/8", "action": "folder-upstream" }],
}
`,
  );
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    workspaceTrust: true,
    settings: {
      // No trust dialog at startup: the folder simply opens in Restricted Mode, as after "Don't Trust".
      'security.workspace.trust.startupPrompt': 'never',
      'security.workspace.trust.untrustedFiles': 'open',
      'socksRelay.listen.port': USER_PORT,
      'workbench.colorTheme': 'Default Dark Modern',
    },
    env: { ...NO_PROXY_ENV },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
});

after(async () => {
  if (page) await shot('untrusted-final').catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  upstream?.close();
  if (workspaceDir) fs.rmSync(workspaceDir, { recursive: true, force: true });
});

test('the folder opens in Restricted Mode and its autoStart is ignored: nothing listens on any address', async () => {
  await waitFor('Restricted Mode indicator', async () => (await statusBarItems(page)).find((i) => /Restricted Mode/i.test(`${i.text} ${i.ariaLabel}`)), 60_000);
  await waitFor('SOCKS Relay status item', async () => (await statusText()) || undefined, 60_000);
  // An autostart happens at activation; give it time to show up if it were going to.
  await new Promise((r) => setTimeout(r, 4_000));
  for (const port of [FOLDER_PORT, USER_PORT]) {
    assert.deepEqual(listeningOn(port), [], `nothing listens on port ${port}`);
    for (const host of ['127.0.0.1', ...EXTERNAL]) assert.equal(await accepts(host, port), false, `${host}:${port} refuses`);
  }
  assert.match(await statusText(), /SOCKS Relay: off/);
});

test('the Configuration view says which folder settings were ignored, and uses the user settings', async () => {
  await page.locator('.activitybar .action-item a[aria-label^="SOCKS Relay"]').first().click();
  const box = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width + 1, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width + 260, box.y + 300, { steps: 8 });
    await page.mouse.up();
  }
  const rows = await waitFor('ignored-settings row', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.startsWith('Folder settings ignored')) && r.some((x) => x.startsWith('Listener')) ? r : undefined;
  });
  assert.ok(rows.some((r) => r === 'Folder settings ignored 7 values · Restricted Mode'), rows.join('\n'));
  assert.ok(rows.some((r) => r.startsWith('Listener') && r.includes(`127.0.0.1:${USER_PORT}`)), rows.join('\n'));
  assert.ok(!rows.some((r) => r.includes('folder-upstream')), `the folder's upstream is not listed:\n${rows.join('\n')}`);
  const config = page.locator('.pane', { hasText: 'Configuration' });
  const row = config.locator('.monaco-list-row', { hasText: 'Folder settings ignored' });
  // The tooltip (the row's aria-label) names every ignored key; expanded, the row lists them with their values.
  const tooltip = await row.getAttribute('aria-label');
  for (const key of ['autoStart', 'listen.host', 'listen.port', 'auth.mode', 'upstreams', 'activeUpstream', 'rules']) assert.ok(tooltip.includes(key), `${key} in: ${tooltip}`);
  await row.locator('.monaco-tl-twistie').click();
  const children = await waitFor('ignored keys listed', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.startsWith('listen.host')) ? r : undefined;
  });
  assert.ok(children.includes('listen.host "0.0.0.0" · Restricted Mode'), children.join('\n'));
  assert.ok(children.includes(`upstreams folder-upstream (socks5://127.0.0.1:${FOLDER_UPSTREAM_PORT}) · Restricted Mode`), children.join('\n'));
  // It offers Workspace Trust as the fix.
  await row.hover();
  assert.equal(await row.locator('a.action-label[aria-label="Manage Workspace Trust"]').count(), 1, 'inline Manage Workspace Trust action');
  await shot('untrusted-sidebar', page.locator('#workbench\\.parts\\.sidebar'));
  await row.locator('.monaco-tl-twistie').click(); // collapse again for the next screenshots
  // The status bar tooltip says it too.
  await page.locator(`[id="${STATUS_ID}"]`).hover();
  const hover = page.locator('.monaco-hover', { hasText: 'are ignored (Restricted Mode)' }).first();
  await hover.waitFor({ state: 'visible', timeout: 15_000 });
  assert.match(await hover.innerText(), /This folder's settings for autoStart, listen\.host, listen\.port, auth\.mode, upstreams, activeUpstream, rules are ignored/);
  await shot('untrusted-statusbar-tooltip');
  await page.mouse.move(700, 400);
});

test('started from the palette it listens on 127.0.0.1 only, on the user\'s port, not the folder\'s', async () => {
  await runCommand(page, 'SOCKS Relay: Start Proxy');
  await waitFor('running status', async () => (/\b0 · ↑0 B ↓0 B/.test(await statusText()) ? true : undefined));
  assert.deepEqual(listeningOn(USER_PORT), [`127.0.0.1:${USER_PORT}`]);
  assert.deepEqual(listeningOn(FOLDER_PORT), []);
  assert.equal(await accepts('127.0.0.1', USER_PORT), true);
  for (const host of EXTERNAL) assert.equal(await accepts(host, USER_PORT), false, `${host}:${USER_PORT} refuses`);
});

test('a connection through the proxy goes direct: the folder\'s upstream never sees it', async () => {
  const r = await curl(['--noproxy', '', '-x', `socks5h://127.0.0.1:${USER_PORT}`, `http://127.0.0.1:${webPort}/through-proxy`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'hello-direct /through-proxy');
  assert.equal(webHits, 1);
  assert.deepEqual(upstreamConnections, [], 'no connection reached the folder\'s upstream');
  const rows = await waitFor('closed session row', async () => {
    const rs = await viewRows('Sessions');
    return rs.some((x) => x.includes(`127.0.0.1:${webPort}`)) ? rs : undefined;
  });
  assert.ok(rows.some((x) => x.includes(`127.0.0.1:${webPort}`) && /direct/.test(x)), rows.join('\n'));
  await shot('untrusted-workbench');
});

test('trusting the folder applies its routing, but listening beyond loopback waits for the user\'s OK', async () => {
  // Clicking the notice opens the Workspace Trust editor; trust the folder there, as a user would.
  await page.locator('.pane', { hasText: 'Configuration' }).locator('.monaco-list-row', { hasText: 'Folder settings ignored' }).click();
  const trustButton = page.locator('.workspace-trust-editor .monaco-button', { hasText: /^Trust/ }).first();
  await trustButton.waitFor({ state: 'visible', timeout: 15_000 });
  await shot('trust-editor');
  await trustButton.click();
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: 30_000 });
  const text = await dialog.innerText();
  assert.match(text, /This folder's settings ask SOCKS Relay to listen on 0\.0\.0\.0, which other machines on your network can reach \(your setting: 127\.0\.0\.1\)/);
  await shot('trust-consent-dialog');
  await dialog.locator('.monaco-button', { hasText: 'Use User Settings' }).click();
  // The folder's port, upstream and rules now apply; its address does not.
  await waitFor(`listener on 127.0.0.1:${FOLDER_PORT}`, async () => (listeningOn(FOLDER_PORT).length > 0 ? true : undefined));
  assert.deepEqual(listeningOn(FOLDER_PORT), [`127.0.0.1:${FOLDER_PORT}`]);
  assert.deepEqual(listeningOn(USER_PORT), []);
  for (const host of EXTERNAL) assert.equal(await accepts(host, FOLDER_PORT), false, `${host}:${FOLDER_PORT} refuses`);
  const rows = await waitFor('not-applied row', async () => {
    const r = await viewRows('Configuration');
    return r.includes('Folder settings not applied listen.host · declined') && r.some((x) => x.startsWith('Listener') && x.includes(`127.0.0.1:${FOLDER_PORT} · running`)) ? r : undefined;
  });
  assert.ok(rows.some((x) => x.startsWith('folder-upstream') && x.includes('active')), rows.join('\n'));
  await shot('trusted-declined-sidebar', page.locator('#workbench\\.parts\\.sidebar'));
  // Trusted, the folder may route: its rule sends 127.0.0.0/8 through its upstream.
  await curl(['--noproxy', '', '-x', `socks5h://127.0.0.1:${FOLDER_PORT}`, `http://127.0.0.1:${webPort}/routed`]);
  assert.equal(upstreamConnections.length, 1, 'the trusted folder\'s route was used');
});

test('the declined address can be reviewed and allowed; only then does the proxy listen on every address', async () => {
  await runCommand(page, 'SOCKS Relay: Review Folder Settings…');
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: 15_000 });
  await dialog.locator('.monaco-button', { hasText: 'Allow for This Folder' }).click();
  await waitFor(`listener on 0.0.0.0:${FOLDER_PORT}`, async () => (listeningOn(FOLDER_PORT).some((a) => a.startsWith('0.0.0.0:')) ? true : undefined));
  for (const host of EXTERNAL.filter((h) => net.isIPv4(h))) assert.equal(await accepts(host, FOLDER_PORT), true, `${host}:${FOLDER_PORT} accepts once allowed`);
  await waitFor('notice gone', async () => (!(await viewRows('Configuration')).some((x) => x.startsWith('Folder settings')) ? true : undefined));
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('stopped', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined));
});
