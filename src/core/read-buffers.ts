import * as net from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';

/**
 * Read buffers for the relay path.
 *
 * By default Node allocates a fresh 64 KiB buffer for every read on every socket; on a bulk stream that is
 * an allocation, a free and a wrapper object per chunk, and reads never exceed 64 KiB. net.Socket's
 * `onread` mode instead reads into a buffer the caller supplies. Buffers here come in two kinds:
 * - one small buffer shared by every socket: a read into it is copied out before the callback returns,
 *   so idle and interactive sessions hold no read buffer at all (the memory per idle session stays low);
 * - large buffers of a socket's own, taken from a bounded pool as soon as a read fills the shared one
 *   (a bulk transfer): reads go straight into it and are written on without a copy, and the reader stays
 *   stopped until that write has left the process, because the pending write still points into the buffer.
 */

/** As large as a default Node read, so a socket that cannot get a large buffer loses nothing. */
export const SHARED_SIZE = 64 * 1024;
/** One large read per wakeup: fewer syscalls and wakeups of the peer per byte (measured: bench/). */
export const OWN_SIZE = 256 * 1024;
/** At most this many large buffers exist at once (32 MiB); beyond, sockets keep to the shared one. */
export const MAX_OWN = 128;
let maxOwn = MAX_OWN;
const MAX_FREE = 16;

const shared = Buffer.allocUnsafeSlow(SHARED_SIZE);
const free: Buffer[] = [];
let out = 0;

export function isShared(buf: Buffer): boolean {
  return buf === shared;
}

export function sharedBuffer(): Buffer {
  return shared;
}

/** A large buffer of its own for a bulk reader, or undefined when the pool's bound is reached. */
export function takeOwn(): Buffer | undefined {
  if (out >= maxOwn) return undefined;
  out++;
  return free.pop() ?? Buffer.allocUnsafeSlow(OWN_SIZE);
}

/** Back to the pool: only when no pending write points into it any more. */
export function giveBack(buf: Buffer): void {
  out--;
  if (free.length < MAX_FREE) free.push(buf);
}

/** Gone with its socket while a write may still point into it: let the garbage collector have it. */
export function forget(): void {
  out--;
}

/** Lowers (or restores) the bound on large buffers; tests use it to run bulk streams past an exhausted pool. */
export function setMaxOwnBuffers(n: number = MAX_OWN): void {
  maxOwn = n;
}

/** Large buffers in use, for tests and the bench. */
export function ownBuffersInUse(): number {
  return out;
}

/**
 * Returns false to stop reading (backpressure); the socket is restarted with resume(). `buf` is the buffer
 * `next` last handed out (Node passes back what it was given).
 */
export type ReadCallback = (nread: number, buf: Buffer) => boolean;

