// End to end, the route "This computer (through VS Code)" in a browser window: code-server runs inside a network
// namespace (the "remote host": its own loopback, no way to the host's), the browser on the host reaches it through
// a socat bridge (standing in for port forwarding). No companion extension answers in a browser window, so the test
// takes the agent command the extension puts on the clipboard, runs the agent on the host, and a terminal inside the
// namespace fetches a page that only the host can reach. The tree shows the route connected and the session
// through it; killing the agent shows it disconnected. Needs root (ip netns) and socat; skipped otherwise.
// Needs socks-relay.vsix, socks-relay-egress.vsix (scripts/package-companion.sh) and dist/cli.js.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, waitForTerminalText } from './code-server.mjs';
import { newTerminal as openTerminal, NO_PROXY_ENV, ROOT, typeLine, VSIX, workbench } from './workbench.mjs';

// Ports 18980-18989: code-server and the relay's listener inside the namespace, the bridge and the web server on the host.
const CS_PORT = 18980;
const BRIDGE_PORT = 18981;
const PROXY_PORT = 18982;
const WEB_PORT = 18983;
const NS = `srx-e2e-${process.pid}`;
const SOCK = path.join(os.tmpdir(), `srx-e2e-${process.pid}.sock`);
const COMPANION_VSIX = process.env.E2E_COMPANION_VSIX || path.join(ROOT, 'socks-relay-egress.vsix');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SECRET_BODY = `only-the-host-has-this-${randomBytes(6).toString('hex')}`;
const EGRESS_LABEL = 'This computer (through VS Code)';

function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip =
  process.getuid?.() !== 0
    ? 'needs root: the test creates a network namespace (ip netns add)'
    : !has('ip') || !has('socat')
      ? 'needs ip (iproute2) and socat'
      : false;

let nsCreated = false;
let web;
const webHits = [];
const children = []; // socat bridges and the agent: own process groups, killed in after()
let agent;
let agentLog = '';
let cs;
let browser;
let page;
let home;
let workspaceDir;
let agentUrl;
let agentToken;
const { shot, waitFor, viewRows } = workbench(() => page, { prefix: 'egress-' });
const newTerminal = () => openTerminal(page);
const type = (line) => typeLine(page, line);

function spawnGroup(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  children.push(child);
  return child;
}

function killGroup(child, signal = 'SIGKILL') {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
}

// The agent on the host, as the copied command runs it (`socks-relay` is dist/cli.js here).
function startAgent(url, token, t0 = Date.now()) {
  const child = spawnGroup(process.execPath, [CLI, 'egress-agent', '--connect', url], {
    env: { ...process.env, SOCKS_RELAY_EGRESS_TOKEN: token },
  });
  const log = (d) => (agentLog += String(d).replace(/^(?=.)/gm, () => `[+${Date.now() - t0} ms] `));
  child.stdout.on('data', log);
  child.stderr.on('data', log);
  return child;
}

// The extension's output channel ("SOCKS Relay"), as code-server writes it under the user data dir.
function extensionLog() {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/SOCKS Relay\.log$/.test(e.name)) found.push(fs.readFileSync(p, 'utf8'));
    }
  };
  walk(path.join(cs.userDataDir, 'logs'));
  return found.join('\n');
}

const egressRow = async () => (await viewRows('Configuration')).find((r) => r.startsWith(EGRESS_LABEL));

