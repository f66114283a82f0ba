/** Two more clients nobody here wrote: Chromium (SOCKS5 and HTTP proxy modes) and proxychains4 wrapping a plain program. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../helpers/run';
import { MemoryLogger, Running, startHttpServer, startProxy, waitForClosed } from '../helpers/servers';
import { ProxyServer } from '../../src/core/server';

const CHROMIUM = '/usr/bin/chromium';
const env = { ...process.env, NO_PROXY: '', no_proxy: '', ALL_PROXY: '', all_proxy: '', HTTP_PROXY: '', http_proxy: '' };
let web: Running;
let proxy: Running & { server: ProxyServer; logger: MemoryLogger };
let tmp: string;

before(async () => {
  web = await startHttpServer();
  proxy = await startProxy();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socks-relay-clients-'));
});
after(async () => {
  await web.close();
  await proxy.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function chromiumDump(proxyServer: string, url: string): Promise<string> {
  const r = await run(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${fs.mkdtempSync(path.join(tmp, 'chromium-'))}`,
      `--proxy-server=${proxyServer}`,
      // Chromium never proxies loopback unless told to drop that implicit bypass.
      '--proxy-bypass-list=<-loopback>',
      '--dump-dom',
      url,
    ],
    { env, timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  return r.stdout;
}

test('Chromium through socks5:// loads a page, and the proxy resolves the name', async () => {
  const dom = await chromiumDump(`socks5://127.0.0.1:${proxy.port}`, `http://localhost:${web.port}/from-chromium`);
  assert.match(dom, /hello \/from-chromium/);
  // Chromium's SOCKS5 client sends the host name (remote DNS).
  await waitForClosed(proxy.server.registry, (s) => s.protocol === 'socks5' && s.destination === `localhost:${web.port}`, 10_000);
});

test('Chromium through the HTTP side of the same port', async () => {
  const dom = await chromiumDump(`http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${web.port}/chromium-http`);
  assert.match(dom, /hello \/chromium-http/);
  await waitForClosed(proxy.server.registry, (s) => s.protocol === 'http' && (s.destination ?? '').includes(String(web.port)), 10_000);
});

test('proxychains4 routes an unmodified program (curl without proxy flags) through the proxy', async () => {
  const conf = path.join(tmp, 'proxychains.conf');
  fs.writeFileSync(conf, `strict_chain\nproxy_dns\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 127.0.0.1 ${proxy.port}\n`);
  const r = await run('proxychains4', ['-f', conf, 'curl', '-sS', '--max-time', '10', `http://127.0.0.1:${web.port}/via-proxychains`], { env, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello /via-proxychains');
  await waitForClosed(proxy.server.registry, (s) => s.protocol === 'socks5' && s.destination === `127.0.0.1:${web.port}` && s.outcome === 'ok');
});
