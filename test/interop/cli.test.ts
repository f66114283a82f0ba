/** The headless CLI as a user runs it: prints where it listens, logs sessions, stops cleanly on Ctrl-C. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { run } from '../helpers/run';
import { startHttpServer } from '../helpers/servers';

const CLI = path.resolve(__dirname, '../../../dist/cli.js');
const env = { ...process.env, NO_PROXY: '', no_proxy: '' };

test('CLI: listens, authenticates, logs the session and exits 0 on SIGINT', async () => {
  const web = await startHttpServer();
  const child = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', '--user', 'cli', '--log-level', 'info'], {
    env: { ...env, SOCKS_RELAY_PASS: 'cli-secret' },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const banner = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const m = /listening on 127\.0\.0\.1:(\d+) \(socks5:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+\) with username\/password/.exec(banner);
    assert.ok(m, banner);
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${m[1]}`, '--proxy-user', 'cli:cli-secret', `http://localhost:${web.port}/cli`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello /cli');
    // The session line is logged when the session closes.
    for (let i = 0; i < 50 && !/connect localhost:\d+ via direct: ok/.test(stderr); i++) await new Promise((res) => setTimeout(res, 50));
    assert.match(stderr, /#1 127\.0\.0\.1:\d+ connect localhost:\d+ via direct: ok \(↑\d+ B ↓\d+(\.\d)? [KB ]*B?/);
    assert.ok(!stderr.includes('cli-secret'), 'password never logged');
    // The read path the sessions take, on the Node running the CLI (the one running the tests).
    assert.match(stderr, new RegExp(`info  read path: own buffers \\(onread\\), Node ${process.version.replace(/\./g, '\\.')}\n`));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exit, 0);
    assert.match(stderr, /SIGINT: shutting down/);
  } finally {
    child.kill('SIGKILL');
    await web.close();
  }
});

test('CLI: a port in use gives a clear message and exit code 2', async () => {
  const web = await startHttpServer();
  try {
    const r = await run(process.execPath, [CLI, '--port', String(web.port)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`port ${web.port} is already in use`));
  } finally {
    await web.close();
  }
});

test('CLI: bad arguments are refused with usage', async () => {
  const r = await run(process.execPath, [CLI, '--port', 'seventy']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--port must be a whole number/);
  assert.match(r.stderr, /Usage: socks-relay/);
});

test('CLI: --no-http and --no-socks4 turn those protocols off on the shared port', async () => {
  const web = await startHttpServer();
  const child = spawn(process.execPath, [CLI, '--port', '0', '--no-http', '--no-socks4'], { env });
  try {
    const banner = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    const port = /127\.0\.0\.1:(\d+)/.exec(banner)?.[1];
    assert.ok(port, banner);
    assert.ok(!banner.includes('http://'), 'no HTTP proxy URL in the banner when HTTP is off');
    const viaHttp = await run('curl', ['-sS', '--max-time', '5', '-x', `http://127.0.0.1:${port}`, `http://127.0.0.1:${web.port}/`], { env });
    assert.notEqual(viaHttp.code, 0, 'HTTP proxy refused');
    const via4 = await run('curl', ['-sS', '--max-time', '5', '--socks4', `127.0.0.1:${port}`, `http://127.0.0.1:${web.port}/`], { env });
    assert.notEqual(via4.code, 0, 'SOCKS4 refused');
    const via5 = await run('curl', ['-sS', '--max-time', '5', '--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${web.port}/five`], { env });
    assert.equal(via5.stdout, 'hello /five', via5.stderr);
  } finally {
    child.kill('SIGKILL');
    await web.close();
  }
});

test('CLI: --workers 2 serves from two processes and Ctrl-C stops them all cleanly', async () => {
  const web = await startHttpServer();
  const child = spawn(process.execPath, [CLI, '--port', '0', '--workers', '2'], { env, detached: true });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const banner = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    const port = /127\.0\.0\.1:(\d+)/.exec(banner)?.[1];
    assert.ok(port, banner);
    for (let i = 0; i < 4; i++) {
      const r = await run('curl', ['-sS', '--max-time', '5', '--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${web.port}/w${i}`], { env });
      assert.equal(r.stdout, `hello /w${i}`, r.stderr);
    }
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Like Ctrl-C in a terminal: SIGINT to the whole process group (primary and workers).
    process.kill(-(child.pid as number), 'SIGINT');
    assert.equal(await exit, 0, stderr);
  } finally {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
    await web.close();
  }
});