describe('egress through this computer, code-server in a network namespace', { skip }, () => {
  before(async () => {
    for (const f of [VSIX, COMPANION_VSIX, CLI]) assert.ok(fs.existsSync(f), `${f} missing: run npm run package, bash scripts/package-companion.sh`);
    // The "remote host": a namespace with only a loopback.
    execFileSync('ip', ['netns', 'add', NS]);
    nsCreated = true;
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);

    // A page only the host has: on the host's loopback, which the namespace cannot reach.
    web = http.createServer((req, res) => {
      webHits.push(`${req.socket.remoteAddress} ${req.method} ${req.url}`);
      res.end(`${SECRET_BODY}\n`);
    });
    await new Promise((r) => web.listen(WEB_PORT, '127.0.0.1', r));

    // The bridge (port forwarding's stand-in): host TCP → a Unix socket (the file system is shared) → the namespace's TCP.
    fs.rmSync(SOCK, { force: true });
    spawnGroup('ip', ['netns', 'exec', NS, 'socat', `UNIX-LISTEN:${SOCK},fork`, `TCP:127.0.0.1:${CS_PORT}`]);
    spawnGroup('socat', [`TCP-LISTEN:${BRIDGE_PORT},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${SOCK}`]);
    for (let i = 0; i < 50 && !fs.existsSync(SOCK); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.existsSync(SOCK), 'the socat bridge in the namespace did not create its socket');

    workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-ws-'));
    fs.writeFileSync(path.join(workspaceDir, 'README.md'), '# egress e2e workspace\n');
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-home-'));
    cs = await startCodeServer({
      port: CS_PORT,
      netns: NS,
      url: `http://127.0.0.1:${BRIDGE_PORT}/`,
      // The companion first: the main extension names it in extensionPack.
      vsixPath: [COMPANION_VSIX, VSIX],
      workspaceDir,
      settings: {
        'socksRelay.activeUpstream': 'egress',
        'socksRelay.autoStart': true,
        'socksRelay.listen.port': PROXY_PORT,
        'terminal.integrated.defaultProfile.linux': 'bash',
        'workbench.colorTheme': 'Default Dark Modern',
      },
      env: { HOME: home, ...NO_PROXY_ENV },
    });
    browser = await launchBrowser();
    page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
    // The extension copies through the browser's clipboard (vscode.env.clipboard in a web window): let the page use it.
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(cs.url).origin });
  });

  after(async () => {
    if (page) await shot('egress-final').catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await cs?.stop().catch(() => undefined);
    for (const c of children) killGroup(c);
    web?.close();
    fs.rmSync(SOCK, { force: true });
    if (nsCreated) {
      try {
        execFileSync('ip', ['netns', 'del', NS]);
      } catch (err) {
        console.error(`could not delete namespace ${NS}: ${err.message}`);
      }
    }
    for (const d of [home, workspaceDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('both extensions installed; the namespace cannot reach the host page directly', async () => {
    const installed = fs.readdirSync(cs.extensionsDir);
    assert.ok(installed.some((d) => d.startsWith('socks-relay.socks-relay-egress-')), installed.join(', '));
    assert.ok(installed.some((d) => /^socks-relay\.socks-relay-\d/.test(d)), installed.join(', '));
    // The host can; the namespace cannot (its loopback has nothing on WEB_PORT).
    assert.equal((await (await fetch(`http://127.0.0.1:${WEB_PORT}/`)).text()).trim(), SECRET_BODY);
    const r = await new Promise((resolve) => {
      const c = spawn('ip', ['netns', 'exec', NS, 'curl', '-sS', '--max-time', '5', '--noproxy', '*', `http://127.0.0.1:${WEB_PORT}/`]);
      c.on('close', (code) => resolve(code));
    });
    assert.notEqual(r, 0, 'curl inside the namespace reached the host page directly');
  });

  test('the Upstreams row "This computer" waits for the agent (no companion in a browser window)', async () => {
    await page.locator('.activitybar .action-item a[aria-label^="SOCKS Relay"]').first().click();
    const box = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
    if (box) {
      await page.mouse.move(box.x + box.width + 1, box.y + 300);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width + 420, box.y + 300, { steps: 8 });
      await page.mouse.up();
    }
    const row = await waitFor(
      'egress row waiting for the agent',
      async () => {
        const r = await egressRow();
        if (process.env.E2E_DEBUG) console.log(JSON.stringify(await viewRows('Configuration')));
        return r?.includes('waiting for the agent') ? r : undefined;
      },
      60_000,
    );
    assert.match(row, /waiting for the agent · active$/);
    // Nothing answered on the user's side: the extension says what to do, once, with the way to do it.
    const offer = page.locator('.notification-toast', { hasText: '"This computer" needs the egress agent on your computer' });
    await offer.waitFor({ state: 'visible', timeout: 15_000 });
    assert.match(await offer.innerText(), /No companion extension answers/);
    await shot('egress-sidebar-waiting', page.locator('#workbench\\.parts\\.sidebar'));
  });

  test('copies the agent command; the agent run on the host connects and the row shows "connected"', async () => {
    // The offer's button copies it (the palette command and the row do the same).
    const offer = page.locator('.notification-toast', { hasText: '"This computer" needs the egress agent on your computer' });
    await offer.locator('a.monaco-button', { hasText: 'Copy Agent Command' }).click();
    const copied = await waitFor('agent command on the clipboard', async () => {
      const t = await page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
      return /SOCKS_RELAY_EGRESS_TOKEN=\S+ socks-relay egress-agent --connect \S+/.test(t) ? t : undefined;
    });
    const m = /^SOCKS_RELAY_EGRESS_TOKEN=(\S+) socks-relay egress-agent --connect (\S+)$/.exec(copied.trim());
    assert.ok(m, `unexpected agent command: ${copied}`);
    const [, token, url] = m;
    agentUrl = url;
    agentToken = token;
    console.log(`asExternalUri gave: ${url}`);
    // code-server forwards the port under its own address: /proxy/PORT/ on the host the browser used.
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${BRIDGE_PORT}/proxy/\\d+/?$`));
    const notice = page.locator('.notification-toast', { hasText: 'agent command copied' });
    await notice.waitFor({ state: 'visible', timeout: 10_000 });
    await shot('egress-copied', page);
    await notice.hover();
    await notice.locator('.codicon-notifications-clear, .codicon-close').first().click({ timeout: 5_000 }).catch(() => undefined);

    const t0 = Date.now();
    agent = startAgent(url, token, t0);
    await waitFor('agent says connected', async () => (agentLog.includes('egress agent connected') ? true : agent.exitCode !== null ? `agent exited: ${agentLog}` : undefined), 30_000);
    assert.ok(agentLog.includes('egress agent connected'), agentLog);
    console.log(`agent output:\n${agentLog.trimEnd()}`);
    const row = await waitFor('egress row connected', async () => {
      const r = await egressRow();
      return r && /connected( · [\d.]+ ms)? · active$/.test(r) && !r.includes('disconnected') ? r : undefined;
    }, 30_000);
    console.log(`row ${Date.now() - t0} ms after the agent started: ${row}`);
    // The endpoint pings the agent as soon as the tunnel is up: the round trip joins the row.
    const withRtt = await waitFor('egress row with the round trip', async () => {
      const r = await egressRow();
      return r && /connected · [\d.]+ ms · active$/.test(r) ? r : undefined;
    }, 15_000);
    console.log(`row ${Date.now() - t0} ms after the agent started: ${withRtt}`);
    await shot('egress-sidebar-connected', page.locator('#workbench\\.parts\\.sidebar'));
  });

  test('a terminal in the namespace fetches the host-only page through the route; direct it fails; the session shows "default → egress"', async () => {
    await newTerminal();
    await type('echo "proxy=[$ALL_PROXY]"');
    const env = await waitForTerminalText(page, /proxy=\[(socks5h:[^\]]*)?\]/);
    // While a route uses egress the listener requires credentials, even with auth mode none.
    assert.match(env, new RegExp(`proxy=\\[socks5h://[^:@\\s]+:[^@\\s]+@127\\.0\\.0\\.1:${PROXY_PORT}\\]`), env);
    const before = webHits.length;
    await type(`curl -sS --max-time 15 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${WEB_PORT}/via-egress; echo "via-egress-exit=$?"`);
    const text = await waitForTerminalText(page, /via-egress-exit=\d+/, { timeoutMs: 30_000 });
    assert.ok(text.includes(SECRET_BODY), text);
    assert.match(text, /via-egress-exit=0/);
    assert.ok(webHits.slice(before).some((h) => h.startsWith('127.0.0.1 GET /via-egress')), webHits.join('\n'));
    await type(`curl -sS --max-time 5 --noproxy '*' http://127.0.0.1:${WEB_PORT}/direct || echo "direct-failed-as-expected exit=$?"`);
    const direct = await waitForTerminalText(page, /direct-failed-as-expected exit=\d+/, { timeoutMs: 20_000 });
    assert.ok(!webHits.some((h) => h.includes('/direct')), webHits.join('\n'));
    assert.ok(direct);
    // A client without the per-run credentials is refused (X'02' → curl 97), auth mode none notwithstanding.
    await type(`curl -sS --max-time 10 --noproxy '' -x socks5h://127.0.0.1:${PROXY_PORT} http://127.0.0.1:${WEB_PORT}/no-creds; echo "no-creds-exit=$?"`);
    await waitForTerminalText(page, /no-creds-exit=9[07]/);
    assert.ok(!webHits.some((h) => h.includes('/no-creds')), webHits.join('\n'));
    const session = await waitFor('session row via egress', async () => {
      const r = await viewRows('Sessions');
      if (process.env.E2E_DEBUG) console.log(JSON.stringify(r));
      return r.find((x) => x.includes(`127.0.0.1:${WEB_PORT}`) && /· default → egress$/.test(x));
    });
    console.log(`session row: ${session}`);
    assert.match(session, /SOCKS5 CONNECT/);
    await shot('egress-sidebar-session', page.locator('#workbench\\.parts\\.sidebar'));
    await shot('egress-terminal', page.locator('#workbench\\.parts\\.panel'));
    await shot('egress-workbench-connected');
  });

  test('killing the agent: the row shows "disconnected" within seconds', async () => {
    const t0 = Date.now();
    killGroup(agent, 'SIGKILL');
    const row = await waitFor('egress row disconnected', async () => {
      const r = await egressRow();
      return r?.includes('disconnected') ? r : undefined;
    }, 15_000);
    console.log(`disconnected after ${Date.now() - t0} ms: ${row}`);
    assert.match(row, /disconnected · active$/);
    await shot('egress-sidebar-disconnected', page.locator('#workbench\\.parts\\.sidebar'));
  });

  test('while the agent is gone, sessions on the route are refused; the same command connects again', async () => {
    await type(`curl -sS --max-time 15 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${WEB_PORT}/while-down; echo "while-down-exit=$?"`);
    const text = await waitForTerminalText(page, /while-down-exit=\d+/, { timeoutMs: 30_000 });
    assert.notEqual(/while-down-exit=(\d+)/.exec(text)[1], '0', text);
    assert.ok(!webHits.some((h) => h.includes('/while-down')), webHits.join('\n'));
    const failed = await waitFor('refused session row', async () => {
      const r = await viewRows('Sessions');
      return r.find((x) => x.startsWith(`127.0.0.1:${WEB_PORT}`) && !x.includes('closed after') && /default → egress$/.test(x));
    });
    console.log(`refused session row: ${failed}`);
    // The endpoint, its forwarded address and the secret outlive the agent: the copied command works again.
    agentLog = '';
    agent = startAgent(agentUrl, agentToken);
    await waitFor('egress row connected again', async () => ((await egressRow())?.match(/ connected · [\d.]+ ms · active$/) ? true : undefined), 30_000);
    await type(`curl -sS --max-time 15 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${WEB_PORT}/again; echo "again-exit=$?"`);
    await waitForTerminalText(page, 'again-exit=0', { timeoutMs: 30_000 });
    assert.ok(webHits.some((h) => h.startsWith('127.0.0.1 GET /again')), webHits.join('\n'));
    await shot('egress-terminal-reconnected', page.locator('#workbench\\.parts\\.panel'));
    const log = extensionLog();
    const lines = log.split('\n').filter((l) => l.includes('egress'));
    console.log(`extension log (egress lines):\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => l.includes(`forwarded as ${agentUrl}`)), log);
    assert.ok(!log.includes(agentToken), 'the egress secret is not logged');
  });
});
