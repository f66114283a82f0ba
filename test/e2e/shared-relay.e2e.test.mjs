// End-to-end: two windows on one code-server (each its own extension host) share one relay. Window 2 attaches to
// the relay window 1 started, shows its sessions and stops it; when window 1 closes, window 2 takes the listener
// over on the same port and its terminal keeps working; a port held by another program still offers a free one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, waitForTerminalText } from './code-server.mjs';
import { accepts, newTerminal, NO_PROXY_ENV, openSidebar, startWebServer, typeLine as type, VSIX, workbench } from './workbench.mjs';

const CS_PORT = Number(process.env.E2E_SHARED_PORT || 18950);
const PROXY_PORT = Number(process.env.E2E_SHARED_PROXY_PORT || 18951);
const FOREIGN_PORT = PROXY_PORT + 1;

let cs;
let browser;
let page1;
let page2;
let web;
let webPort;
let foreign;
let home;
let current = () => page1;
const { shot, statusText, waitFor, viewRows } = workbench(() => current(), { prefix: 'shared-' });
const on = (page) => {
  current = () => page;
  return page;
};

const running = (t) => /\b\d+ · ↑/.test(t);

/** The SOCKS Relay output channels of every window so far (for a failure's context). */
function relayLog() {
  const out = execFileSync('bash', ['-c', `find "${cs.userDataDir}/logs" -path '*socks-relay.socks-relay*' -name '*.log' -exec cat {} +`], { encoding: 'utf8' });
  return out;
}

/** Pids of the processes listening on `port` (ss -ltnp). */
function listenerPids(port) {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  return [...new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  web = await startWebServer('shared-hello', 10);
  webPort = web.address().port;
  const workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-shared-ws-'));
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-shared-home-'));
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    settings: { 'socksRelay.listen.port': PROXY_PORT, 'terminal.integrated.defaultProfile.linux': 'bash', 'workbench.colorTheme': 'Default Dark Modern' },
    env: { HOME: home, ...NO_PROXY_ENV },
  });
  browser = await launchBrowser();
  page1 = await openWorkbench(browser, cs.url, { width: 1300, height: 850 });
  page2 = await openWorkbench(browser, cs.url, { width: 1300, height: 850 });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  foreign?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('window 1 starts the relay; window 2 attaches: same listener, and a session from window 1\'s terminal shows in window 2', async () => {
  on(page1);
  await waitFor('window 1 status item', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined), 60_000);
  on(page2);
  await waitFor('window 2 status item', async () => ((await statusText()).includes('SOCKS Relay') ? true : undefined), 60_000);
  on(page1);
  await runCommand(page1, 'SOCKS Relay: Start Proxy');
  await waitFor('window 1 running', async () => (running(await statusText()) ? true : undefined));
  on(page2);
  await waitFor('window 2 sees the shared relay running', async () => (running(await statusText()) ? true : undefined));
  await openSidebar(page2, { widen: 220 });
  const rows = await waitFor('window 2 listener row', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x.includes(`127.0.0.1:${PROXY_PORT} · running`)) ? r : undefined;
  });
  assert.ok(rows.some((r) => r.includes(`127.0.0.1:${PROXY_PORT}`)), rows.join('\n'));
  assert.ok(rows.some((r) => /^Shared run by window "/.test(r)), rows.join('\n'));
  on(page1);
  await openSidebar(page1, { widen: 220 });
  const own = await waitFor('window 1 says it runs the relay for one more window', async () => {
    const r = await viewRows('Configuration');
    return r.find((x) => x.startsWith('Shared this window · 1 other window attached'));
  });
  assert.ok(own);
  await newTerminal(page1);
  await type(page1, `curl -sS --max-time 20 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/slow | tail -n 1`);
  on(page2);
  const live = await waitFor('window 2 shows window 1\'s live session', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.includes(`127.0.0.1:${webPort}`) && x.includes('SOCKS5 CONNECT'));
  });
  assert.match(live, /↑\d+/);
  const busy = await waitFor('window 2 status bar counts it', async () => {
    const t = await statusText();
    return /\b1 · ↑\d/.test(t) ? t : undefined;
  });
  assert.ok(busy);
  await page2.mouse.move(900, 20);
  await shot('window2-attached', page2.locator('#workbench\\.parts\\.sidebar'));
  on(page1);
  await waitFor('window 1 shows its own live session', async () => (await viewRows('Sessions')).find((x) => x.includes(`127.0.0.1:${webPort}`)));
  await shot('window1-owner', page1.locator('#workbench\\.parts\\.sidebar'));
  on(page2);
  await shot('window1-terminal', page1.locator('#workbench\\.parts\\.panel'));
  await waitForTerminalText(page1, 'slow-done', { timeoutMs: 30_000 });
});

test('Stop in window 2 stops the relay for both windows; Start in window 2 starts it again', async () => {
  on(page2);
  await runCommand(page2, 'SOCKS Relay: Stop Proxy');
  await waitFor('window 2 off', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined));
  on(page1);
  await waitFor('window 1 off too', async () => ((await statusText()).includes('SOCKS Relay: off') ? true : undefined));
  assert.equal(await accepts('127.0.0.1', PROXY_PORT), false, 'nothing listens any more');
  on(page2);
  await runCommand(page2, 'SOCKS Relay: Start Proxy');
  await waitFor('window 2 running again', async () => (running(await statusText()) ? true : undefined));
  on(page1);
  await waitFor('window 1 running again', async () => (running(await statusText()) ? true : undefined));
  assert.equal(await accepts('127.0.0.1', PROXY_PORT), true);
});

