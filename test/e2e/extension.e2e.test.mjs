// End-to-end: the packaged .vsix in a real VS Code (code-server 4.100.3) driven through Debian's Chromium.
// Needs `npm run package` (socks-relay.vsix) and `bash test/e2e/install-code-server.sh` (the test script does both).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, waitForTerminalText } from './code-server.mjs';
import { newTerminal as openTerminal, NO_PROXY_ENV, ROOT, startWebServer, STATUS_ID, typeLine, VSIX, workbench } from './workbench.mjs';

const CS_PORT = Number(process.env.E2E_PORT || 18936);
const PROXY_PORT = Number(process.env.E2E_PROXY_PORT || 18937);

let web;
let webPort;
let authUpstream;
let authUpstreamLog = '';
const AUTH_UPSTREAM_PORT = PROXY_PORT + 2;
const AUTH_PASSWORD = 'e2e-s3cret-Pw';
let cs;
let browser;
let page;
let home;
const { shot, statusText, waitFor, viewRows } = workbench(() => page);
const newTerminal = () => openTerminal(page);
const type = (line) => typeLine(page, line);

async function viewText(title) {
  return page.evaluate((t) => {
    const pane = [...document.querySelectorAll('.pane')].find((p) => p.querySelector('.pane-header')?.textContent?.includes(t));
    return pane ? pane.innerText : '';
  }, title);
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  // A local web server: /hello answers at once, /slow streams for ~4 s so a live session can be seen.
  web = await startWebServer('hello-from-e2e', 8);
  webPort = web.address().port;
  // A real upstream that requires a password: our own CLI (built by `npm run package`) with RFC 1929 auth.
  authUpstream = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), '--port', String(AUTH_UPSTREAM_PORT), '--user', 'me'], {
    env: { ...process.env, SOCKS_RELAY_PASS: AUTH_PASSWORD },
  });
  authUpstream.stderr.on('data', (d) => (authUpstreamLog += d));
  await new Promise((resolve, reject) => {
    authUpstream.stdout.once('data', resolve);
    authUpstream.once('exit', (code) => reject(new Error(`auth upstream exited ${code}: ${authUpstreamLog}`)));
  });
  const workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-ws-'));
  fs.writeFileSync(path.join(workspaceDir, 'README.md'), '# e2e workspace\n');
  // A user whose .bashrc rewrites whatever proxy it finds (as some login scripts do): the relay's variables must
  // still win in its terminals, so they are applied again after the rc files (shell integration).
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-home-'));
  fs.writeFileSync(
    path.join(home, '.bashrc'),
    'if [ -n "$ALL_PROXY" ]; then export ALL_PROXY=socks5h://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9; fi\n',
  );
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    settings: {
      'socksRelay.listen.port': PROXY_PORT,
      'terminal.integrated.defaultProfile.linux': 'bash',
      'workbench.colorTheme': 'Default Dark Modern',
    },
    env: { HOME: home, ...NO_PROXY_ENV },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
});

after(async () => {
  if (page) await shot('final').catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  authUpstream?.kill();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('the status bar shows the proxy as off after startup', async () => {
  const text = await waitFor('SOCKS Relay status item', async () => {
    const t = await statusText();
    return t.includes('SOCKS Relay: off') ? t : undefined;
  }, 60_000);
  assert.match(text, /SOCKS Relay: off/);
});

test('opens the SOCKS Relay sidebar: configuration tree and welcome content', async () => {
  await page.locator('.activitybar .action-item a[aria-label^="SOCKS Relay"]').first().click();
  // Widen the sidebar by dragging its edge, as a user would, so descriptions are readable in screenshots.
  const box = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width + 1, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width + 160, box.y + 300, { steps: 8 });
    await page.mouse.up();
  }
  const rows = await waitFor('configuration rows', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.startsWith('Listener')) && r.some((x) => x.startsWith('Rules')) ? r : undefined;
  });
  assert.ok(rows.some((r) => r.includes(`127.0.0.1:${PROXY_PORT}`)), rows.join('\n'));
  assert.ok(rows.some((r) => r.startsWith('Upstreams')), rows.join('\n'));
  assert.ok(rows.some((r) => r.startsWith('Direct')), rows.join('\n'));
  const welcome = await waitFor('welcome content', async () => ((await viewText('Sessions')).includes('SOCKS Relay is stopped') ? true : undefined));
  assert.ok(welcome);
  await shot('sidebar-stopped', page.locator('#workbench\\.parts\\.sidebar'));
});

