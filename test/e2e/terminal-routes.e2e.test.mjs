// End-to-end: two terminals with routes of their own ("New Terminal Through…"): one direct, one through a real
// microsocks upstream. Each terminal has its own credentials, so the session rows name the terminal and its route,
// and grouping by terminal puts them apart; a .bashrc that exports its own ALL_PROXY still loses to the relay's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, waitForTerminalText } from './code-server.mjs';
import { NO_PROXY_ENV, openSidebar, typeLine, VSIX, workbench } from './workbench.mjs';

const type = (line) => typeLine(page, line);

const CS_PORT = Number(process.env.E2E_TERM_PORT || 18944);
const PROXY_PORT = Number(process.env.E2E_TERM_PROXY_PORT || 18945);
const MICROSOCKS_PORT = PROXY_PORT + 1;

let cs;
let browser;
let page;
let web;
let webPort;
let microsocks;
let home;
const hits = [];
const { shot, waitFor, viewRows } = workbench(() => page, { prefix: 'terminals-' });

/** Runs "New Terminal Through…" and picks the route whose label contains `route`. */
async function newTerminalThrough(route) {
  await runCommand(page, 'SOCKS Relay: New Terminal Through…');
  // Typed, as a user would: the pick filters on labels only.
  const input = page.locator('.quick-input-widget input.input');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: 'New Terminal Through' }).waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(route);
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: route }).waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
  // The new terminal's tab is the active one once its name shows in the panel.
  await page.locator('.terminal-tabs-entry.is-active, .single-terminal-tab', { hasText: expectName(route) }).first().waitFor({ state: 'visible', timeout: 30_000 });
  const term = page.locator('.terminal-wrapper.active .xterm').first();
  await term.waitFor({ state: 'visible', timeout: 30_000 });
  await waitForTerminalText(page, /[$#]\s*$/m, { timeoutMs: 30_000 });
  await term.click({ force: true });
}

const expectName = (route) => `SOCKS Relay · ${route === 'Direct' ? 'direct' : route}`;

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  web = http.createServer((req, res) => {
    hits.push(req.url);
    res.end(`routed-hello ${req.url}\n`);
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  webPort = web.address().port;
  microsocks = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(MICROSOCKS_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((r) => setTimeout(r, 300));
  const workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-term-ws-'));
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-term-home-'));
  fs.writeFileSync(path.join(home, '.bashrc'), 'if [ -n "$ALL_PROXY" ]; then export ALL_PROXY=socks5h://127.0.0.1:9 all_proxy=socks5h://127.0.0.1:9; fi\n');
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    settings: {
      'socksRelay.listen.port': PROXY_PORT,
      'socksRelay.upstreams': [{ name: 'micro', url: `socks5://127.0.0.1:${MICROSOCKS_PORT}` }],
      'terminal.integrated.defaultProfile.linux': 'bash',
      'workbench.colorTheme': 'Default Dark Modern',
    },
    env: { HOME: home, ...NO_PROXY_ENV },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
  await openSidebar(page, { widen: 260 });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  microsocks?.kill();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('two terminals with their own routes: the rows name each terminal and its route; the .bashrc proxy loses', async () => {
  await newTerminalThrough('Direct');
  await type(`echo "direct=[$ALL_PROXY]"`);
  const t1 = await waitForTerminalText(page, /direct=\[[^$\]][^\]]*\]/);
  const direct = /direct=\[([^$\]][^\]]*)\]/.exec(t1)[1];
  assert.match(direct, new RegExp(`^socks5h://term-[0-9a-f]+:[^@]+@127\\.0\\.0\\.1:${PROXY_PORT}$`), 'its own credentials, not the .bashrc value');
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/from-direct-terminal`);
  await waitForTerminalText(page, 'routed-hello /from-direct-terminal', { timeoutMs: 20_000 });
  await newTerminalThrough('micro');
  await type(`echo "micro=[$ALL_PROXY]"`);
  const t2 = await waitForTerminalText(page, /micro=\[[^$\]][^\]]*\]/).catch(async (err) => {
    await shot('terminals-micro-timeout');
    throw err;
  });
  const micro = /micro=\[([^$\]][^\]]*)\]/.exec(t2)[1];
  assert.notEqual(micro.split('@')[0], direct.split('@')[0], 'each terminal has credentials of its own');
  await type(`curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/from-micro-terminal`);
  await waitForTerminalText(page, 'routed-hello /from-micro-terminal', { timeoutMs: 20_000 });
  const rows = await waitFor('session rows naming both terminals', async () => {
    const r = await viewRows('Sessions');
    const a = r.find((x) => x.includes('⌨ SOCKS Relay · direct') && x.includes('terminal "SOCKS Relay · direct" → direct'));
    const b = r.find((x) => x.includes('⌨ SOCKS Relay · micro') && x.includes('terminal "SOCKS Relay · micro" → micro'));
    return a && b ? r : (process.env.E2E_DEBUG ? console.log(JSON.stringify(r)) : undefined);
  }, 20_000);
  assert.ok(rows);
  await shot('terminals-sessions', page.locator('#workbench\\.parts\\.sidebar'));
});

test('grouping by terminal puts each routed terminal in its own group', async () => {
  await runCommand(page, 'SOCKS Relay: Group Sessions by Terminal');
  const rows = await waitFor('terminal groups', async () => {
    const r = await viewRows('Sessions');
    return r.some((x) => x.startsWith('SOCKS Relay · direct')) && r.some((x) => x.startsWith('SOCKS Relay · micro')) ? r : undefined;
  });
  assert.ok(rows);
  await page.mouse.move(1300, 20);
  await shot('terminals-grouped', page.locator('#workbench\\.parts\\.sidebar'));
  await runCommand(page, 'SOCKS Relay: Show Sessions as a List');
});

test('a terminal opened while the proxy was off is offered a relaunch when it starts, and then routed', async () => {
  await runCommand(page, 'SOCKS Relay: Stop Proxy');
  await waitFor('proxy off', async () => ((await viewRows('Configuration')).some((r) => /^Listener .* · stopped/.test(r)) ? true : undefined));
  await runCommand(page, 'Terminal: Create New Terminal');
  await waitForTerminalText(page, /[$#]\s*$/m, { timeoutMs: 30_000 });
  await runCommand(page, 'SOCKS Relay: Start Proxy');
  const offer = page.locator('.notification-toast', { hasText: 'opened before the proxy' });
  await offer.waitFor({ state: 'visible', timeout: 15_000 });
  assert.match(await offer.innerText(), /relaunch/i);
  await shot('terminals-relaunch-offer');
  await offer.locator('a.monaco-button', { hasText: 'Relaunch' }).click();
  // The relaunched shell has the relay's variables (after its .bashrc, which would have rewritten them).
  await new Promise((r) => setTimeout(r, 1_500));
  await waitForTerminalText(page, /[$#]\s*$/m, { timeoutMs: 30_000 });
  await page.keyboard.press('Escape'); // a code-server notice about terminal keybindings may hold the focus
  await page.locator('.terminal-wrapper.active .xterm-screen').first().click({ force: true });
  await new Promise((r) => setTimeout(r, 300));
  await type(`echo "relaunched=[$ALL_PROXY]"`);
  await new Promise((r) => setTimeout(r, 1_000));
  await shot('terminals-relaunched');
  await waitForTerminalText(page, `relaunched=[socks5h://127.0.0.1:${PROXY_PORT}]`, { timeoutMs: 20_000 });
});
