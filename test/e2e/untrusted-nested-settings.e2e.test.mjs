// End-to-end: an untrusted folder that nests its values ("socksRelay": { "listen": { "host": … } }). VS Code's
// restrictedConfigurations filter works per dotted key and lets such an object through to the extension, so
// only the extension's own trust check (src/ui/workspace-policy.ts) keeps the proxy from autostarting on 0.0.0.0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, startCodeServer, statusBarItems } from './code-server.mjs';
import { accepts, listeningOn, STATUS_ID, VSIX } from './workbench.mjs';

const CS_PORT = Number(process.env.E2E_NESTED_PORT || 18962);
const FOLDER_PORT = Number(process.env.E2E_NESTED_PROXY_PORT || 18974);

let cs;
let browser;
let page;
let workspaceDir;

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trust-e2e-nested-'));
  fs.mkdirSync(path.join(workspaceDir, '.vscode'));
  fs.writeFileSync(
    path.join(workspaceDir, '.vscode', 'settings.json'),
    JSON.stringify({ socksRelay: { autoStart: true, listen: { host: '0.0.0.0', port: FOLDER_PORT }, auth: { mode: 'none' } } }, null, 2),
  );
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    workspaceTrust: true,
    settings: { 'security.workspace.trust.startupPrompt': 'never', 'socksRelay.listen.port': FOLDER_PORT + 1 },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url);
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  if (workspaceDir) fs.rmSync(workspaceDir, { recursive: true, force: true });
});

test('nested folder settings in Restricted Mode: no autostart, nothing listens on the folder\'s port', async () => {
  const deadline = Date.now() + 60_000;
  let items = [];
  while (Date.now() < deadline) {
    items = await statusBarItems(page);
    if (items.some((i) => i.id === STATUS_ID) && items.some((i) => /Restricted Mode/i.test(`${i.text} ${i.ariaLabel}`))) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(items.some((i) => /Restricted Mode/i.test(`${i.text} ${i.ariaLabel}`)), 'the folder is in Restricted Mode');
  await new Promise((r) => setTimeout(r, 4_000)); // time for an autostart to happen if it were going to
  assert.deepEqual(listeningOn(FOLDER_PORT), [], `nothing listens on ${FOLDER_PORT}`);
  assert.equal(await accepts('127.0.0.1', FOLDER_PORT), false);
  const status = (await statusBarItems(page)).find((i) => i.id === STATUS_ID);
  assert.match(`${status?.ariaLabel} ${status?.text}`, /SOCKS Relay: off/);
});