test('toggles the proxy from the command palette and the status bar changes', async () => {
  await runCommand(page, 'SOCKS Relay: Toggle Proxy');
  const text = await waitFor('running status', async () => {
    const t = await statusText();
    return /\b0 · ↑0 B ↓0 B/.test(t) ? t : undefined;
  });
  assert.equal(await page.locator(`[id="${STATUS_ID}"] .codicon-radio-tower`).count(), 1, 'radio-tower icon shown');
  const rows = await waitFor('listener running', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.includes('running')) ? r : undefined;
  });
  assert.ok(rows.some((r) => r.includes(`127.0.0.1:${PROXY_PORT} · running`)), rows.join('\n'));
});

test('adds an upstream from the tree with validated multi-step input', async () => {
  const header = page.locator('.pane-header', { hasText: 'Configuration' });
  await header.hover();
  await header.locator('a.action-label[aria-label="Add Upstream…"]').click();
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(1/3)' }).waitFor({ state: 'visible' });
  await input.fill('lab');
  await page.keyboard.press('Enter');
  // Each step is a new input box: wait for step 2 before typing into it.
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(2/3)' }).waitFor({ state: 'visible' });
  await input.fill('bogus://nowhere');
  const message = await waitFor('validation message', async () => {
    const m = await page.locator('.quick-input-widget .quick-input-message').innerText().catch(() => '');
    return /invalid upstream URL/.test(m) ? m : undefined;
  });
  assert.match(message, /bogus/);
  await input.fill(`socks5h://127.0.0.1:${PROXY_PORT + 1}`);
  await page.keyboard.press('Enter');
  const rows = await waitFor('new upstream row', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.startsWith('lab')) ? r : undefined;
  });
  assert.ok(rows.some((r) => r.includes(`socks5h://127.0.0.1:${PROXY_PORT + 1}`)), rows.join('\n'));
  // Dismiss the "added" notification; the default route stays direct.
  await page.keyboard.press('Escape');
});

test('a new terminal is routed: curl through $ALL_PROXY shows up in Sessions and the counters', async () => {
  await newTerminal();
  await type(`echo "proxy=[$ALL_PROXY] http=[$HTTP_PROXY]"`);
  await waitForTerminalText(page, `proxy=[socks5h://127.0.0.1:${PROXY_PORT}] http=[http://127.0.0.1:${PROXY_PORT}]`);
  // curl prefers $http_proxy for http:// URLs, so name $ALL_PROXY explicitly; NO_PROXY lists 127.0.0.1 for
  // everyday use, and --noproxy '' makes curl use the proxy for this local server anyway.
  await type(`curl -sS --max-time 20 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/slow | tail -n 1; curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/hello`);
  const live = await waitFor('live session row', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.includes(`127.0.0.1:${webPort}`) && x.includes('SOCKS5 CONNECT') && /· (default → )?direct$/.test(x)) ?? (process.env.E2E_DEBUG ? console.log(JSON.stringify(r)) : undefined);
  });
  assert.match(live, /↑\d+ B ↓/);
  const busy = await waitFor('status bar with an active session', async () => {
    const t = await statusText();
    return /\b1 · ↑\d/.test(t) ? t : undefined;
  });
  assert.ok(busy);
  await shot('sidebar-running', page.locator('#workbench\\.parts\\.sidebar'));
  await shot('statusbar', page.locator('#workbench\\.parts\\.statusbar'));
  await waitForTerminalText(page, `hello-from-e2e /hello`, { timeoutMs: 30_000 });
  const text = await waitFor('counters after traffic', async () => {
    const t = await statusText();
    const m = /↓(\d+(?:\.\d)?) (B|KB|MB)/.exec(t);
    return m && !(m[1] === '0' && m[2] === 'B') && /\b0 · /.test(t) ? t : undefined;
  });
  assert.ok(text);
  const rows = await waitFor('closed sessions', async () => {
    const r = await viewRows('Sessions');
    return r.some((x) => x.startsWith('Recently closed')) ? r : undefined;
  });
  assert.ok(rows.length >= 1);
  await shot('terminal', page.locator('#workbench\\.parts\\.panel'));
  await shot('workbench-running');
});

