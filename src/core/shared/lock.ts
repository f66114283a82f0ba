/**
 * Who owns the control socket. Listening on it is the claim: the kernel lets one process do that. A
 * socket file left by an owner that crashed answers no connection; the window that finds it removes it
 * under a short lock (a directory: mkdir is atomic) and claims again, so two windows cleaning up at once
 * cannot remove each other's fresh socket. A lock left by a crashed process is taken over when its pid is
 * gone or it is older than a few seconds.
 */
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import type { ControlPaths } from './runtime-dir';

export type Claim = { readonly role: 'owner'; readonly server: net.Server } | { readonly role: 'member'; readonly socket: net.Socket };

const STALE_LOCK_MS = 5_000;

export async function claim(paths: ControlPaths, attempts = 8): Promise<Claim> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return { role: 'owner', server: await listen(paths.socket) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
    try {
      return { role: 'member', socket: await connect(paths.socket) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ENOENT') throw err;
      last = err;
    }
    // Nobody answers on a socket that exists: its owner crashed. Clean up once, under the lock.
    if (process.platform !== 'win32') await withLock(paths.lock, () => removeIfDead(paths.socket));
    await sleep(20 + Math.random() * 60);
  }
  throw new Error(`cannot claim or reach the control socket ${paths.socket}: ${String(last)}`);
}

function listen(socketPath: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ path: socketPath, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function connect(socketPath: string, timeoutMs = 2_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('the control socket did not answer'), { code: 'ECONNREFUSED' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function removeIfDead(socketPath: string): Promise<void> {
  try {
    (await connect(socketPath, 500)).destroy();
    return; // alive after all: someone claimed it meanwhile
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'ECONNREFUSED') throw err;
  }
  await fs.rm(socketPath, { force: true });
}

async function withLock(lock: string, fn: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    try {
      await fs.mkdir(lock, { mode: 0o700 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await lockIsStale(lock)) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the takeover lock ${lock} is held`, { cause: err });
      await sleep(25);
    }
  }
  try {
    await fs.writeFile(path.join(lock, 'pid'), String(process.pid));
    await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

async function lockIsStale(lock: string): Promise<boolean> {
  try {
    const st = await fs.stat(lock);
    if (Date.now() - st.mtimeMs > STALE_LOCK_MS) return true;
    const pid = Number(await fs.readFile(path.join(lock, 'pid'), 'utf8').catch(() => ''));
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ESRCH' || code === 'ENOENT';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
