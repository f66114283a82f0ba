/** A tiny raw-bytes SOCKS client for malformed-input tests, where real clients would refuse to misbehave. */
import * as net from 'node:net';

export interface RawConnection {
  socket: net.Socket;
  /** Resolves with at least `n` bytes (or everything received when the peer closes first). */
  read(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves when the server closes the connection; with what was received up to then. */
  closed(timeoutMs?: number): Promise<Buffer>;
  write(bytes: Buffer | number[]): void;
}

/** allowHalfOpen: keep our side open after the server's FIN (for half-close tests). */
export async function rawConnect(port: number, host = '127.0.0.1', options: { allowHalfOpen?: boolean } = {}): Promise<RawConnection> {
  const socket = net.connect({ host, port, allowHalfOpen: options.allowHalfOpen ?? false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  let received = Buffer.alloc(0);
  let ended = false;
  const waiters: (() => void)[] = [];
  const notify = (): void => waiters.splice(0).forEach((w) => w());
  socket.on('data', (c: Buffer) => {
    received = Buffer.concat([received, c]);
    notify();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    ended = true;
    notify();
  });
  const wait = (done: () => boolean, timeoutMs: number, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${received.toString('hex')}`)), timeoutMs);
      check();
    });
  return {
    socket,
    async read(n, timeoutMs = 3000) {
      await wait(() => received.length >= n || ended, timeoutMs, `${n} bytes`);
      const out = received.subarray(0, n);
      received = received.subarray(out.length);
      return out;
    },
    async closed(timeoutMs = 3000) {
      await wait(() => ended, timeoutMs, 'close');
      return received;
    },
    write(bytes) {
      socket.write(Buffer.from(bytes));
    },
  };
}