test('a plain http:// request through $HTTP_PROXY is forwarded from the extension host, where VS Code patches node:http', async () => {
  // The extension host's http.request puts VS Code's own agent on every request (http.proxySupport "override"):
  // a forward that went through it reached localhost:80 instead of the routed socket (502 ECONNREFUSED).
  await type(`curl -sS --max-time 20 --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${webPort}/slow | tail -n 1; curl -sS --max-time 10 --noproxy '' -x "$HTTP_PROXY" http://127.0.0.1:${webPort}/via-http-proxy; echo "http-exit=$?"`);
  const live = await waitFor('live HTTP session row', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.includes(`127.0.0.1:${webPort}`) && / · HTTP · (default → )?direct$/.test(x)) ?? (process.env.E2E_DEBUG ? console.log(JSON.stringify(r)) : undefined);
  });
  assert.match(live, /↑\d+(\.\d)? (B|KB) ↓/);
  await shot('sidebar-http-forward', page.locator('#workbench\\.parts\\.sidebar'));
  const text = await waitForTerminalText(page, /http-exit=(\d+)/, { timeoutMs: 30_000 });
  assert.match(text, /hello-from-e2e \/via-http-proxy/);
  assert.doesNotMatch(text, /502 Bad Gateway/);
  assert.equal(/http-exit=(\d+)/.exec(text)[1], '0');
});

