/**
 * The egress tunnel in one process (no namespace): ProxyServer → EgressEndpoint → WebSocket → EgressAgent →
 * target, all on loopback. The handshake's refusals (a replayed challenge, an endpoint that cannot prove the
 * secret), half-closes both ways, a tunnel that drops mid-transfer, and the commands the route cannot carry.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { createWebSocketStream, WebSocket, WebSocketServer } from 'ws';
import { AgentState, EgressAgent } from '../../src/core/egress/agent';
import { EgressEndpoint } from '../../src/core/egress/endpoint';
import { agentProof, agentUrls, CHALLENGE_PATH, EGRESS_SUBPROTOCOL, endpointProof, HEADER, randomToken } from '../../src/core/egress/protocol';
import { buildRouter } from '../../src/core/routing';
import { MemoryLogger, Running, serveTcp, startProxy } from '../helpers/servers';
import { rawConnect, RawConnection } from '../helpers/socks';

const TOKEN = randomToken();
let endpoint: EgressEndpoint;
let endpointLog: MemoryLogger;
let agent: EgressAgent;
let proxy: Running;
const cleanups: (() => Promise<void> | void)[] = [];

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000 && !check(); i++) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

function startAgent(url: string, token = TOKEN): EgressAgent {
  const a = new EgressAgent({ url, token, minRetryMs: 100, maxRetryMs: 500 });
  cleanups.push(() => a.stop());
  a.start();
  return a;
}

before(async () => {
  endpointLog = new MemoryLogger();
  endpoint = new EgressEndpoint({ token: TOKEN, logger: endpointLog });
  const at = await endpoint.listen();
  proxy = await startProxy({ users: [] }, buildRouter({ default: 'egress' }, { egress: endpoint }));
  agent = startAgent(`http://127.0.0.1:${at.port}/`);
  await until('the agent to connect', () => endpoint.ready && agent.state.status === 'connected');
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await proxy?.close();
  await endpoint?.close();
});

/** SOCKS5 (no auth) up to the CONNECT reply; returns the connection and the reply byte. */
async function socksCommand(command: number, host: string, port: number, allowHalfOpen = false): Promise<{ conn: RawConnection; reply: number }> {
  const conn = await rawConnect(proxy.port, '127.0.0.1', { allowHalfOpen });
  conn.write([5, 1, 0]);
  assert.deepEqual([...(await conn.read(2))], [5, 0]);
  conn.write([5, command, 0, 1, ...host.split('.').map(Number), port >> 8, port & 0xff]);
  const head = await conn.read(10, 10_000);
  return { conn, reply: head[1] };
}

async function socksConnect(port: number, allowHalfOpen = false): Promise<RawConnection> {
  const { conn, reply } = await socksCommand(1, '127.0.0.1', port, allowHalfOpen);
  assert.equal(reply, 0, 'CONNECT through the tunnel succeeds');
  return conn;
}

async function getChallenge(port: number): Promise<string> {
  const res = await fetch(new URL(CHALLENGE_PATH, `http://127.0.0.1:${port}/`));
  assert.equal(res.status, 200);
  return ((await res.json()) as { challenge: string }).challenge;
}

/** One upgrade with the given challenge and a fresh nonce; the HTTP status (101 or the refusal). */
function upgrade(port: number, challenge: string, token = TOKEN): Promise<number> {
  const nonce = randomToken(24);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agentUrls(`http://127.0.0.1:${port}/`).tunnel, EGRESS_SUBPROTOCOL, {
      headers: { [HEADER.challenge]: challenge, [HEADER.nonce]: nonce, [HEADER.proof]: agentProof(token, challenge, nonce) },
      handshakeTimeout: 5_000,
    });
    ws.once('upgrade', (res) => {
      assert.equal(res.headers[HEADER.proof], endpointProof(token, nonce, challenge), 'the endpoint proves the secret too');
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', (err) => reject(err));
  });
}

