/**
 * Hostile input to the two listeners this round added, with fixed seeds: the shared relay's control socket
 * (anyone on the machine who can reach it, or a window of another version) and the egress endpoint (anyone
 * on the remote host). Nothing they send may throw out of the extension host or leave a handle behind, and a
 * legitimate member / agent still gets in afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Membership } from '../../src/core/shared/membership';
import { controlPaths } from '../../src/core/shared/runtime-dir';
import type { SessionBatch } from '../../src/core/shared/protocol';
import { EgressEndpoint } from '../../src/core/egress/endpoint';
import { EgressAgent } from '../../src/core/egress/agent';
import { EGRESS_PATH, randomToken } from '../../src/core/egress/protocol';

const SEED = 42;
const emptyBatch: SessionBatch = { live: [], closed: [], totals: { active: 0, opened: 0, bytesUp: 0, bytesDown: 0, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 }, reset: true };
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'srx-fuzz-ctl-'));
const paths = controlPaths({ SOCKS_RELAY_RUNTIME_DIR: path.join(base, 'rt') }, 'linux');
const snapshot = () => ({ relay: { running: false, state: 'stopped' as const, route: 'direct', owner: 'fuzz', ownerPid: process.pid }, sessions: emptyBatch });
let owner: Membership;
const token = randomToken();
let endpoint: EgressEndpoint;
let endpointPort: number;

before(async () => {
  owner = new Membership(paths, 'owner', snapshot);
  assert.equal((await owner.join()).kind, 'owner');
  endpoint = new EgressEndpoint({ token });
  endpointPort = (await endpoint.listen()).port;
});

after(async () => {
  await owner?.dispose();
  await endpoint?.close();
  fs.rmSync(base, { recursive: true, force: true });
});

/** Writes `chunks` to a new connection on `connectTo`, then waits for it to close (or gives up and closes it). */
function throwAt(connectTo: net.NetConnectOpts, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(connectTo);
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, 300);
    s.once('close', done);
    s.once('connect', () => {
      for (const c of chunks) s.write(c);
      s.end();
    });
  });
}

const lines = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(`${JSON.stringify(v)}\n`)),
  fc.record({ t: fc.constantFrom('hello', 'command', 'welcome', 'x'), version: fc.integer(), token: fc.string(), window: fc.string(), id: fc.integer(), command: fc.anything() }).map((v) => Buffer.from(`${JSON.stringify(v)}\n`)),
);

test('fuzz: the control socket takes random bytes and messages without the secret; a real member still attaches', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(lines, { minLength: 1, maxLength: 5 }), async (chunks) => {
      await throwAt({ path: paths.socket }, chunks);
    }),
    { seed: SEED, numRuns: 150 },
  );
  const role = owner.role;
  assert.equal(role?.kind === 'owner' && role.channel.size, 0, 'no intruder became a member');
  const member = new Membership(paths, 'member', snapshot);
  assert.equal((await member.join()).kind, 'member');
  await member.dispose();
});

const httpish = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'CONNECT', 'PRI', 'X'),
      path: fc.constantFrom(`/${EGRESS_PATH}`, `/${EGRESS_PATH}/challenge`, '/', '/x/../socks-relay/egress/v1', '*'),
      upgrade: fc.constantFrom('websocket', 'socks-relay-h2', 'h2c', ''),
      headers: fc.array(fc.tuple(fc.constantFrom('x-socks-relay-challenge', 'x-socks-relay-nonce', 'x-socks-relay-proof', 'sec-websocket-key', 'sec-websocket-protocol', 'sec-websocket-version', 'connection'), fc.string({ maxLength: 80 })), { maxLength: 6 }),
    })
    .map(({ method, path: p, upgrade, headers }) =>
      Buffer.from(`${method} ${p} HTTP/1.1\r\nHost: x\r\n${upgrade ? `Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n` : ''}${headers.map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, '')}\r\n`).join('')}\r\n`),
    ),
);

test('fuzz: the egress endpoint takes random bytes and forged upgrades; no forged agent is ever accepted, a real one still connects', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(httpish, { minLength: 1, maxLength: 3 }), async (chunks) => {
      await throwAt({ host: '127.0.0.1', port: endpointPort }, chunks);
      assert.equal(endpoint.ready, false, 'nothing forged got a tunnel');
    }),
    { seed: SEED, numRuns: 150 },
  );
  const agent = new EgressAgent({ url: `http://127.0.0.1:${endpointPort}/`, token, minRetryMs: 50 });
  agent.start();
  for (let i = 0; i < 100 && !(endpoint.ready && agent.state.status === 'connected'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(endpoint.ready && agent.state.status === 'connected', JSON.stringify(agent.state));
  agent.stop();
});
