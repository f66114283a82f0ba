/**
 * The headless CLI against the release blocker: after UDP ASSOCIATE, datagrams to port 0 (IPv4, IPv6, a
 * name) and to bad names used to throw ERR_SOCKET_BAD_PORT out of dgram.send and end the process.
 * SOCKS_RELAY_CLI overrides the path of the CLI under test (to run this against another build).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { run } from '../helpers/run';
import { startHttpServer, startUdpEcho } from '../helpers/servers';
import { associate, domainAddr, rawDatagram } from '../helpers/udp';
import { decodeUdpHeader } from '../../src/core/socks5/protocol';

const CLI = process.env.SOCKS_RELAY_CLI ?? path.resolve(__dirname, '../../../dist/cli.js');
const env = { ...process.env, NO_PROXY: '', no_proxy: '' };

test('CLI: undeliverable UDP datagrams are dropped with a debug line; the process stays up and serves', async () => {
  const web = await startHttpServer();
  const echo = await startUdpEcho();
  const child = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', '--log-level', 'debug'], { env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const banner = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(banner)?.[1]);
    assert.ok(port > 0, banner);
    const a = await associate(port);
    try {
      a.send(rawDatagram([1, 127, 0, 0, 1], 0, 'v4 port 0'));
      a.send(rawDatagram(domainAddr('localhost'), 0, 'name port 0'));
      a.send(rawDatagram([4, ...Array(15).fill(0), 1], 0, 'v6 port 0'));
      a.send(rawDatagram(domainAddr('bad name\u0000'), echo.port, 'bad name'));
      a.send(rawDatagram(domainAddr('nothing-here.invalid'), echo.port, 'unresolvable'));
      a.send(rawDatagram([1, 127, 0, 0, 1], echo.port, 'after'));
      const answer = await Promise.race([a.next(5_000), exited.then((code) => assert.fail(`the CLI exited (${code}): ${stderr}`))]);
      assert.ok(answer, `no UDP answer; stderr:\n${stderr}`);
      assert.equal(decodeUdpHeader(answer).payload.toString(), 'echo:after');
      for (let i = 0; i < 100 && !stderr.includes('cannot resolve nothing-here.invalid'); i++) await new Promise((r) => setTimeout(r, 30));
    } finally {
      a.close();
    }
    assert.equal(child.exitCode, null, `the CLI is still running; stderr:\n${stderr}`);
    assert.match(stderr, /dropped UDP datagram to 127\.0\.0\.1:0: destination port 0/);
    assert.match(stderr, /dropped UDP datagram to localhost:0: destination port 0/);
    assert.match(stderr, /dropped UDP datagram to \[::1\]:0: destination port 0/);
    assert.match(stderr, /dropped UDP datagram to bad name\\x00:\d+: not a valid host name/);
    assert.match(stderr, /cannot resolve nothing-here\.invalid/);
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${port}`, `http://localhost:${web.port}/after-udp`], { env });
    assert.equal(r.stdout, 'hello /after-udp', r.stderr);
  } finally {
    child.kill('SIGKILL');
    await web.close();
    await echo.close();
  }
});