test('the endpoint takes a challenge once: a replayed upgrade gets 401', async () => {
  const port = (endpoint.address() as net.AddressInfo).port;
  // A separate endpoint, so the accepted upgrade does not take over from the test's agent.
  const other = new EgressEndpoint({ token: TOKEN, logger: new MemoryLogger() });
  const otherPort = (await other.listen()).port;
  cleanups.push(() => other.close());
  const challenge = await getChallenge(otherPort);
  assert.equal(await upgrade(otherPort, challenge), 101);
  assert.equal(await upgrade(otherPort, challenge), 401, 'the same challenge a second time');
  assert.equal(await upgrade(otherPort, randomToken(24)), 401, 'a challenge it never issued');
  assert.equal(await upgrade(otherPort, await getChallenge(otherPort), randomToken()), 401, 'a fresh challenge with the wrong secret');
  // The test's endpoint still has its agent (these went to another one).
  assert.ok(endpoint.ready, `the test's endpoint on ${port} keeps its agent`);
});

/** An endpoint impostor: hands out challenges and accepts the upgrade, but proves nothing (or wrongly). */
async function fakeEndpoint(proof: (nonce: string, challenge: string) => string | undefined): Promise<Running & { answered: () => boolean; connected: () => boolean }> {
  const wss = new WebSocketServer({ noServer: true });
  let connected = false;
  let answered = false;
  const server = http.createServer((_req, res) => res.end(JSON.stringify({ challenge: randomToken(24) })));
  server.on('upgrade', (req, socket, head) => {
    const p = proof(String(req.headers[HEADER.nonce]), String(req.headers[HEADER.challenge]));
    const add = (headers: string[]): void => void (p !== undefined && headers.push(`${HEADER.proof}: ${p}`));
    wss.once('headers', add);
    wss.handleUpgrade(req, socket, head, (ws) => {
      connected = true;
      // Plays the relay's part: asks the agent to dial.
      const duplex = createWebSocketStream(ws);
      duplex.on('error', () => undefined);
      const session = http2.connect('http://fake.invalid', { createConnection: () => duplex });
      session.on('error', () => undefined);
      const stream = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:9' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.once('response', () => (answered = true));
    });
  });
  const running = await serveTcp(server);
  return { ...running, answered: () => answered, connected: () => connected };
}

for (const [what, proof] of [
  ['no proof', (): undefined => undefined],
  ['a wrong proof', (nonce: string, challenge: string): string => endpointProof(randomToken(), nonce, challenge)],
  ["the agent's own proof sent back", (nonce: string, challenge: string): string => agentProof(TOKEN, challenge, nonce)],
] as const) {
  test(`an endpoint that answers with ${what} is not served: the agent is refused and never answers CONNECT`, async () => {
    const fake = await fakeEndpoint(proof);
    cleanups.push(() => fake.close());
    const impostorAgent = startAgent(`http://127.0.0.1:${fake.port}/`);
    const states: AgentState[] = [];
    impostorAgent.on('state', (s) => states.push(s));
    await until('the agent to be refused', () => impostorAgent.state.status === 'refused');
    assert.ok(fake.connected(), 'the upgrade completed on the impostor side');
    assert.match(impostorAgent.state.reason ?? '', /did not prove that it knows the secret/);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!fake.answered(), 'the agent never answered the CONNECT');
    assert.ok(!states.some((s) => s.status === 'connected'), 'it never counted as connected');
    assert.equal(impostorAgent.state.carried, 0);
    impostorAgent.stop();
  });
}

/** A target whose behaviour the test scripts per connection. */
async function target(onConnection: (s: net.Socket) => void): Promise<Running> {
  const running = await serveTcp(net.createServer({ allowHalfOpen: true }, onConnection));
  cleanups.push(() => running.close());
  return running;
}

