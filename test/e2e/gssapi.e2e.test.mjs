// End-to-end: Kerberos (GSSAPI, RFC 1961) where users run it, in code-server's extension host with the
// packaged extension (koffi and its binary come from the .vsix). A real MIT KDC made for this file, a ticket
// from kinit in code-server's environment, Dante's sockd requiring GSSAPI as the upstream, and Dante's own
// client (socksify) as a Kerberos client of the relay: the Sessions view names the principal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, openWorkbench, runCommand, startCodeServer, waitForTerminalText } from './code-server.mjs';
import { newTerminal, NO_PROXY_ENV, openSidebar, ROOT, typeLine, VSIX, workbench } from './workbench.mjs';

// The KDC and Dante helpers are the interop tests' (compiled by `npm run compile`, which npm test runs first).
const require = createRequire(import.meta.url);
const { danteGssapiPrefix, socksifyEnv, startDanteGssapi, startKdc, REALM } = require(path.join(ROOT, 'out/test/helpers/kdc.js'));

const CS_PORT = Number(process.env.E2E_GSSAPI_PORT || 18990);
const PROXY_PORT = CS_PORT + 1;
const PRINCIPAL = `alice@${REALM}`;

let cs;
let browser;
let page;
let web;
let webPort;
let kdc;
let dante;
let sockd;
let workspaceDir;
const { shot, waitFor, viewRows } = workbench(() => page, { prefix: 'gssapi-' });
const type = (line) => typeLine(page, line);

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} missing: run npm run package`);
  dante = danteGssapiPrefix();
  kdc = await startKdc();
  const keytab = kdc.addService('rcmd/localhost');
  const ticket = kdc.kinit();
  sockd = await startDanteGssapi(dante, kdc, keytab);
  web = http.createServer((req, res) => res.end(`gss-hello ${req.url}\n`));
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  webPort = web.address().port;
  workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-e2e-gssapi-ws-'));
  // Dante's client as a Kerberos client of the relay, in a script the terminal runs (its environment is long).
  const env = socksifyEnv(dante, kdc, PROXY_PORT, ticket);
  const vars = ['KRB5_CONFIG', 'KRB5CCNAME', 'SOCKS_CONF', 'SOCKS_LIBRARY', 'SOCKS_AUTOADD_LANROUTES'].map((k) => `${k}='${env[k]}'`).join(' ');
  fs.writeFileSync(
    path.join(workspaceDir, 'kerberos-client.sh'),
    `#!/bin/sh\n# curl connects directly; Dante's library turns that into SOCKS5 + GSSAPI to the relay.\nexec env -u ALL_PROXY -u all_proxy -u HTTP_PROXY -u http_proxy ${vars} ${path.join(dante, 'bin', 'socksify')} curl -sS --max-time 15 --noproxy '*' "$1"\n`,
    { mode: 0o755 },
  );
  cs = await startCodeServer({
    port: CS_PORT,
    vsixPath: VSIX,
    workspaceDir,
    settings: {
      'socksRelay.listen.port': PROXY_PORT,
      'socksRelay.auth.gssapiKeytab': keytab,
      'socksRelay.upstreams': [{ name: 'corp', url: `socks5h://localhost:${sockd.port}?gssapi` }],
      'socksRelay.activeUpstream': 'corp',
      'terminal.integrated.defaultProfile.linux': 'bash',
      'workbench.colorTheme': 'Default Dark Modern',
    },
    // The extension host (and its terminals) inherit the realm and the ticket cache, as after a user's kinit.
    env: { ...NO_PROXY_ENV, ...kdc.env, KRB5CCNAME: ticket },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, cs.url, { width: 1400, height: 900 });
  await openSidebar(page, { widen: 420 });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cs?.stop();
  web?.close();
  await sockd?.close();
  await kdc?.close();
  if (workspaceDir) fs.rmSync(workspaceDir, { recursive: true, force: true });
});

test('the Listener shows Kerberos (GSSAPI) offered with the keytab once the proxy runs', async () => {
  await runCommand(page, 'SOCKS Relay: Start Proxy');
  const rows = await waitFor('a Kerberos row', async () => {
    const r = await viewRows('Configuration');
    return r.some((x) => x === 'Kerberos (GSSAPI) offered · keytab rcmd_localhost.keytab') ? r : undefined;
  }, 30_000);
  assert.ok(rows.some((x) => /^Listener 127\.0\.0\.1:\d+ · running/.test(x)), JSON.stringify(rows));
  await shot('gssapi-listener', page.locator('#workbench\\.parts\\.sidebar'));
});

test('a terminal reaches the web through the Kerberos-only Dante upstream: the extension host did GSSAPI with confidentiality', async () => {
  await newTerminal(page);
  await type(`curl -sS --max-time 15 --noproxy '' -x "$ALL_PROXY" http://127.0.0.1:${webPort}/through-kerberos-upstream`);
  await waitForTerminalText(page, 'gss-hello /through-kerberos-upstream', { timeoutMs: 30_000 });
  const named = new RegExp(`gssapi/confidentiality%${PRINCIPAL.replace(/\./g, '\\.')}`);
  await waitFor('Dante naming the principal', async () => (named.test(sockd.output()) ? true : undefined), 10_000).catch((err) => {
    throw new Error(`${err.message}\n${sockd.output()}`);
  });
  const rows = await waitFor('a session through corp', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.startsWith(`127.0.0.1:${webPort}`) && x.includes('corp')) ? r : undefined;
  });
  assert.ok(rows);
});

test("Dante's Kerberos client through the relay: the session row shows the principal", async () => {
  await type(`./kerberos-client.sh http://127.0.0.1:${webPort}/kerberos-client`);
  await waitForTerminalText(page, 'gss-hello /kerberos-client', { timeoutMs: 30_000 });
  const rows = await waitFor('a session row with the principal', async () => {
    const r = await viewRows('Sessions');
    return r.find((x) => x.startsWith(`127.0.0.1:${webPort}`) && x.includes(`Kerberos ${PRINCIPAL}`) && x.includes('corp')) ? r : undefined;
  }, 20_000);
  assert.ok(rows);
  await page.mouse.move(1300, 20);
  await shot('gssapi-sessions', page.locator('#workbench\\.parts\\.sidebar'));
});