interface Slots {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

let slots: Slots | null | undefined;
let enabled = true;
/** Why the self-check (readPathMode()) found buffer mode unsafe on this Node; from then on every socket streams. */
let selfCheckFailure: string | undefined;

/** Turns buffer mode off (or back on) for sockets relayed from now on; tests use it to cover the stream-mode fallback. */
export function useReadBuffers(on: boolean): void {
  enabled = on;
}

/**
 * Switches a connected socket to `onread` mode in place. Node offers `onread` only for sockets it creates
 * from options, not for the ones a server accepts, so this sets the same three fields the constructor
 * would, found by their symbols' names, and hands the handle its first buffer. Returns false (and changes
 * nothing) where that is not possible: TLS sockets, a handle without useUserBuffer, a Node whose
 * net.Socket lacks the fields or has them set on a socket in stream mode, a Node that failed the
 * self-check of readPathMode(); the caller then relays in ordinary stream mode.
 *
 * Whatever the socket had already read into its stream buffer is still there: the caller drains it with
 * read() before returning to the event loop, so it goes out ahead of anything the callback sees.
 */
export function readIntoBuffers(socket: Duplex, callback: ReadCallback, next: () => Buffer): boolean {
  // Streams of other transports (not a TCP socket) have no handle to read into: stream mode.
  if (!enabled || selfCheckFailure !== undefined || !(socket instanceof net.Socket)) return false;
  return switchToBuffers(socket, callback, next) === undefined;
}

/** readIntoBuffers() without the switches above: undefined once switched, else why not (nothing changed). */
function switchToBuffers(socket: Socket, callback: ReadCallback, next: () => Buffer): string | undefined {
  if (socket instanceof TLSSocket) return 'TLS socket';
  if (socket.destroyed) return 'socket destroyed';
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return 'the socket handle has no useUserBuffer()';
  const fields = socket as unknown as Record<symbol, unknown>;
  if (slots === undefined) {
    const bySymbol = new Map(Object.getOwnPropertySymbols(socket).map((s) => [s.description, s]));
    const buffer = bySymbol.get('kBuffer');
    const cb = bySymbol.get('kBufferCb');
    const generator = bySymbol.get('kBufferGen');
    slots = buffer && cb && generator ? { buffer, callback: cb, generator } : null;
  }
  if (!slots) return 'net.Socket has no kBuffer, kBufferCb and kBufferGen fields';
  // A socket in stream mode has all three set to null (net.Socket's constructor): anything else (a field
  // missing on this socket, or holding a value) is a net.Socket this code does not know.
  if (fields[slots.buffer] !== null || fields[slots.callback] !== null || fields[slots.generator] !== null) {
    return "net.Socket's kBuffer, kBufferCb and kBufferGen are not all null on a socket in stream mode";
  }
  const first = next();
  fields[slots.buffer] = first;
  fields[slots.callback] = callback;
  fields[slots.generator] = next;
  (handle.useUserBuffer as (buf: Buffer) => void).call(handle, first);
  return undefined;
}

/** How the relay's sockets read, and why when not into the buffers above. */
export interface ReadPathMode {
  /** 'buffers': `onread` into the shared and own buffers; 'stream': Node's 'data' events, a fresh buffer per read. */
  mode: 'buffers' | 'stream';
  /** Why stream mode. */
  reason?: string;
}

let selfCheck: Promise<ReadPathMode> | undefined;

/**
 * The mode sockets relayed from now on read in. The first call (or `recheck`) runs a self-check once for the
 * process: a socket a loopback server accepts is switched with the code above and must get 16 KiB sent by its
 * peer byte for byte, in the buffers handed out and through the callback only, must stop reading when the
 * callback returns false and start again with resume(). A Node that changed the internals the switch relies
 * on fails it, and then every socket relays in stream mode (readIntoBuffers() refuses) instead of relaying
 * corrupted data. The server awaits this before it listens (and logs the mode, see describeReadPath()).
 */
export function readPathMode(recheck = false): Promise<ReadPathMode> {
  if (!enabled) return Promise.resolve({ mode: 'stream', reason: 'read buffers turned off' });
  if (recheck || !selfCheck) {
    // Sockets relayed while it runs go by the previous result (none yet: by the checks of readIntoBuffers()).
    selfCheck = runSelfCheck().then((failure) => {
      selfCheckFailure = failure;
      return failure === undefined ? { mode: 'buffers' } : { mode: 'stream', reason: failure };
    });
  }
  return selfCheck;
}

/** The log line: "read path: own buffers (onread), Node v22.x" or "read path: stream mode (why), Node v…". */
export function describeReadPath(m: ReadPathMode): string {
  const how = m.mode === 'buffers' ? 'own buffers (onread)' : `stream mode (${m.reason ?? 'unknown reason'})`;
  return `read path: ${how}, Node ${process.version}`;
}

const CHECK_BYTES = 16 * 1024;
const CHECK_HEAD = 64;
const CHECK_CHUNK = 1024;
const CHECK_STOP_MS = 20;
const CHECK_TIMEOUT_MS = 5000;

/** undefined when buffer mode works on this Node, else what went wrong. Never rejects. */
function runSelfCheck(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const data = Buffer.allocUnsafe(CHECK_BYTES);
    // Never 0: a buffer handed out is zero-filled, so bytes that did not land in it cannot match.
    for (let i = 0; i < data.length; i++) data[i] = (i % 251) + 1;
    const server = net.createServer({ allowHalfOpen: true });
    let client: Socket | undefined;
    let accepted: Socket | undefined;
    let done = false;
    const finish = (failure?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client?.destroy();
      accepted?.destroy();
      server.close();
      resolve(failure === undefined ? undefined : `self-check failed: ${failure}`);
    };
    const timer = setTimeout(() => finish(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS);

    server.on('error', (err) => finish(`loopback listener: ${err.message}`));
    server.on('connection', (s: Socket) => {
      accepted = s;
      s.on('error', (err) => finish(`accepted socket: ${err.message}`));
      const got: Buffer[] = [];
      let last: Buffer | undefined;
      let handedOut = 0;
      let reads = 0;
      let stopped = false;
      const next = (): Buffer => {
        handedOut++;
        return (last = Buffer.alloc(CHECK_CHUNK));
      };
      const onRead: ReadCallback = (n, buf) => {
        if (done) return false;
        if (stopped) finish('reads went on after the callback returned false');
        else if (buf !== last) finish('the callback got a buffer other than the one last handed out');
        else if (!(n > 0 && n <= buf.length)) finish(`the callback got nread ${n} for a ${buf.length}-byte buffer`);
        if (done) return false;
        got.push(Buffer.from(buf.subarray(0, n)));
        if (++reads > 1) return true;
        // Backpressure once, as the relay does while a write from a buffer is pending.
        stopped = true;
        setTimeout(() => {
          stopped = false;
          if (!done) s.resume();
        }, CHECK_STOP_MS);
        return false;
      };
      // As a session does: a handshake read in stream mode, the socket paused, switched, drained, answered, resumed.
      let head = 0;
      const onHead = (chunk: Buffer): void => {
        got.push(chunk);
        head += chunk.length;
        if (head < CHECK_HEAD) return;
        s.off('data', onHead);
        s.pause();
        const refused = switchToBuffers(s, onRead, next);
        if (refused !== undefined) return finish(refused);
        for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) got.push(c);
        s.on('data', () => finish("the bytes came as 'data' events too"));
        s.on('end', () => {
          const all = Buffer.concat(got);
          if (!all.equals(data)) {
            const at = all.findIndex((byte, i) => byte !== data[i]);
            return finish(`${all.length} of ${data.length} bytes arrived, wrong from byte ${at < 0 ? all.length : at} on`);
          }
          if (handedOut < 2) return finish('Node never asked for the next buffer (kBufferGen)');
          finish();
        });
        s.write('go');
        s.resume();
      };
      s.on('data', onHead);
    });
    // exclusive: in a cluster worker (--workers) a plain listen(0) would share the primary's handle for
    // 127.0.0.1:0 with the proxy's own listener, and the check would accept the proxy's clients.
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      client = net.connect(port, '127.0.0.1');
      client.on('error', (err) => finish(`loopback client: ${err.message}`));
      client.once('data', () => client?.end(data.subarray(CHECK_HEAD)));
      client.write(data.subarray(0, CHECK_HEAD));
    });
  });
}
