/** The CLI's --upstream (repeatable: a chain) and --rules FILE (reloaded on SIGHUP), driven with curl. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Daemon, have, startMicrosocks, startTinyproxy, tempDir } from '../helpers/daemons';
import { run } from '../helpers/run';
import { Running, startHttpServer } from '../helpers/servers';

const CLI = path.resolve(__dirname, '../../../dist/cli.js');
const env = { ...process.env, NO_PROXY: '', no_proxy: '', ALL_PROXY: '', all_proxy: '', http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '' };
const missing = ['microsocks', 'tinyproxy', 'curl'].filter((c) => !have(c));
// In CI (root, tools installed by .ci/run) nothing may be skipped: a missing piece must fail the run.
const skip = process.env.CI ? false : missing.length > 0 ? `missing ${missing.join(', ')}` : !fs.existsSync(CLI) ? 'dist/cli.js not built (node esbuild.js)' : false;
const TP = { user: 'clitp', pass: 'cli-tp-secret' };

let web: Running;
let ms: Daemon;
let tiny: Daemon;
const children: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  if (skip) return;
  web = await startHttpServer();
  ms = await startMicrosocks();
  tiny = await startTinyproxy(TP);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all([web, ms, tiny].filter(Boolean).map((d) => d.close().catch(() => undefined)));
});

async function startCli(args: string[]): Promise<{ port: number; stderr(): string; child: ChildProcessWithoutNullStreams }> {
  const child = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', ...args], { env });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${stderr}`)), 10_000);
    child.stdout.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  const m = /listening on 127\.0\.0\.1:(\d+)/.exec(banner);
  assert.ok(m, banner);
  return { port: Number(m[1]), stderr: () => stderr, child };
}

function curl(port: number, url: string): ReturnType<typeof run> {
  return run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${port}`, url], { env, timeoutMs: 15_000 });
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
}

test('CLI --upstream twice: a chain microsocks → tinyproxy; the password never shows in logs', { skip }, async () => {
  const cli = await startCli(['--upstream', `socks5h://127.0.0.1:${ms.port}`, '--upstream', `http://${TP.user}:${TP.pass}@127.0.0.1:${tiny.port}`]);
  const r = await curl(cli.port, `http://localhost:${web.port}/cli-chain`);
  assert.equal(r.stdout, 'hello /cli-chain', r.stderr + cli.stderr());
  await waitFor(() => /via default → cli: ok/.test(cli.stderr()));
  assert.match(cli.stderr(), /routing: upstreams: cli = socks5h:\/\/127\.0\.0\.1:\d+ → http:\/\/clitp@127\.0\.0\.1:\d+; 0 rule\(s\); default → cli/);
  assert.match(cli.stderr(), /connect localhost:\d+ via default → cli: ok/);
  assert.ok(!cli.stderr().includes(TP.pass));
});

test('CLI --rules FILE: block and named-upstream rules act; SIGHUP reloads the file', { skip }, async () => {
  const file = path.join(tempDir('rules'), 'rules.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      upstreams: [{ name: 'ms', url: `socks5h://127.0.0.1:${ms.port}` }],
      rules: [
        { match: '*.blocked.test', action: 'block' },
        { match: 'localhost', action: 'ms' },
      ],
      default: 'direct',
    }),
  );
  const cli = await startCli(['--rules', file]);
  let r = await curl(cli.port, 'http://www.blocked.test/');
  assert.equal(r.code, 97, r.stderr);
  r = await curl(cli.port, `http://localhost:${web.port}/rules`);
  assert.equal(r.stdout, 'hello /rules', r.stderr + cli.stderr());
  await waitFor(() => /via rule 2 \(localhost\) → ms: ok/.test(cli.stderr()));
  assert.match(cli.stderr(), /via rule 1 \(\*\.blocked\.test\) → block/);
  assert.match(cli.stderr(), /via rule 2 \(localhost\) → ms: ok/);
  fs.writeFileSync(file, JSON.stringify({ default: 'block' }));
  cli.child.kill('SIGHUP');
  await waitFor(() => /SIGHUP: reloaded/.test(cli.stderr()));
  r = await curl(cli.port, `http://localhost:${web.port}/after`);
  assert.equal(r.code, 97, r.stderr);
  fs.writeFileSync(file, '{"rules": [');
  cli.child.kill('SIGHUP');
  await waitFor(() => /SIGHUP: kept the previous rules/.test(cli.stderr()));
  assert.match(cli.stderr(), /SIGHUP: kept the previous rules: --rules .*rules\.json: /);
});

test('CLI: a bad upstream URL or rules file exits 2 with a clear message and no password', { skip }, async () => {
  let r = await run(process.execPath, [CLI, '--upstream', 'socks5://me:topsecret@proxy.example:99999']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid upstream URL "socks5:\/\/me:\*\*\*@proxy\.example:99999": the port must be/);
  assert.ok(!r.stderr.includes('topsecret'));
  const file = path.join(tempDir('rules'), 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ rules: [{ match: '10.0.0.0/40', action: 'direct' }] }));
  r = await run(process.execPath, [CLI, '--rules', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /rule 1: invalid match "10\.0\.0\.0\/40": the prefix length must be 0 to 32/);
});
