/**
 * The egress tunnel's acceptance test, with a real network boundary: the relay runs in a network
 * namespace that has only loopback, the agent in the host namespace, and the "port forward" between them
 * is two socat processes bridging TCP through a Unix socket (the filesystem is shared across namespaces).
 * Everything the clients in the namespace reach on the host's 127.0.0.1, they reach through the tunnel.
 * Needs root (ip netns); skipped otherwise, with the reason.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { have, isRoot, tempDir, waitForPort } from '../helpers/daemons';
import { cleanEnv } from '../helpers/http-tools';
import { PYTHON, run } from '../helpers/run';
import { Running, serveTcp, startEchoServer, startHttpServer } from '../helpers/servers';

const CLI = path.resolve(__dirname, '../../../dist/cli.js');
const CLIENT = path.resolve(__dirname, '../helpers/socks-client-process.js');
const NS = `srelay-egress-${process.pid}-${randomBytes(3).toString('hex')}`;
const SOCK = `/tmp/${NS}.sock`;
const USER = 'nsuser';
const PASS = 'ns-pass-1234';
const SECRET = randomBytes(24).toString('base64url');
const WRONG_SECRET = randomBytes(24).toString('base64url');
/** The namespace's own echo server listens here; the rules route it "direct" and everything else "egress". */
const NS_LOCAL = '127.0.0.2';
const MB20 = 20 * 1024 * 1024;

function netnsProblem(): string | false {
  if (!isRoot) return 'needs root (ip netns)';
  const missing = ['ip', 'socat', 'curl', 'wget'].filter((c) => !have(c) && !fs.existsSync(`/usr/sbin/${c}`));
  // In CI (root, tools installed by scripts/ensure-tools.sh) a missing piece must fail the run, not skip it.
  if (missing.length > 0 && !process.env.CI) return `missing ${missing.join(', ')} (scripts/ensure-tools.sh installs them)`;
  if (!fs.existsSync(CLI) && !process.env.CI) return 'dist/cli.js not built (node esbuild.js)';
  try {
    execFileSync('ip', ['netns', 'add', NS], { stdio: 'pipe' });
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
    return false;
  } catch (err) {
    return `ip netns is unusable here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}
const skip = netnsProblem();

const env = cleanEnv();
const children = new Set<ChildProcess>();
const servers: Running[] = [];
let relay: Proc;
let agent: Proc | undefined;
let client: Client;
let web: Running;
let hostEcho: Running;
let source: Running & { sha: string };
let sink: Running;
let trickle: Running;
let nsEchoPort: number;
let relayPort: number;
let forwardPort: number;

interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
}

/** Spawns in its own process group (socat forks), inside the namespace when `inNs`; killed in after(). */
function spawnProc(command: string, args: string[], options: { inNs?: boolean; env?: NodeJS.ProcessEnv } = {}): Proc {
  const [cmd, argv] = options.inNs ? ['ip', ['netns', 'exec', NS, command, ...args]] : [command, args];
  const child = spawn(cmd, argv, { env: options.env ?? env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
  child.on('error', (e) => (err += `spawn error: ${e.message}`));
  return { child, stdout: () => out, stderr: () => err };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Polls (bounded) until check() holds; the failure message says what was awaited and shows `context`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, context: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 2_000; i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context()}`);
}

/** The SOCKS client process inside the namespace: commands by id, answers as promises. */
interface Client {
  send(cmd: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves on the command's first progress line. */
  progress(id: string, timeoutMs?: number): Promise<void>;
}

function startClient(): Client {
  const proc = spawnProc(process.execPath, [CLIENT], { inNs: true, env: { ...env, PROXY_PORT: String(relayPort), PROXY_USER: USER, PROXY_PASS: PASS } });
  const waiting = new Map<string, (a: Record<string, unknown>) => void>();
  const progress = new Map<string, () => void>();
  let buffered = '';
  proc.child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const a = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      const id = String(a.id);
      if (a.done) waiting.get(id)?.(a);
      else progress.get(id)?.();
    }
  });
  let n = 0;
  return {
    send(cmd, timeoutMs = 60_000) {
      const id = String(cmd.id ?? `c${n++}`);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the namespace client did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms; stderr: ${proc.stderr()}`)), timeoutMs);
        waiting.set(id, (a) => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(a);
        });
        proc.child.stdin?.write(JSON.stringify({ ...cmd, id }) + '\n');
      });
    },
    progress(id, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no progress on ${id} within ${timeoutMs} ms`)), timeoutMs);
        progress.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function startAgent(secret: string): Proc {
  const proc = spawnProc(process.execPath, [CLI, 'egress-agent', '--connect', `http://127.0.0.1:${forwardPort}/`], { env: { ...env, SOCKS_RELAY_EGRESS_TOKEN: secret } });
  agent = proc;
  return proc;
}