test('closes a live session from the Sessions view; the client sees the connection cut', async () => {
  await type(`curl -sS --max-time 20 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/slow > /dev/null; echo "cut-exit=$?"`);
  const pane = page.locator('.pane', { hasText: 'Sessions' });
  const row = pane.locator('.monaco-list-row', { hasText: 'SOCKS5 CONNECT' }).filter({ has: page.locator('.codicon-arrow-swap') }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.hover();
  await row.locator('a.action-label[aria-label="Close Session"]').click();
  const text = await waitForTerminalText(page, /cut-exit=(\d+)/);
  assert.notEqual(/cut-exit=(\d+)/.exec(text)[1], '0', 'curl reports the cut connection');
  await waitFor('closed-by-user row', async () => ((await viewRows('Sessions')).some((r) => r.includes('closed by user')) ? true : undefined));
});

test('tests an upstream from the tree (exact failure shown), uses it, and goes back to direct', async () => {
  const pane = page.locator('.pane', { hasText: 'Configuration' });
  const lab = pane.locator('.monaco-list-row', { hasText: 'lab' }).first();
  await lab.hover();
  await lab.locator('a.action-label[aria-label="Test Upstream"]').click();
  // Nothing listens on the lab upstream's port: the notification names the refusal.
  const toast = page.locator('.notification-toast', { hasText: 'could not reach' });
  await toast.waitFor({ state: 'visible', timeout: 20_000 });
  assert.match(await toast.innerText(), /"lab" could not reach example\.com:443: .*refused/i);
  await toast.locator('.codicon-notifications-clear, .codicon-close').first().click().catch(() => undefined);
  await lab.hover();
  await lab.locator('a.action-label[aria-label="Use This Upstream"]').click();
  await waitFor('lab active', async () => ((await viewRows('Configuration')).some((r) => r.startsWith('lab') && r.endsWith('· active')) ? true : undefined));
  // New sessions take the new route at once: through the dead upstream the client gets X'05'.
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/hello; echo "via-lab-exit=$?"`);
  await waitForTerminalText(page, 'via-lab-exit=97');
  const direct = pane.locator('.monaco-list-row', { hasText: 'Direct' }).first();
  await direct.hover();
  await direct.locator('a.action-label[aria-label="Use This Upstream"]').click();
  await waitFor('direct active', async () => ((await viewRows('Configuration')).some((r) => r.startsWith('Upstreams default route: direct')) ? true : undefined));
});

test('an upstream with a password: the password goes to secret storage, not settings, and the upstream accepts it', async () => {
  const header = page.locator('.pane-header', { hasText: 'Configuration' });
  await header.hover();
  await header.locator('a.action-label[aria-label="Add Upstream…"]').click();
  const input = page.locator('.quick-input-widget input.input');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(1/3)' }).waitFor({ state: 'visible' });
  await input.fill('secure');
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(2/3)' }).waitFor({ state: 'visible' });
  await input.fill(`socks5h://me@127.0.0.1:${AUTH_UPSTREAM_PORT}`);
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(3/3)' }).waitFor({ state: 'visible' });
  assert.equal(await input.getAttribute('type'), 'password', 'the password box hides what is typed');
  await input.fill(AUTH_PASSWORD);
  await page.keyboard.press('Enter');
  await waitFor('secure upstream row', async () => ((await viewRows('Configuration')).some((r) => r.startsWith(`secure socks5h://me@127.0.0.1:${AUTH_UPSTREAM_PORT}`)) ? true : undefined));
  await page.keyboard.press('Escape');
  const settingsText = fs.readFileSync(path.join(cs.userDataDir, 'User', 'settings.json'), 'utf8');
  assert.ok(settingsText.includes(`socks5h://me@127.0.0.1:${AUTH_UPSTREAM_PORT}`), settingsText);
  assert.ok(!settingsText.includes(AUTH_PASSWORD), 'the password is not in settings.json');
  const row = page.locator('.pane', { hasText: 'Configuration' }).locator('.monaco-list-row', { hasText: 'secure' }).first();
  await row.hover();
  await row.locator('a.action-label[aria-label="Use This Upstream"]').click();
  await waitFor('secure active', async () => ((await viewRows('Configuration')).some((r) => r.startsWith('secure') && r.endsWith('· active')) ? true : undefined));
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/via-secure; echo " via-secure-exit=$?"`);
  await waitForTerminalText(page, 'hello-from-e2e /via-secure');
  await waitForTerminalText(page, 'via-secure-exit=0');
  // The upstream authenticated us and logged the session it carried.
  await waitFor('upstream session log', async () => (new RegExp(`connect 127\\.0\\.0\\.1:${webPort} via direct: ok`).test(authUpstreamLog) ? true : undefined));
  assert.ok(!authUpstreamLog.includes('authentication failed'), authUpstreamLog);
  const direct = page.locator('.pane', { hasText: 'Configuration' }).locator('.monaco-list-row', { hasText: 'Direct' }).first();
  await direct.hover();
  await direct.locator('a.action-label[aria-label="Use This Upstream"]').click();
  await waitFor('direct active', async () => ((await viewRows('Configuration')).some((r) => r.startsWith('Upstreams default route: direct')) ? true : undefined));
});

test('adds a blocking rule from the tree; a request that matches it is refused and shown as failed', async () => {
  const row = page.locator('.pane', { hasText: 'Configuration' }).locator('.monaco-list-row', { hasText: 'Rules' }).first();
  await row.hover();
  await row.locator('a.action-label[aria-label="Add Rule…"]').click();
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible' });
  await input.fill('port:1-2 bad..name');
  await waitFor('rule validation message', async () => {
    const m = await page.locator('.quick-input-widget .quick-input-message').innerText().catch(() => '');
    return m.trim() !== '' ? m : undefined;
  });
  await input.fill('*.blocked.test');
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: '(2/2)' }).waitFor({ state: 'visible' });
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Block' }).first().waitFor({ state: 'visible' });
  await input.fill('Block');
  await page.keyboard.press('Enter');
  const rows = await waitFor('rule row', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.startsWith('*.blocked.test → block')) ? r : undefined;
  });
  assert.ok(rows.some((r) => r.startsWith('Rules 1, first match wins')), rows.join('\n'));
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://www.blocked.test/; echo "curl-exit=$?"`);
  await waitForTerminalText(page, 'curl-exit=97');
  const refused = await waitFor('refused session', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.startsWith('www.blocked.test:80') && /connection not allowed by ruleset/.test(x)) ?? undefined;
  });
  assert.match(refused, /rule 1/);
  await shot('sidebar-rules', page.locator('#workbench\\.parts\\.sidebar'));
});

