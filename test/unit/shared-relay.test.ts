/** One relay per user: the control channel's protocol and the owner/member/takeover machine, crashed owner included. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeMessage, LineDecoder, MAX_LINE, memberMessage, RelayState, SessionBatch } from '../../src/core/shared/protocol';
import { controlPaths } from '../../src/core/shared/runtime-dir';
import { Membership, Role } from '../../src/core/shared/membership';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function paths() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'srx-ctl-'));
  dirs.push(base);
  return controlPaths({ SOCKS_RELAY_RUNTIME_DIR: path.join(base, 'rt') }, 'linux');
}

const emptyBatch: SessionBatch = { live: [], closed: [], totals: { active: 0, opened: 0, bytesUp: 0, bytesDown: 0, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 }, reset: true };
const relay = (port: number, running = true): RelayState => ({ running, state: running ? 'running' : 'stopped', host: '127.0.0.1', port, credentials: { username: 'relay', password: 'pw' }, route: 'direct', owner: 'w1', ownerPid: process.pid });

function member(p: ReturnType<typeof paths>, name: string, state: () => RelayState = () => relay(1080)): Membership {
  return new Membership(p, name, () => ({ relay: state(), sessions: emptyBatch }));
}

const nextRole = (m: Membership, timeoutMs = 5_000): Promise<Role> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no new role')), timeoutMs);
    m.once('role', (r) => {
      clearTimeout(t);
      resolve(r);
    });
  });

test('line framing: whole, split at every byte, glued; oversized lines and foreign messages are refused', () => {
  const a = encodeMessage({ t: 'command', id: 1, command: { name: 'stop' } });
  const b = encodeMessage({ t: 'command', id: 2, command: { name: 'terminate', session: 7 } });
  const both = a + b;
  for (let cut = 0; cut <= both.length; cut++) {
    const d = new LineDecoder();
    const got = [...d.push(both.slice(0, cut)), ...d.push(both.slice(cut))];
    assert.deepEqual(got.map(memberMessage), [
      { t: 'command', id: 1, command: { name: 'stop' } },
      { t: 'command', id: 2, command: { name: 'terminate', session: 7 } },
    ]);
  }
  assert.throws(() => new LineDecoder().push('x'.repeat(MAX_LINE + 1)), /longer than/);
  assert.throws(() => new LineDecoder().push('{nope\n'));
  assert.equal(memberMessage({ t: 'command', id: 1, command: { name: 'rm -rf' } }), undefined);
  assert.equal(memberMessage({ t: 'command', id: 1, command: { name: 'terminate' } }), undefined, 'terminate needs a session id');
  assert.equal(memberMessage({ t: 'hello', version: 1 }), undefined);
});

test('first window owns, the second attaches: state, session batches and commands cross; the directory is private', async () => {
  const p = paths();
  const w1 = member(p, 'w1');
  const w2 = member(p, 'w2');
  const r1 = await w1.join();
  assert.equal(r1.kind, 'owner');
  const r2 = await w2.join();
  assert.equal(r2.kind, 'member');
  assert.equal(r2.kind === 'member' && r2.relay.port, 1080);
  assert.equal(fs.statSync(p.dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(p.token).mode & 0o777, 0o600);
  if (r1.kind !== 'owner' || r2.kind !== 'member') return;
  r1.channel.on('command', (c, done) => (c.name === 'stop' ? done() : done({ code: 'NOPE', message: `no ${c.name}` })));
  await r2.channel.command({ name: 'stop' });
  await assert.rejects(r2.channel.command({ name: 'restart' }), (e: Error & { code?: string }) => e.code === 'NOPE');
  const seen = new Promise<RelayState>((resolve) => r2.channel.once('state', resolve));
  r1.channel.broadcast({ t: 'state', relay: relay(1080, false) });
  assert.equal((await seen).running, false);
  await w2.dispose();
  await w1.dispose();
});

test('a client without the secret is denied and never becomes a member', async () => {
  const p = paths();
  const w1 = member(p, 'w1');
  const r1 = await w1.join();
  const s = net.connect({ path: p.socket });
  let text = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (text += d));
  s.write(encodeMessage({ t: 'hello', version: 1, token: 'x'.repeat(43), window: 'intruder' }));
  await new Promise((r) => s.once('close', r));
  assert.match(text, /"denied"/);
  assert.equal(r1.kind === 'owner' && r1.channel.size, 0);
  await w1.dispose();
});

test('the owner leaves: of three members exactly one takes over, with the old state; the others attach to it', async () => {
  const p = paths();
  const owner = member(p, 'owner', () => relay(4242));
  await owner.join();
  const ms = [member(p, 'a', () => relay(0)), member(p, 'b', () => relay(0)), member(p, 'c', () => relay(0))];
  for (const m of ms) assert.equal((await m.join()).kind, 'member');
  const next = ms.map((m) => nextRole(m));
  const t0 = Date.now();
  await owner.dispose();
  const roles = await Promise.all(next);
  const owners = roles.filter((r) => r.kind === 'owner');
  assert.equal(owners.length, 1, roles.map((r) => r.kind).join(','));
  assert.equal(owners[0].kind === 'owner' && owners[0].inherited?.port, 4242, 'the new owner knows the old port');
  assert.ok(Date.now() - t0 < 3_000, `took ${Date.now() - t0} ms`);
  const newOwner = ms[roles.indexOf(owners[0])];
  const o = newOwner.role;
  assert.equal(o?.kind === 'owner' && o.channel.size, 2, 'the other two attached to the new owner');
  for (const m of ms) await m.dispose();
});

test('a crashed owner leaves no stale lock: its member and a new window carry on', async () => {
  const p = paths();
  const script = `
    const { Membership } = require(${JSON.stringify(path.resolve(__dirname, '../../src/core/shared/membership.js'))});
    const m = new Membership(${JSON.stringify(p)}, 'crashy', () => ({ relay: { running: true, state: 'running', host: '127.0.0.1', port: 5151, route: 'direct', owner: 'crashy', ownerPid: process.pid }, sessions: ${JSON.stringify(emptyBatch)} }));
    m.join().then((r) => { process.stdout.write(r.kind + '\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => child.kill('SIGKILL'));
  const first = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  assert.equal(first, 'owner');
  const m = member(p, 'survivor', () => relay(0));
  assert.equal((await m.join()).kind, 'member');
  const takeover = nextRole(m);
  child.kill('SIGKILL');
  const role = await takeover;
  assert.equal(role.kind, 'owner');
  assert.equal(role.kind === 'owner' && role.inherited?.port, 5151);
  await m.dispose();
  // An owner that crashes with nobody attached leaves its socket file behind (Node cannot unlink it): the next window claims anyway.
  const lonely = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(await new Promise<string>((resolve) => lonely.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))), 'owner');
  lonely.kill('SIGKILL');
  await new Promise((r) => lonely.once('exit', r));
  assert.ok(fs.existsSync(p.socket), 'the dead owner left its socket file');
  const fresh = member(p, 'fresh');
  assert.equal((await fresh.join()).kind, 'owner', 'the dead socket file was cleaned up');
  await fresh.dispose();
});
