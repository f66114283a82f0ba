// Harness for end-to-end tests in a real VS Code: code-server (installed into a cache
// directory outside the repo by test/e2e/install-code-server.sh) driven by Debian's
// Chromium through playwright-core (also in that cache, so the repo does not need it).
//
//   import { startCodeServer, launchBrowser, openWorkbench } from './code-server.mjs';
//   const cs = await startCodeServer({ port: 18930, workspaceDir, vsixPath });
//   const browser = await launchBrowser();
//   const page = await openWorkbench(browser, cs.url);
//   ...
//   await browser.close(); await cs.stop();
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const CODE_SERVER_VERSION = process.env.CODE_SERVER_VERSION || '4.100.3';
export const PLAYWRIGHT_CORE_VERSION = process.env.PLAYWRIGHT_CORE_VERSION || '1.64.1';
export const CACHE_DIR = process.env.SOCKS_RELAY_CACHE || path.join(os.homedir(), '.cache', 'socks-relay');
export const CODE_SERVER_DIR = path.join(CACHE_DIR, `code-server-${CODE_SERVER_VERSION}`);
export const CODE_SERVER_ENTRY = path.join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const PLAYWRIGHT_CORE_DIR = path.join(CACHE_DIR, `playwright-core-${PLAYWRIGHT_CORE_VERSION}`);
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const INSTALL_SCRIPT = path.join(path.dirname(new URL(import.meta.url).pathname), 'install-code-server.sh');

export const DEFAULT_SETTINGS = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  // The DOM renderer puts the terminal's text in `.xterm-rows` where tests can read it
  // (the WebGL renderer draws it on a canvas).
  'terminal.integrated.gpuAcceleration': 'off',
  'terminal.integrated.enablePersistentSessions': false,
};

function assertInstalled() {
  if (!fs.existsSync(CODE_SERVER_ENTRY)) {
    throw new Error(`code-server ${CODE_SERVER_VERSION} not found at ${CODE_SERVER_ENTRY}; run: bash ${INSTALL_SCRIPT}`);
  }
}

// Environment for code-server: drop VSCODE_* variables (a VSCODE_IPC_HOOK_CLI inherited from a
// surrounding VS Code terminal would make `--install-extension` talk to that other instance).
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('VSCODE_')) env[k] = v;
  }
  delete env.PASSWORD;
  delete env.HASHED_PASSWORD;
  return { ...env, ...extra };
}