test('a port already in use: the error offers a free port, and taking it starts the proxy', async () => {
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('stopped status', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined));
  const blocker = http.createServer();
  await new Promise((r) => blocker.listen(PROXY_PORT, '127.0.0.1', r));
  try {
    await runCommand(page, 'SOCKS Relay: Start Proxy');
    const toast = page.locator('.notification-toast', { hasText: `port ${PROXY_PORT} on 127.0.0.1 is already in use` });
    await toast.waitFor({ state: 'visible', timeout: 15_000 });
    await shot('port-in-use');
    assert.match(await statusText(), /SOCKS Relay/);
    await toast.locator('a.monaco-button, .monaco-button', { hasText: 'Use a Free Port' }).first().click();
    const text = await waitFor('running on another port', async () => {
      const t = await statusText();
      return /\b0 · ↑/.test(t) ? t : undefined;
    });
    assert.ok(text);
    // The tree repaints on its own schedule: wait for it to show the new port.
    const listener = await waitFor('listener on a new port', async () => {
      const row = (await viewRows('Configuration')).find((r) => r.startsWith('Listener')) ?? '';
      return /127\.0\.0\.1:\d+ · running/.test(row) && !row.includes(`:${PROXY_PORT} `) ? row : undefined;
    });
    assert.ok(listener);
  } finally {
    blocker.close();
  }
});

test('per-run credentials: with generated auth, terminals carry them and a client without them is refused', async () => {
  await runCommand(page, 'SOCKS Relay: Edit Listener…');
  const list = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  await list.filter({ hasText: 'Authentication' }).first().click();
  await list.filter({ hasText: 'a fresh password each run' }).first().waitFor({ state: 'visible' });
  await list.filter({ hasText: 'a fresh password each run' }).first().click();
  // The listener restarts with authentication on.
  await waitFor('auth row', async () => ((await viewRows('Configuration')).some((r) => r.startsWith('Authentication per-run password')) ? true : undefined));
  await waitFor('running again', async () => ((await viewRows('Configuration')).some((r) => /^Listener .* · running$/.test(r)) ? true : undefined));
  await newTerminal();
  await type('echo "auth-proxy=[$ALL_PROXY]"');
  const text = await waitForTerminalText(page, /auth-proxy=\[socks5h:\/\/relay:[A-Za-z0-9_-]{20,}@127\.0\.0\.1:\d+\]/);
  const port = /auth-proxy=\[socks5h:\/\/relay:[^@]+@127\.0\.0\.1:(\d+)\]/.exec(text)[1];
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/with-creds; echo " with-creds-exit=$?"`);
  await waitForTerminalText(page, 'with-creds-exit=0');
  await type(`curl -sS --max-time 10 --noproxy '' -x socks5h://127.0.0.1:${port} http://127.0.0.1:${webPort}/; echo "no-creds-exit=$?"`);
  await waitForTerminalText(page, /no-creds-exit=9[07]/);
  await shot('terminal-generated-auth', page.locator('#workbench\\.parts\\.panel'));
});

test('stopping the proxy removes the variables from new terminals', async () => {
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('stopped status', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined));
  await newTerminal();
  await type('echo "after-stop=[${ALL_PROXY:-none}][${HTTP_PROXY:-none}]"');
  await waitForTerminalText(page, 'after-stop=[none][none]');
  await shot('terminal-after-stop', page.locator('#workbench\\.parts\\.panel'));
});