/** A free port on the host's loopback in this suite's range (19100-19199). */
async function freeHostPort(): Promise<number> {
  for (let port = 19100 + Math.floor(Math.random() * 50); port < 19200; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port in 19100-19199');
}

function curlInNs(args: string[]): ReturnType<typeof run> {
  return run('ip', ['netns', 'exec', NS, 'curl', '-sS', '--max-time', '15', ...args], { env, timeoutMs: 20_000 });
}

before(async () => {
  if (skip) return;
  // Host side: what the namespace may reach only through the tunnel.
  web = await startHttpServer();
  hostEcho = await startEchoServer();
  const payload = randomBytes(MB20);
  source = Object.assign(
    await serveTcp(
      net.createServer((s) => {
        s.on('error', () => undefined);
        s.end(payload);
      }),
    ),
    { sha: createHash('sha256').update(payload).digest('hex') },
  );
  sink = await serveTcp(
    net.createServer({ allowHalfOpen: true }, (s) => {
      const hash = createHash('sha256');
      let bytes = 0;
      s.on('error', () => undefined);
      s.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      s.on('end', () => s.end(`${bytes} ${hash.digest('hex')}\n`));
    }),
  );
  // Sends without end, for as long as the session lasts: a transfer to cut in the middle.
  trickle = await serveTcp(
      net.createServer((s) => {
        s.on('error', () => undefined);
        const chunk = randomBytes(64 * 1024);
        const timer = setInterval(() => {
          if (s.writableLength < 1 << 20) s.write(chunk);
        }, 5);
        s.once('close', () => clearInterval(timer));
      }),
  );
  servers.push(web, hostEcho, source, sink, trickle);

  // Namespace side: the relay, its own echo server (route "direct"), and the namespace end of the bridge.
  const nsEcho = spawnProc(
    process.execPath,
    ['-e', `require('net').createServer({allowHalfOpen:true},s=>{s.on('error',()=>{});s.pipe(s)}).listen(0,'${NS_LOCAL}',function(){console.log(this.address().port)})`],
    { inNs: true },
  );
  await until('the namespace echo server', () => /^\d+\n/.test(nsEcho.stdout()), 10_000, nsEcho.stderr);
  nsEchoPort = Number(nsEcho.stdout().trim());
  const rules = path.join(tempDir('egress-netns'), 'rules.json');
  fs.writeFileSync(rules, JSON.stringify({ rules: [{ match: NS_LOCAL, action: 'direct' }], default: 'egress' }));
  relay = spawnProc(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', '--egress-listen', '127.0.0.1:0', '--rules', rules, '--user', USER, '--pass', PASS], {
    inNs: true,
    env: { ...env, SOCKS_RELAY_EGRESS_TOKEN: SECRET },
  });
  await until('the relay banner', () => /Egress endpoint on 127\.0\.0\.1:\d+/.test(relay.stdout()), 10_000, () => relay.stdout() + relay.stderr());
  relayPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(relay.stdout())?.[1]);
  const endpointPort = Number(/Egress endpoint on 127\.0\.0\.1:(\d+)/.exec(relay.stdout())?.[1]);
  assert.ok(relayPort > 0 && endpointPort > 0, relay.stdout());
  const nsSocat = spawnProc('socat', [`UNIX-LISTEN:${SOCK},fork,unlink-early`, `TCP:127.0.0.1:${endpointPort}`], { inNs: true });
  await until('the namespace socat socket', () => fs.existsSync(SOCK), 5_000, nsSocat.stderr);
  forwardPort = await freeHostPort();
  const hostSocat = spawnProc('socat', [`TCP-LISTEN:${forwardPort},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${SOCK}`]);
  await waitForPort(forwardPort, 5_000, hostSocat.child);
  client = startClient();
  const first = startAgent(SECRET);
  await until('the agent to connect', () => /egress agent connected/.test(first.stdout()), 15_000, () => first.stdout() + first.stderr() + relay.stderr());
  await until('the relay to see the agent', () => /egress: agent connected from/.test(relay.stderr()), 5_000, relay.stderr);
});

