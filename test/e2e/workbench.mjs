// Helpers the end-to-end files share: reading the workbench (status bar, sidebar views), waiting with a
// screenshot on timeout, and checking from outside what listens where.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { runCommand, statusBarItems, waitForTerminalText } from './code-server.mjs';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
/** The packaged extension under test (E2E_VSIX: another build, e.g. an older commit's, to see a test fail there). */
export const VSIX = process.env.E2E_VSIX || path.join(ROOT, 'socks-relay.vsix');
export const OUT = path.join(ROOT, 'test-output', 'e2e');
export const STATUS_ID = 'socks-relay.socks-relay.socksRelay.status';

/** Workbench readers bound to the page `getPage()` returns; `prefix` names this file's timeout screenshots. */
export function workbench(getPage, { prefix = '' } = {}) {
  async function shot(name, locator) {
    fs.mkdirSync(OUT, { recursive: true });
    const file = path.join(OUT, `${name}.png`);
    await (locator ?? getPage()).screenshot({ path: file });
    return file;
  }

  async function statusText() {
    const item = (await statusBarItems(getPage())).find((i) => i.id === STATUS_ID);
    return item ? `${item.ariaLabel} | ${item.text}` : '';
  }

  async function waitFor(what, fn, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      last = await fn();
      if (last) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    await shot(`${prefix}timeout-${what.replace(/\W+/g, '-')}`).catch(() => undefined);
    throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
  }

  /** Visible rows of a sidebar view, by its pane title: label and description as shown (the row's aria-label is its tooltip). */
  async function viewRows(title) {
    return getPage().evaluate((t) => {
      const pane = [...document.querySelectorAll('.pane')].find((p) => p.querySelector('.pane-header')?.textContent?.includes(t));
      if (!pane) return [];
      return [...pane.querySelectorAll('.monaco-list-row')].map((r) =>
        [r.querySelector('.label-name')?.textContent, r.querySelector('.label-description')?.textContent].filter(Boolean).join(' ').replace(/\s+/g, ' ').trim(),
      );
    }, title);
  }

  return { shot, statusText, waitFor, viewRows };
}

/** True when a TCP connection to host:port is accepted. */
export function accepts(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2_000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

/** Local addresses listening on `port`, from the kernel's own table (`ss -ltn`), e.g. ['127.0.0.1:18971']. */
export function listeningOn(port) {
  return execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3])
    .filter(Boolean);
}

/**
 * Opens the SOCKS Relay sidebar (unless it is open) and widens it by `widen` pixels, dragging its edge as a user
 * would, so that rows are readable in screenshots; then moves the pointer out of the way (no tooltip in shots).
 */
export async function openSidebar(page, { widen = 200 } = {}) {
  if (await page.locator('.pane-header', { hasText: 'Configuration' }).isVisible()) return;
  await page.locator('.activitybar .action-item a[aria-label^="SOCKS Relay"]').first().click();
  await page.locator('.pane-header', { hasText: 'Configuration' }).waitFor({ state: 'visible', timeout: 30_000 });
  const box = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
  if (box && widen > 0) {
    await page.mouse.move(box.x + box.width + 1, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width + widen, box.y + 300, { steps: 8 });
    await page.mouse.up();
  }
  await page.mouse.move(box ? box.x + box.width + widen + 400 : 900, 20);
}

/** A new integrated terminal from the palette, with its prompt shown and the keyboard in it. */
export async function newTerminal(page) {
  await runCommand(page, 'Terminal: Create New Terminal');
  const term = page.locator('.terminal-wrapper.active .xterm').first();
  await term.waitFor({ state: 'visible', timeout: 30_000 });
  await waitForTerminalText(page, /[$#]\s*$/m, { timeoutMs: 30_000 });
  await term.click({ force: true });
}

/** Types a line into whatever has the keyboard (the terminal) and presses Enter. */
export async function typeLine(page, line) {
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/** Proxy variables cleared for code-server, so its terminals start from the relay's values only. */
export const NO_PROXY_ENV = { ALL_PROXY: '', all_proxy: '', HTTP_PROXY: '', http_proxy: '', HTTPS_PROXY: '', https_proxy: '', NO_PROXY: '', no_proxy: '' };

/**
 * A local web server: `/slow` streams `ticks` lines half a second apart, then `slow-done` (a session to watch
 * while it is live); anything else answers `${greeting} ${path}` at once.
 */
export async function startWebServer(greeting, ticks) {
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`tick ${++n}\n`);
        if (n === ticks) {
          clearInterval(t);
          res.end('slow-done\n');
        }
      }, 500);
      return;
    }
    res.end(`${greeting} ${req.url}\n`);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