function run(args, { env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CODE_SERVER_ENTRY, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`code-server ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

function portIsFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start code-server.
 * @param {object} o
 * @param {number} [o.port=18930]         loopback port (the project uses 18930-18939)
 * @param {string|string[]} [o.vsixPath]  installed with --install-extension first (several: one after another, in order)
 * @param {string} [o.workspaceDir]       folder to open (default: a new temp dir)
 * @param {string} [o.userDataDir]        default: a new temp dir (removed by stop())
 * @param {string} [o.extensionsDir]      default: a new temp dir (removed by stop())
 * @param {object} [o.settings]           merged over DEFAULT_SETTINGS into User/settings.json
 * @param {object} [o.env]                extra environment for code-server (and so the extension host and terminals)
 * @param {string[]} [o.extraArgs]        more code-server arguments
 * @param {boolean} [o.workspaceTrust=false] keep Workspace Trust on: no --disable-workspace-trust, and
 *                                        `security.workspace.trust.enabled: true` in the user settings
 * @param {number} [o.timeoutMs=60000]    how long to wait for the HTTP port
 * @param {string} [o.netns]              run code-server inside this network namespace (`ip netns exec NAME`, needs
 *                                        root); `port` is then its port on the namespace's loopback, which the host
 *                                        cannot reach: pass `url`, an address that leads there (e.g. a socat bridge)
 * @param {string} [o.url]                where the host reaches code-server (default http://127.0.0.1:PORT/); the
 *                                        health probe and the returned `url` use it
 * @returns {Promise<{url:string, port:number, process:import('node:child_process').ChildProcess,
 *   workspaceDir:string, userDataDir:string, extensionsDir:string, logFile:string,
 *   output:()=>string, stop:()=>Promise<void>}>}
 */
export async function startCodeServer({
  port = 18930,
  vsixPath,
  workspaceDir,
  userDataDir,
  extensionsDir,
  settings = {},
  env: extraEnv = {},
  extraArgs = [],
  workspaceTrust = false,
  timeoutMs = 60_000,
  netns,
  url: hostUrl,
} = {}) {
  assertInstalled();
  if (netns !== undefined && hostUrl === undefined) throw new Error('startCodeServer: with netns, pass url (how the host reaches code-server)');
  const tempDirs = [];
  const mk = (name) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `socks-relay-e2e-${name}-`));
    tempDirs.push(d);
    return d;
  };
  workspaceDir ??= mk('ws');
  userDataDir ??= mk('user');
  extensionsDir ??= mk('ext');
  for (const d of [workspaceDir, userDataDir, extensionsDir]) fs.mkdirSync(d, { recursive: true });

  // (Inside a namespace the host's ports say nothing about the namespace's.)
  if (netns === undefined && !(await portIsFree(port))) throw new Error(`port 127.0.0.1:${port} is already in use`);

  // Each code-server's windows share a relay among themselves only (not with another test's or the developer's).
  const env = childEnv({ SOCKS_RELAY_RUNTIME_DIR: path.join(userDataDir, 'relay-runtime'), ...extraEnv });
  // Keep code-server from reading or writing ~/.config/code-server/config.yaml.
  const configFile = path.join(userDataDir, 'code-server-config.yaml');
  fs.writeFileSync(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const common = ['--config', configFile, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  for (const vsix of [vsixPath ?? []].flat().filter(Boolean)) {
    await run([...common, '--install-extension', path.resolve(vsix), '--force'], { env });
  }

  const userDir = path.join(userDataDir, 'User');
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(
    path.join(userDir, 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...(workspaceTrust ? { 'security.workspace.trust.enabled': true } : {}), ...settings }, null, 2) + '\n',
  );

  const logFile = path.join(userDataDir, 'code-server.log');
  const logFd = fs.openSync(logFile, 'a');
  let output = '';
  // `ip netns exec` execs the command in the namespace: the child's pid (and so its process group) is code-server's.
  const [cmd, prefix] = netns === undefined ? [process.execPath, []] : ['ip', ['netns', 'exec', netns, process.execPath]];
  const child = spawn(
    cmd,
    [
      ...prefix,
      CODE_SERVER_ENTRY,
      ...common,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      ...(workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--ignore-last-opened',
      ...extraArgs,
      workspaceDir,
    ],
    // Own process group, so stop() also ends the extension host, pty host and shells.
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const onData = (d) => {
    output += d;
    if (output.length > 1_000_000) output = output.slice(-500_000);
    fs.writeSync(logFd, d);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = null;
  const exitPromise = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  const killGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const onParentExit = () => killGroup('SIGKILL');
  process.on('exit', onParentExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killGroup('SIGTERM');
    const t = setTimeout(() => killGroup('SIGKILL'), 5_000);
    if (!exited) await exitPromise;
    await sleep(200);
    killGroup('SIGKILL'); // leftovers in the group (shells started in terminals)
    clearTimeout(t);
    process.off('exit', onParentExit);
    try {
      fs.closeSync(logFd);
    } catch {
      /* closed */
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  };

  const url = hostUrl ?? `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`code-server exited early (${JSON.stringify(exited)}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer on ${url} within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(250);
  }

  return {
    url,
    port,
    process: child,
    workspaceDir,
    userDataDir,
    extensionsDir,
    logFile,
    output: () => output,
    stop,
  };
}

/** playwright-core from the cache directory (not a dependency of the repo). */
export function loadPlaywright() {
  const dir = path.join(PLAYWRIGHT_CORE_DIR, 'node_modules', 'playwright-core');
  if (!fs.existsSync(dir)) {
    throw new Error(`playwright-core ${PLAYWRIGHT_CORE_VERSION} not found at ${dir}; run: bash ${INSTALL_SCRIPT}`);
  }
  return createRequire(path.join(PLAYWRIGHT_CORE_DIR, 'package.json'))('playwright-core');
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launch Debian's Chromium (headless by default) through playwright-core. Never downloads a browser. */
export async function launchBrowser({ headless = true, args = [], ...rest } = {}) {
  const { chromium } = loadPlaywright();
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless, args: [...CHROMIUM_ARGS, ...args], ...rest });
}

// ----------------------------------------------------------------- workbench helpers

/** New page at `url`, waits for the workbench to be ready. */
export async function openWorkbench(browser, url, { width = 1400, height = 900, timeoutMs = 60_000 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  await waitForWorkbench(page, { timeoutMs });
  return page;
}

export async function waitForWorkbench(page, { timeoutMs = 60_000 } = {}) {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
  // The status bar is rendered once the workbench has restored its parts.
  await page.locator('#workbench\\.parts\\.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Run a command from the command palette by its title, e.g. 'View: Toggle Terminal'. */
export async function runCommand(page, title, { timeoutMs = 15_000 } = {}) {
  const input = page.locator('.quick-input-widget input.input');
  await page.keyboard.press('F1');
  try {
    await input.waitFor({ state: 'visible', timeout: 5_000 });
  } catch {
    await page.keyboard.press('Control+Shift+P');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
  }
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: timeoutMs });
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: timeoutMs }).catch(() => {});
}

/** Text of the visible integrated terminal (DOM renderer: `.xterm-rows`), one line per row. */
export async function readTerminalText(page) {
  return page.evaluate(() => {
    const term = [...document.querySelectorAll('.terminal-wrapper.active .xterm, .xterm')].find(
      (e) => e.offsetParent !== null,
    );
    if (!term) return '';
    const rows = term.querySelector('.xterm-rows');
    if (rows && rows.textContent.trim()) return [...rows.children].map((r) => r.textContent.replace(/\u00a0/g, ' ')).join('\n');
    const a11y = term.querySelector('.xterm-accessibility-tree');
    return a11y ? [...a11y.children].map((r) => r.textContent).join('\n') : '';
  });
}

/** Wait until the visible terminal shows `text` (string or RegExp); returns the terminal text. */
export async function waitForTerminalText(page, text, { timeoutMs = 15_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await readTerminalText(page);
    if (typeof text === 'string' ? last.includes(text) : text.test(last)) return last;
    await sleep(200);
  }
  throw new Error(`terminal did not show ${text} within ${timeoutMs} ms; it shows:\n${last}`);
}

/** Status bar entries: [{ id, text, ariaLabel, tooltip }] ( id is `${extensionId}.${itemId}` for extension items). */
export async function statusBarItems(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#workbench\\.parts\\.statusbar .statusbar-item')].map((e) => {
      const a = e.querySelector('.statusbar-item-label') || e;
      return {
        id: e.id,
        text: (a.textContent || '').trim(),
        ariaLabel: a.getAttribute('aria-label') || e.getAttribute('aria-label') || '',
        tooltip: a.getAttribute('title') || '',
      };
    }),
  );
}
