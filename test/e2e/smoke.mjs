#!/usr/bin/env node
// Smoke test of the e2e harness: code-server + Debian Chromium through playwright-core.
//   bash test/e2e/install-code-server.sh && node test/e2e/smoke.mjs
// Prints "1 passed, 0 failed" and exits 0 on success; screenshot in /tmp/e2e-smoke/workbench.png.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startCodeServer,
  launchBrowser,
  openWorkbench,
  runCommand,
  waitForTerminalText,
  statusBarItems,
} from './code-server.mjs';

const PORT = Number(process.env.E2E_PORT || 18931);
const OUT_DIR = process.env.E2E_OUT_DIR || '/tmp/e2e-smoke';
const t0 = Date.now();
const log = (...a) => console.log(`[smoke +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

fs.mkdirSync(OUT_DIR, { recursive: true });
const workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-smoke-ws-'));
fs.writeFileSync(path.join(workspaceDir, 'README.md'), '# smoke workspace\n');

let cs;
let browser;
let page;
let ok = false;
try {
  cs = await startCodeServer({ port: PORT, workspaceDir });
  log('code-server up at', cs.url);
  browser = await launchBrowser();
  log('chromium', browser.version());
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
  log('workbench ready');

  await runCommand(page, 'View: Toggle Terminal');
  await page.locator('.terminal-wrapper .xterm').first().waitFor({ state: 'visible', timeout: 30_000 });
  // Wait for the shell prompt before typing.
  await waitForTerminalText(page, /[$#]\s*$/m, { timeoutMs: 30_000 });
  log('terminal open');
  await page.locator('.terminal-wrapper .xterm').first().click();
  await page.keyboard.type('echo hello-$((6*7))-e2e');
  await page.keyboard.press('Enter');
  const text = await waitForTerminalText(page, 'hello-42-e2e', { timeoutMs: 20_000 });
  log('terminal output seen:\n' + text.split('\n').filter((l) => l.trim()).join('\n'));

  const items = await statusBarItems(page);
  log('status bar items:', JSON.stringify(items.filter((i) => i.id || i.text)));
  ok = true;
} catch (err) {
  console.error(err);
  if (cs) console.error('--- code-server output (tail) ---\n' + cs.output().slice(-4000));
} finally {
  if (page) {
    await page.screenshot({ path: path.join(OUT_DIR, 'workbench.png') }).catch((e) => console.error(e));
    log('screenshot', path.join(OUT_DIR, 'workbench.png'));
  }
  if (browser) await browser.close().catch(() => {});
  if (cs) await cs.stop();
  fs.rmSync(workspaceDir, { recursive: true, force: true });
}
console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
process.exit(ok ? 0 : 1);
