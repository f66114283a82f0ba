/**
 * A SOCKS5 client process for tests that must drive the relay from somewhere the test process cannot
 * reach (inside a network namespace: `ip netns exec NAME node out/test/helpers/socks-client-process.js`).
 * The proxy is 127.0.0.1:$PROXY_PORT with $PROXY_USER/$PROXY_PASS. It reads one JSON command per line on
 * stdin and answers with JSON lines on stdout, each carrying the command's id:
 *   {op:'download', id, host, port}        reads until the end: {done, how:'end'|'error', code?, bytes, sha}
 *                                          (and once, {progress} after the first MB)
 *   {op:'upload', id, host, port, n}       sends n random bytes and ends: {done, sha, answer} (what the server said)
 *   {op:'echo', id, host, port, count}     count concurrent sessions, distinct payloads: {done, ok, bad[]}
 *   {op:'socks', id, host, port}           the CONNECT reply byte only: {done, reply, ms}
 *   {op:'open', id, host, port}            keeps a session open under id: {done, reply}
 *   {op:'say', id, text}                   writes text on that session, waits for as many bytes back: {done, text}
 * Every wait is bounded (TIMEOUT_MS); a failure is an answer with `error`, never a hang.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as readline from 'node:readline';

const PORT = Number(process.env.PROXY_PORT);
const USER = process.env.PROXY_USER ?? '';
const PASS = process.env.PROXY_PASS ?? '';
const TIMEOUT_MS = 60_000;

type Command = { op: string; id: string; host?: string; port?: number; n?: number; count?: number; text?: string };
const held = new Map<string, net.Socket>();

function answer(id: string, body: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ id, ...body }) + '\n');
}

/** Resolves with exactly n bytes from the socket (and puts back nothing: the handshake is lock-step). */
function readN(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`timed out reading ${n} bytes`)), TIMEOUT_MS);
    const onData = (c: Buffer): void => {
      got = Buffer.concat([got, c]);
      if (got.length >= n) {
        done(undefined, got.subarray(0, n));
        // After done() paused the socket and let go of this listener: unshift() would re-enter it otherwise.
        if (got.length > n) socket.unshift(got.subarray(n));
      }
    };
    const onEnd = (): void => done(new Error(`the proxy closed after ${got.length} of ${n} bytes`));
    const onError = (e: Error): void => done(e);
    function done(err?: Error, value?: Buffer): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (err) reject(err);
      else resolve(value as Buffer);
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}

/** SOCKS5 CONNECT with username/password; the reply byte (0 = success) and the socket. */
async function socks5(host: string, port: number): Promise<{ reply: number; socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port: PORT });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.pause();
  socket.write(Buffer.from([5, 1, 2]));
  const method = await readN(socket, 2);
  if (method[1] !== 2) throw new Error(`the proxy chose method ${method[1]}`);
  socket.write(Buffer.concat([Buffer.from([1, USER.length]), Buffer.from(USER), Buffer.from([PASS.length]), Buffer.from(PASS)]));
  const auth = await readN(socket, 2);
  if (auth[1] !== 0) throw new Error('the proxy refused the credentials');
  const port2 = Buffer.from([port >> 8, port & 0xff]);
  const ip = net.isIPv4(host) ? Buffer.from([1, ...host.split('.').map(Number)]) : Buffer.concat([Buffer.from([3, host.length]), Buffer.from(host)]);
  socket.write(Buffer.concat([Buffer.from([5, 1, 0]), ip, port2]));
  const head = await readN(socket, 5);
  const rest = head[3] === 1 ? 5 : head[3] === 4 ? 17 : head[4] + 2;
  await readN(socket, rest);
  return { reply: head[1], socket };
}

async function connected(host: string, port: number): Promise<net.Socket> {
  const { reply, socket } = await socks5(host, port);
  if (reply !== 0) {
    socket.destroy();
    throw new Error(`SOCKS reply ${reply}`);
  }
  return socket;
}

function download(id: string, socket: net.Socket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let told = false;
    let how: 'end' | 'error' | undefined;
    let code: string | undefined;
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), TIMEOUT_MS);
    socket.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
      if (!told && bytes >= 1 << 20) {
        told = true;
        answer(id, { progress: bytes });
      }
    });
    socket.once('end', () => (how ??= 'end'));
    socket.once('error', (e: NodeJS.ErrnoException) => {
      how ??= 'error';
      code = e.code ?? e.message;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ how: how ?? 'error', code, bytes, sha: hash.digest('hex') });
    });
    socket.resume();
  });
}

async function upload(socket: net.Socket, n: number): Promise<Record<string, unknown>> {
  const hash = createHash('sha256');
  let answerText = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => (answerText += c));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.resume();
  for (let sent = 0; sent < n; ) {
    const chunk = randomBytes(Math.min(256 * 1024, n - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
  const timer = setTimeout(() => socket.destroy(), TIMEOUT_MS);
  await closed;
  clearTimeout(timer);
  return { sha: hash.digest('hex'), answer: answerText.trim() };
}

async function echoOne(host: string, port: number, i: number): Promise<string | undefined> {
  const payload = Buffer.concat([Buffer.from(`stream ${i}:`), randomBytes(1024 + ((i * 7919) % 32768))]);
  const socket = await connected(host, port);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const result = new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), TIMEOUT_MS);
    let failure: string | undefined;
    socket.once('error', (e) => (failure = `${i}: ${e.message}`));
    socket.once('close', () => {
      clearTimeout(timer);
      const back = Buffer.concat(chunks);
      resolve(failure ?? (back.equals(payload) ? undefined : `${i}: ${back.length} bytes back of ${payload.length}, ${back.equals(payload.subarray(0, back.length)) ? 'truncated' : 'different'}`));
    });
  });
  socket.resume();
  socket.end(payload);
  return result;
}

async function handle(cmd: Command): Promise<Record<string, unknown>> {
  const host = cmd.host ?? '127.0.0.1';
  const port = cmd.port ?? 0;
  switch (cmd.op) {
    case 'download':
      return download(cmd.id, await connected(host, port));
    case 'upload':
      return upload(await connected(host, port), cmd.n ?? 0);
    case 'echo': {
      const results = await Promise.all(Array.from({ length: cmd.count ?? 1 }, (_, i) => echoOne(host, port, i).catch((e: Error) => `${i}: ${e.message}`)));
      const bad = results.filter((r): r is string => r !== undefined);
      return { ok: results.length - bad.length, bad: bad.slice(0, 10) };
    }
    case 'socks': {
      const started = Date.now();
      const { reply, socket } = await socks5(host, port);
      socket.destroy();
      return { reply, ms: Date.now() - started };
    }
    case 'open': {
      const { reply, socket } = await socks5(host, port);
      if (reply === 0) held.set(cmd.id, socket);
      else socket.destroy();
      return { reply };
    }
    case 'say': {
      const socket = held.get(cmd.id);
      if (!socket) throw new Error(`no session ${cmd.id}`);
      const text = cmd.text ?? '';
      socket.write(text);
      return { text: (await readN(socket, Buffer.byteLength(text))).toString() };
    }
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd: Command;
  try {
    cmd = JSON.parse(line) as Command;
  } catch {
    return;
  }
  handle(cmd).then(
    (body) => answer(cmd.id, { done: true, ...body }),
    (err: Error) => answer(cmd.id, { done: true, error: err.message }),
  );
});
process.stdin.on('end', () => process.exit(0));