test('half-close client → target: the target sees end() and can still send; the client reads it all', async () => {
  let sawEnd = false;
  let received = '';
  const t = await target((s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => (received += d));
    s.once('end', () => {
      sawEnd = true;
      // After the client's FIN: a reply in several writes, then our own FIN.
      s.write('reply after your fin, ');
      setTimeout(() => s.end(`you sent "${received}"`), 100);
    });
  });
  const conn = await socksConnect(t.port);
  conn.write(Buffer.from('up then fin'));
  conn.socket.end();
  const all = await conn.closed(5_000);
  assert.ok(sawEnd, 'the target saw end');
  assert.equal(all.toString(), 'reply after your fin, you sent "up then fin"');
});

test('half-close target → client: the client sees end() and can still send; the target reads it all', async () => {
  let received = '';
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const t = await target((s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => (received += d));
    s.once('end', () => finished());
    s.end('down then fin');
  });
  const conn = await socksConnect(t.port, true);
  const ended = new Promise<void>((r) => conn.socket.once('end', () => r()));
  assert.equal((await conn.read(13)).toString(), 'down then fin');
  await ended;
  // Our side is still open after the target's FIN (allowHalfOpen): send, then end it.
  conn.socket.write('late upload');
  conn.socket.end();
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('the target never saw the late upload end')), 5_000))]);
  assert.equal(received, 'late upload');
});

/**
 * A TCP forward between agent and endpoint (standing in for VS Code's port forwarding) whose connections
 * the test cuts the way a dying process does: the survivor's side gets a FIN (its peer's kernel closes
 * cleanly), the dead side just goes.
 */
async function forward(toPort: number): Promise<Running & { cut(survivor: 'endpoint' | 'agent'): void }> {
  const pairs: { agent: net.Socket; endpoint: net.Socket }[] = [];
  const running = await serveTcp(
    net.createServer((agentSide) => {
      const endpointSide = net.connect(toPort, '127.0.0.1');
      agentSide.on('error', () => undefined);
      endpointSide.on('error', () => undefined);
      agentSide.pipe(endpointSide);
      endpointSide.pipe(agentSide);
      pairs.push({ agent: agentSide, endpoint: endpointSide });
    }),
  );
  cleanups.push(() => running.close());
  return {
    ...running,
    cut(survivor) {
      for (const p of pairs.splice(0)) {
        p[survivor].unpipe();
        p[survivor === 'endpoint' ? 'agent' : 'endpoint'].unpipe();
        p[survivor].end();
        p[survivor === 'endpoint' ? 'agent' : 'endpoint'].destroy();
      }
    },
  };
}

/** Runs `body` with an agent of this carrier connected through a forward (the test's own agent stepped aside). */
async function throughForward(carrier: 'auto' | 'websocket', body: (fwd: Awaited<ReturnType<typeof forward>>, a: EgressAgent) => Promise<void>): Promise<void> {
  agent.stop();
  await until('the endpoint to lose its agent', () => !endpoint.ready);
  const fwd = await forward((endpoint.address() as net.AddressInfo).port);
  const a = new EgressAgent({ url: `http://127.0.0.1:${fwd.port}/`, token: TOKEN, minRetryMs: 100, maxRetryMs: 500, carrier });
  a.start();
  try {
    await until('the forwarded agent to connect', () => endpoint.ready && a.state.status === 'connected');
    assert.ok(endpointLog.has(carrier === 'websocket' ? 'HTTP/2 over a WebSocket' : 'HTTP/2 over the upgraded connection'), endpointLog.lines.slice(-3).join('\n'));
    await body(fwd, a);
  } finally {
    a.stop();
    await until('the endpoint to lose the forwarded agent', () => !endpoint.ready);
    agent.start();
    await until('the agent to be back', () => endpoint.ready && agent.state.status === 'connected', 10_000);
  }
}

