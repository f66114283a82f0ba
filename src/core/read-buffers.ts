import type { Socket } from 'node:net';
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

/** Turns buffer mode off (or back on) for sockets relayed from now on; tests use it to cover the stream-mode fallback. */
export function useReadBuffers(on: boolean): void {
  enabled = on;
}

/**
 * Switches a connected socket to `onread` mode in place. Node offers `onread` only for sockets it creates
 * from options, not for the ones a server accepts, so this sets the same three fields the constructor
 * would, found by their symbols' names, and hands the handle its first buffer. Returns false (and changes
 * nothing) where that is not possible: TLS sockets, a handle without useUserBuffer, a Node whose
 * net.Socket lacks the fields; the caller then relays in ordinary stream mode.
 *
 * Whatever the socket had already read into its stream buffer is still there: the caller drains it with
 * read() before returning to the event loop, so it goes out ahead of anything the callback sees.
 */
export function readIntoBuffers(socket: Socket, callback: ReadCallback, next: () => Buffer): boolean {
  if (!enabled || socket instanceof TLSSocket || socket.destroyed) return false;
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  if (slots === undefined) {
    const bySymbol = new Map(Object.getOwnPropertySymbols(socket).map((s) => [s.description, s]));
    const buffer = bySymbol.get('kBuffer');
    const cb = bySymbol.get('kBufferCb');
    const generator = bySymbol.get('kBufferGen');
    slots = buffer && cb && generator ? { buffer, callback: cb, generator } : null;
  }
  if (!slots || fields[slots.buffer] !== null || fields[slots.callback] !== null) return false;
  const first = next();
  fields[slots.buffer] = first;
  fields[slots.callback] = callback;
  fields[slots.generator] = next;
  (handle.useUserBuffer as (buf: Buffer) => void).call(handle, first);
  return true;
}