after(async () => {
  for (const c of children) killGroup(c);
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  try {
    execFileSync('ip', ['netns', 'delete', NS], { stdio: 'ignore' });
  } catch {
    // never created
  }
  fs.rmSync(SOCK, { force: true });
});

test('from inside the namespace, curl (SOCKS5, HTTP forward, CONNECT), PySocks and wget reach a host-only server through the tunnel', { skip, timeout: 90_000 }, async () => {
  const target = `http://127.0.0.1:${web.port}`;
  let r = await curlInNs(['--socks5-hostname', `${USER}:${PASS}@127.0.0.1:${relayPort}`, `${target}/curl-socks`]);
  assert.equal(r.stdout, 'hello /curl-socks', r.stderr + relay.stderr());
  r = await curlInNs(['-x', `http://${USER}:${PASS}@127.0.0.1:${relayPort}`, `${target}/curl-forward`]);
  assert.equal(r.stdout, 'hello /curl-forward', r.stderr);
  r = await curlInNs(['-p', '-x', `http://${USER}:${PASS}@127.0.0.1:${relayPort}`, `${target}/curl-connect`]);
  assert.equal(r.stdout, 'hello /curl-connect', r.stderr);
  const py = [
    'import socks, sys',
    's = socks.socksocket()',
    `s.set_proxy(socks.SOCKS5, '127.0.0.1', ${relayPort}, rdns=True, username='${USER}', password='${PASS}')`,
    's.settimeout(15)',
    `s.connect(('127.0.0.1', ${web.port}))`,
    "s.sendall(b'GET /pysocks HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n')",
    "data = b''",
    'while True:',
    '    c = s.recv(65536)',
    '    if not c: break',
    '    data += c',
    "sys.stdout.write(data.split(b'\\r\\n\\r\\n', 1)[1].decode())",
  ].join('\n');
  r = await run('ip', ['netns', 'exec', NS, PYTHON, '-c', py], { env, timeoutMs: 20_000 });
  assert.equal(r.stdout, 'hello /pysocks', r.stderr);
  r = await run('ip', ['netns', 'exec', NS, 'wget', '-q', '-O', '-', '-T', '15', '-t', '1', '-e', 'use_proxy=yes', '-e', `http_proxy=http://127.0.0.1:${relayPort}`, `--proxy-user=${USER}`, `--proxy-password=${PASS}`, `${target}/wget`], {
    env,
    timeoutMs: 20_000,
  });
  assert.equal(r.stdout, 'hello /wget', r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const routed = relay.stderr().split('\n').filter((l) => l.includes(`127.0.0.1:${web.port} via default → egress`));
  assert.ok(routed.length >= 5, `the relay's log shows the sessions on the egress route:\n${relay.stderr()}`);
});

test('the host server is not reachable from inside the namespace without the relay', { skip, timeout: 30_000 }, async () => {
  const r = await curlInNs(['--max-time', '5', `http://127.0.0.1:${web.port}/direct`]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /Failed to connect|Connection refused|Couldn't connect/);
});

test('20 MB each way through the tunnel arrive byte-exact (sha256)', { skip, timeout: 120_000 }, async () => {
  const down = await client.send({ op: 'download', port: source.port }, 90_000);
  assert.equal(down.error, undefined, String(down.error));
  assert.equal(down.how, 'end');
  assert.equal(down.bytes, MB20);
  assert.equal(down.sha, source.sha);
  const up = await client.send({ op: 'upload', port: sink.port, n: MB20 }, 90_000);
  assert.equal(up.error, undefined, String(up.error));
  assert.equal(up.answer, `${MB20} ${String(up.sha)}`);
});

test('200 concurrent streams through the tunnel, each with its own payload echoed back intact', { skip, timeout: 90_000 }, async () => {
  const r = await client.send({ op: 'echo', port: hostEcho.port, count: 200 }, 80_000);
  assert.equal(r.error, undefined, String(r.error));
  assert.deepEqual(r.bad, []);
  assert.equal(r.ok, 200);
});

test('the agent killed mid-transfer: its session is reset at once, a direct session lives on, egress is refused with X\'01\', a new agent resumes service', { skip, timeout: 90_000 }, async () => {
  // A session on the "direct" route (the namespace's own echo server), open across the kill.
  const held = await client.send({ op: 'open', id: 'held', host: NS_LOCAL, port: nsEchoPort });
  assert.equal(held.reply, 0);
  assert.equal((await client.send({ op: 'say', id: 'held', text: 'before' })).text, 'before');
  const cut = client.send({ op: 'download', id: 'cut', port: trickle.port }, 60_000);
  await client.progress('cut');
  const old = agent as Proc;
  killGroup(old.child, 'SIGKILL');
  const killedAt = Date.now();
  const ended = await cut;
  const tookMs = Date.now() - killedAt;
  assert.equal(ended.how, 'error', `the cut session must be reset, not ended cleanly: ${JSON.stringify(ended)}`);
  assert.ok(tookMs < 5_000, `reset ${tookMs} ms after the kill`);
  await until('the relay to notice', () => /egress: the agent went away/.test(relay.stderr()), 5_000, relay.stderr);

  assert.equal((await client.send({ op: 'say', id: 'held', text: 'after the kill' })).text, 'after the kill');
  const refused = await client.send({ op: 'socks', port: web.port });
  assert.equal(refused.reply, 1, JSON.stringify(refused));
  assert.ok(Number(refused.ms) < 1_000, `refused in ${String(refused.ms)} ms`);
  let r = await curlInNs(['--socks5-hostname', `${USER}:${PASS}@127.0.0.1:${relayPort}`, `http://127.0.0.1:${web.port}/no-agent`]);
  assert.notEqual(r.code, 0);
  assert.match(relay.stderr(), /this computer is not connected \(the egress agent went away/);

  const next = startAgent(SECRET);
  await until('the new agent to connect', () => /egress agent connected/.test(next.stdout()), 15_000, () => next.stdout() + next.stderr());
  for (let i = 0; i < 50; i++) {
    r = await curlInNs(['--socks5-hostname', `${USER}:${PASS}@127.0.0.1:${relayPort}`, `http://127.0.0.1:${web.port}/resumed`]);
    if (r.stdout === 'hello /resumed') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(r.stdout, 'hello /resumed', r.stderr + relay.stderr());
});

test('an agent with a wrong secret is refused: logged as such, carries nothing, and no secret reaches the relay\'s log', { skip, timeout: 60_000 }, async () => {
  const good = agent as Proc;
  good.child.kill('SIGTERM');
  await until('the good agent to go', () => good.child.exitCode !== null || good.child.signalCode !== null, 5_000);
  await until('egress to be refused', async () => (await client.send({ op: 'socks', port: web.port })).reply === 1, 5_000, relay.stderr);
  const refusalsBefore = (relay.stderr().match(/refused an agent connection from .*: wrong secret/g) ?? []).length;
  const wrong = startAgent(WRONG_SECRET);
  await until('the relay to refuse it', () => (relay.stderr().match(/refused an agent connection from .*: wrong secret/g) ?? []).length > refusalsBefore, 10_000, relay.stderr);
  await until('the agent to report the refusal', () => /refused the secret \(401\)/.test(wrong.stderr()), 5_000, wrong.stderr);
  const requestsBefore = (web as Running & { requests: unknown[] }).requests.length;
  for (let i = 0; i < 3; i++) {
    const r = await client.send({ op: 'socks', port: web.port });
    assert.equal(r.reply, 1, JSON.stringify(r));
  }
  const r = await curlInNs(['--socks5-hostname', `${USER}:${PASS}@127.0.0.1:${relayPort}`, `http://127.0.0.1:${web.port}/wrong`]);
  assert.notEqual(r.code, 0);
  assert.equal((web as Running & { requests: unknown[] }).requests.length, requestsBefore, 'nothing reached the host server');
  assert.doesNotMatch(wrong.stdout(), /egress agent connected/);
  assert.ok(!relay.stderr().includes(SECRET), 'the relay never logs its secret');
  assert.ok(!relay.stderr().includes(WRONG_SECRET), 'nor the one it was offered');
  assert.ok(!relay.stdout().includes(SECRET), 'the banner names the variable, not the secret');
});
