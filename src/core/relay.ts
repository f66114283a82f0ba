import type { Socket } from 'node:net';
import type { ConnectionContext } from './context';
import { describeError } from './errors';
import { giveBack, forget, isShared, readIntoBuffers, SHARED_SIZE, sharedBuffer, takeOwn } from './read-buffers';
import type { Session } from './registry';

export interface RelayOptions {
  /** Close both sides after this long with no traffic either way (0 = never). */
  idleTimeoutMs: number;
  /** Called once when both sides are closed; `error` is set when the relay ended abnormally. */
  onClose(error: string | undefined): void;
}

/**
 * Pipes two connected sockets both ways.
 * - Backpressure: the reader is paused while the writer's buffer is full, so memory stays bounded.
 * - Half-close: both sockets are allowHalfOpen, so a FIN from one side becomes end() on the other
 *   and the reverse direction keeps flowing until it ends too.
 * - Errors: if either side fails, the other is reset (RST), never ended cleanly, so the peer
 *   cannot mistake a truncated stream for a complete one.
 * - Speed: bulk reads go into large reusable buffers and are written on without a copy (see
 *   read-buffers.ts); no event is emitted and no timer re-armed per chunk: byte counts come from
 *   socket.bytesRead/bytesWritten, which also drive idle detection.
 */
export function relay(client: Socket, target: Socket, options: RelayOptions): () => void {
  let failure: string | undefined;
  let closed = 0;

  const abort = (reason: string, cause?: Socket): void => {
    failure ??= reason;
    for (const s of [client, target]) {
      if (s === cause || s.destroyed) continue;
      // resetAndDestroy sends RST so the peer sees an error, not a clean EOF.
      if (s.readyState === 'open' || s.readyState === 'readOnly' || s.readyState === 'writeOnly') s.resetAndDestroy();
      else s.destroy();
    }
  };

  const onClosed = (): void => {
    if (++closed === 2) options.onClose(failure);
  };

  client.on('error', (err) => abort(`client: ${describeError(err)}`, client));
  target.on('error', (err) => abort(`target: ${describeError(err)}`, target));

  let watched: Watched | undefined;
  let watch: Set<Watched> | undefined;
  if (options.idleTimeoutMs > 0) {
    const idleMs = options.idleTimeoutMs;
    watched = { client, seen: -1, since: 0, expire: () => abort(`idle for ${idleMs} ms`) };
    watch = idleWatch(idleMs);
    watch.add(watched);
  }

  const releaseUp = forward(client, target);
  const releaseDown = forward(target, client);

  // A socket that closes without having ended its readable side was torn down: take the other one down too.
  client.on('close', (hadError) => {
    releaseUp();
    if (watched) watch?.delete(watched);
    if (hadError || !client.readableEnded) abort(failure ?? 'client closed abruptly', client);
    onClosed();
  });
  target.on('close', (hadError) => {
    releaseDown();
    if (hadError || !target.readableEnded) abort(failure ?? 'target closed abruptly', target);
    onClosed();
  });
  return () => abort('closed by user');
}

interface Watched {
  client: Socket;
  /** client.bytesRead + client.bytesWritten at the last sweep that saw them change. */
  seen: number;
  since: number;
  expire(): void;
}

const watchers = new Map<number, Set<Watched>>();

/**
 * Idle detection without per-chunk work: instead of socket.setTimeout (which re-arms a timer on every
 * read and write), one sweep per idle limit compares each client socket's byte counters with the last
 * sweep. Everything relayed either way crosses the client socket, so unchanged counters mean no traffic.
 * A session is closed between `idleMs` and 1.5 × `idleMs` after its last byte.
 */
function idleWatch(idleMs: number): Set<Watched> {
  const existing = watchers.get(idleMs);
  if (existing) return existing;
  const entries = new Set<Watched>();
  watchers.set(idleMs, entries);
  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const e of entries) {
        const bytes = e.client.bytesRead + e.client.bytesWritten;
        if (bytes !== e.seen) {
          e.seen = bytes;
          e.since = now;
        } else if (now - e.since >= idleMs) {
          entries.delete(e);
          e.expire();
        }
      }
      if (entries.size === 0) {
        clearInterval(timer);
        watchers.delete(idleMs);
      }
    },
    Math.max(25, Math.min(idleMs / 4, 5_000)),
  );
  timer.unref();
  return entries;
}

