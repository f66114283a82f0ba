/** One listening port serves SOCKS5, SOCKS4/4a and HTTP clients at the same time, told apart by the first byte. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { SocksClient } from 'socks';
import { cleanEnv, Origin, startOrigin } from '../helpers/http-tools';
import { run } from '../helpers/run';
import { startProxy } from '../helpers/servers';

let origin: Origin;
let proxy: Awaited<ReturnType<typeof startProxy>>;

before(async () => {
  origin = await startOrigin();
  proxy = await startProxy();
});

after(async () => {
  await proxy.close();
  await origin.close();
});

test('SOCKS5, SOCKS4, SOCKS4a and HTTP (forward and CONNECT) clients share one port concurrently', async () => {
  const p = proxy.port;
  const url = (who: string): string => `http://localhost:${origin.port}/hello?${who}`;
  const curl = (who: string, args: string[]) =>
    run('curl', ['-sS', '--max-time', '15', ...args, url(who)], { env: cleanEnv(), timeoutMs: 20_000 }).then((r) => ({ who, ...r }));
  const agent = new ProxyAgent(`http://127.0.0.1:${p}`);
  const rounds = 3;
  try {
    const jobs: Promise<{ who: string; code: number | null; stdout: string; stderr: string }>[] = [];
    for (let i = 0; i < rounds; i++) {
      jobs.push(curl(`socks5-${i}`, ['--socks5-hostname', `127.0.0.1:${p}`]));
      jobs.push(curl(`socks4-${i}`, ['--socks4', `127.0.0.1:${p}`]));
      jobs.push(curl(`socks4a-${i}`, ['--socks4a', `127.0.0.1:${p}`]));
      jobs.push(curl(`http-${i}`, ['-x', `http://127.0.0.1:${p}`]));
      jobs.push(curl(`connect-${i}`, ['-p', '-x', `http://127.0.0.1:${p}`]));
      jobs.push(
        undiciFetch(url(`fetch-${i}`), { dispatcher: agent, signal: AbortSignal.timeout(15_000) }).then(async (res) => ({ who: `fetch-${i}`, code: res.status === 200 ? 0 : res.status, stdout: await res.text(), stderr: '' })),
      );
      // The socks npm client speaks SOCKS4a when told version 4 with a host name.
      jobs.push(
        SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: p, type: 4 }, command: 'connect', destination: { host: 'localhost', port: origin.port }, timeout: 10_000 }).then(
          ({ socket }) =>
            new Promise((resolve) => {
              let body = '';
              socket.on('data', (d: Buffer) => (body += d.toString('latin1')));
              socket.on('close', () => resolve({ who: `socks-npm-${i}`, code: 0, stdout: body.slice(body.indexOf('\r\n\r\n') + 4), stderr: '' }));
              socket.write(`GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
            }),
        ),
      );
    }
    const results = await Promise.all(jobs);
    for (const r of results) {
      assert.equal(r.code, 0, `${r.who}: ${r.stderr}`);
      assert.equal(r.stdout, 'hello', r.who);
    }
  } finally {
    await agent.close();
  }
  const seen = proxy.server.registry.recentlyClosed().concat(proxy.server.registry.snapshot());
  const kinds = new Set(seen.map((s) => `${s.protocol}/${s.command}`));
  for (const k of ['socks5/connect', 'socks4/connect', 'http/http', 'http/connect']) assert.ok(kinds.has(k), `${k} sessions recorded (saw ${[...kinds].join(', ')})`);
  assert.ok(origin.requests.length >= rounds * 7);
});