for (const carrier of ['auto', 'websocket'] as const) {
  const over = carrier === 'auto' ? 'the upgraded connection' : 'a WebSocket';
  test(`over ${over}: the tunnel dropping mid-download resets the client (not a clean end of a truncated stream)`, async () => {
    await throughForward(carrier, async (fwd, a) => {
      // The agent's process dies: the endpoint sees a FIN.
      assert.equal(await cutDownload(() => fwd.cut('endpoint')), 'error ECONNRESET');
      await until('the agent to reconnect', () => endpoint.ready && a.state.status === 'connected', 10_000);
    });
  });

  test(`over ${over}: the tunnel dropping mid-upload resets the target (not a clean end of a truncated upload)`, async () => {
    await throughForward(carrier, async (fwd) => {
      let how: string | undefined;
      let bytes = 0;
      const t = await target((s) => {
        s.on('data', (d: Buffer) => (bytes += d.length));
        s.once('end', () => (how ??= 'end'));
        s.once('error', (e: NodeJS.ErrnoException) => (how ??= `error ${e.code}`));
        s.once('close', () => (how ??= 'close'));
      });
      const conn = await socksConnect(t.port);
      conn.socket.on('error', () => undefined);
      const chunk = Buffer.alloc(64 * 1024, 2);
      const timer = setInterval(() => conn.socket.writableLength < 1 << 20 && conn.socket.write(chunk), 5);
      cleanups.push(() => clearInterval(timer));
      await until('data to flow', () => bytes > 1 << 20);
      // The relay's process dies this time: the agent sees the FIN.
      fwd.cut('agent');
      await until('the target to be told', () => how !== undefined);
      clearInterval(timer);
      assert.equal(how, 'error ECONNRESET');
    });
  });
}

/** A download that never ends by itself; resolves how the client saw it end once `cut` has run. */
async function cutDownload(cut: () => void): Promise<string> {
  const t = await target((s) => {
    s.on('error', () => undefined);
    const chunk = Buffer.alloc(64 * 1024, 3);
    const timer = setInterval(() => s.writableLength < 1 << 20 && s.write(chunk), 5);
    s.once('close', () => clearInterval(timer));
  });
  const conn = await socksConnect(t.port);
  let bytes = 0;
  let how: string | undefined;
  conn.socket.on('data', (d: Buffer) => (bytes += d.length));
  conn.socket.once('end', () => (how ??= 'end'));
  conn.socket.once('error', (e: NodeJS.ErrnoException) => (how ??= `error ${e.code}`));
  await until('data to flow', () => bytes > 1 << 20);
  cut();
  await until('the client to be told', () => how !== undefined);
  return how as string;
}

test("the agent stopped resets the sessions it carried; a second agent is refused (409) while the first answers", async () => {
  await until('the agent to be connected', () => endpoint.ready && agent.state.status === 'connected', 10_000);
  assert.equal(await cutDownload(() => agent.stop()), 'error ECONNRESET', 'agent.stop()');
  agent.start();
  await until('the agent to be back', () => endpoint.ready && agent.state.status === 'connected', 10_000);
  const second = startAgent(`http://127.0.0.1:${(endpoint.address() as net.AddressInfo).port}/`);
  await until('the second agent to be turned away', () => second.state.status === 'retrying' && /409/.test(second.state.reason ?? ''), 10_000);
  assert.ok(endpointLog.has('another agent is connected and answering'), endpointLog.lines.slice(-5).join('\n'));
  assert.equal(agent.state.status, 'connected', 'the first agent keeps serving');
  const t = await target((s) => s.end('first agent still carries'));
  const conn = await socksConnect(t.port);
  assert.equal((await conn.closed(5_000)).toString(), 'first agent still carries');
  second.stop();
});

test("BIND and UDP ASSOCIATE on the egress route get X'07' (command not supported)", async () => {
  await until('the agent to be connected', () => endpoint.ready && agent.state.status === 'connected', 10_000);
  for (const command of [2, 3]) {
    const { conn, reply } = await socksCommand(command, '0.0.0.0', 0);
    assert.equal(reply, 7, `command ${command}`);
    await conn.closed(5_000);
  }
  // CONNECT still works after them.
  const t = await target((s) => s.end('still here'));
  const conn = await socksConnect(t.port);
  assert.equal((await conn.closed(5_000)).toString(), 'still here');
  assert.ok(!endpointLog.has(TOKEN), 'the secret is never logged');
});