/**
 * One direction. Reads go into buffers from read-buffers.ts where the socket allows it, else it falls
 * back to stream mode ('data' events). Half-close: 'end' on `from` becomes end() on `to`. Errors and
 * closes are handled by relay().
 */
function forward(from: Socket, to: Socket): () => void {
  const release = forwardFromBuffers(from, to);
  if (release) {
    from.on('end', () => {
      release();
      to.end();
    });
    return release;
  }
  from.on('end', () => to.end());
  forwardStream(from, to);
  return noop;
}

const noop = (): void => undefined;

/**
 * Stream mode: what stream.pipe does, with fewer listeners (two per direction instead of about seven).
 * Backpressure: a write that fills `to`'s buffer pauses `from` until 'drain'.
 */
function forwardStream(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  // The handshake paused the client socket: start it again.
  from.resume();
}

/**
 * Buffer mode (see read-buffers.ts). A read into the shared buffer is copied out; a read that fills it
 * means a bulk transfer, so the next reads go into a large buffer of this direction's own and are written
 * without a copy. While such a write is pending (part of it still in `to`'s queue, pointing into the
 * buffer) reading stays stopped; the write's callback restarts it. A short read, the end of the stream
 * or the socket's close (the returned release function) hands the buffer back. Returns undefined where
 * the socket cannot read into buffers.
 */
function forwardFromBuffers(from: Socket, to: Socket): (() => void) | undefined {
  let own: Buffer | undefined;
  // Reading was stopped for backpressure and waits for `to` to empty its queue.
  let waiting = false;

  const afterWrite = (): void => {
    if (waiting && to.writableLength === 0) {
      waiting = false;
      from.resume();
    }
  };

  const onRead = (n: number, buf: Uint8Array): boolean => {
    if (isShared(buf)) {
      const chunk = Buffer.allocUnsafe(n);
      chunk.set(buf.subarray(0, n));
      if (n === SHARED_SIZE) own = takeOwn();
      if (to.write(chunk, afterWrite)) return true;
    } else {
      to.write((buf as Buffer).subarray(0, n), afterWrite);
      if (to.writableLength === 0) {
        if (n < SHARED_SIZE && own) {
          giveBack(own);
          own = undefined;
        }
        return true;
      }
    }
    waiting = true;
    return false;
  };

  if (!readIntoBuffers(from, onRead, () => own ?? sharedBuffer())) return undefined;
  // What the socket read in stream mode before the switch (and bytes unshifted after a handshake) goes first.
  for (let chunk = from.read() as Buffer | null; chunk !== null; chunk = from.read() as Buffer | null) {
    if (!to.write(chunk, afterWrite)) waiting = true;
  }
  // Start reading (the handshake paused the client socket) unless `to` must empty its queue first.
  if (!waiting) from.resume();
  // No read comes after the end (a half-closed session may stay open a long time) or the close.
  return () => {
    if (!own) return;
    // A write that was still pending when the socket closed may point into it.
    if (waiting) forget();
    else giveBack(own);
    own = undefined;
  };
}

/**
 * Puts an established session on the relay: bytes that arrived glued to the request go first, the
 * session counts what crosses `target`, and it closes (with the failure, if any) when both sides have.
 */
export function relaySession(client: Socket, target: Socket, leftover: Buffer, session: Session, ctx: Pick<ConnectionContext, 'options' | 'logger'>): void {
  if (leftover.length > 0) client.unshift(leftover);
  session.track(target);
  session.update({ state: 'open' });
  session.closer = relay(client, target, {
    idleTimeoutMs: ctx.options.idleTimeoutMs,
    onClose: (error) => {
      // The tag is built only for a line that is written (the client label costs a getpeername).
      if (error && ctx.logger.debugEnabled !== false) ctx.logger.debug(`#${session.id} ${session.client}: ${session.destination} ended: ${error}`);
      session.close(error ?? 'ok');
    },
  });
}