test('a setting changed in the attached window reaches the relay once: window 1 restarts it on the new port, both show it', async () => {
  const moved = PROXY_PORT + 2;
  on(page2);
  await runCommand(page2, 'SOCKS Relay: Edit Listener…');
  const input = page2.locator('.quick-input-widget input.input');
  await input.fill('Port');
  await page2.keyboard.press('Enter');
  await page2.locator('.quick-input-widget .quick-input-title', { hasText: 'Listener Port' }).waitFor({ state: 'visible' });
  await input.fill(String(moved));
  await page2.keyboard.press('Enter');
  await waitFor('the relay on the new port', async () => ((await accepts('127.0.0.1', moved)) ? true : undefined), 20_000).catch((err) => {
    console.log(relayLog());
    console.log(fs.readFileSync(path.join(cs.userDataDir, 'User', 'settings.json'), 'utf8'));
    throw err;
  });
  for (const page of [page1, page2]) {
    on(page);
    await openSidebar(page, { widen: 220 });
    await waitFor('the listener row on the new port', async () => ((await viewRows('Configuration')).some((x) => x.includes(`127.0.0.1:${moved} · running`)) ? true : undefined));
  }
  assert.equal(await accepts('127.0.0.1', PROXY_PORT), false, 'the old port is closed');
  const restarts = relayLog().split('\n').filter((l) => l.includes('listener settings changed; restarting')).length;
  assert.equal(restarts, 1, `one restart across both windows:\n${relayLog()}`);
  // Back to the first port for the takeover test, changed in the owning window this time.
  on(page1);
  await runCommand(page1, 'SOCKS Relay: Edit Listener…');
  await page1.locator('.quick-input-widget input.input').fill('Port');
  await page1.keyboard.press('Enter');
  await page1.locator('.quick-input-widget .quick-input-title', { hasText: 'Listener Port' }).waitFor({ state: 'visible' });
  await page1.locator('.quick-input-widget input.input').fill(String(PROXY_PORT));
  await page1.keyboard.press('Enter');
  on(page2);
  await waitFor('window 2 shows the first port again', async () => ((await viewRows('Configuration')).some((x) => x.includes(`127.0.0.1:${PROXY_PORT} · running`)) ? true : undefined), 20_000);
  await waitFor('the relay back on its first port', async () => ((await accepts('127.0.0.1', PROXY_PORT)) ? true : undefined), 20_000);
});

test('window 1 closes: window 2 takes the listener over on the same port within 5 s, and its terminal keeps working', async () => {
  on(page2);
  await newTerminal(page2);
  await type(page2, `echo "w2=[$ALL_PROXY]"`);
  await waitForTerminalText(page2, `w2=[socks5h://127.0.0.1:${PROXY_PORT}]`);
  const before = listenerPids(PROXY_PORT);
  assert.equal(before.length, 1, `one process listens on ${PROXY_PORT}: ${before}`);
  const t0 = Date.now();
  await page1.close({ runBeforeUnload: true });
  // The listener leaves with window 1's extension host and comes back in window 2's (another process).
  const back = await waitFor('another process listening on the port', async () => {
    const now = listenerPids(PROXY_PORT);
    return now.length === 1 && now[0] !== before[0] && (await accepts('127.0.0.1', PROXY_PORT)) ? Date.now() - t0 : undefined;
  }, 30_000);
  console.log(`# takeover: port ${PROXY_PORT} listened on again by pid ${listenerPids(PROXY_PORT)[0]} (was ${before[0]}) ${back} ms after window 1 closed`);
  assert.ok(back < 5_000, `took ${back} ms`);
  await waitFor('window 2 running as owner', async () => (running(await statusText()) ? true : undefined));
  await type(page2, `curl -sS --max-time 10 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/after-takeover; echo "exit=$?"`);
  const text = await waitForTerminalText(page2, /exit=\d+/, { timeoutMs: 20_000 });
  assert.match(text, /shared-hello \/after-takeover/);
  assert.match(text, /exit=0/);
  await openSidebar(page2).catch(() => undefined);
  await shot('window2-owner', page2.locator('#workbench\\.parts\\.sidebar'));
});

test('a port held by another program is reported as such, with the free-port offer', async () => {
  on(page2);
  foreign = net.createServer((s) => s.destroy());
  await new Promise((r) => foreign.listen(FOREIGN_PORT, '127.0.0.1', r));
  // The user changes the port (Edit Listener → Port): the relay restarts there and finds it taken.
  await runCommand(page2, 'SOCKS Relay: Edit Listener…');
  const input = page2.locator('.quick-input-widget input.input');
  await input.fill('Port');
  await page2.keyboard.press('Enter');
  await page2.locator('.quick-input-widget .quick-input-title', { hasText: 'Listener Port' }).waitFor({ state: 'visible' });
  await input.fill(String(FOREIGN_PORT));
  await page2.keyboard.press('Enter');
  const toast = page2.locator('.notifications-toasts .notification-toast', { hasText: `port ${FOREIGN_PORT}` });
  await toast.waitFor({ state: 'visible', timeout: 30_000 }).catch((err) => {
    console.log(relayLog());
    throw err;
  });
  assert.match(await toast.innerText(), /already in use by another program/);
  await shot('foreign-port');
  await toast.locator('a.monaco-button', { hasText: 'Use a Free Port' }).click();
  const rows = await waitFor('running on a free port', async () => {
    const r = await viewRows('Configuration');
    return r.find((x) => /^Listener 127\.0\.0\.1:\d+ · running/.test(x) && !x.includes(`:${FOREIGN_PORT} `));
  }, 30_000);
  assert.ok(rows);
});
