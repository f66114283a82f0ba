import type { Socket } from 'node:net';
import type { ConnectionContext } from './context';
import { describeError } from './errors';
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
 * Nothing is allocated or emitted per chunk, and no timer is re-armed per chunk: byte counts come from
 * socket.bytesRead/bytesWritten, which also drive idle detection.
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
  // A socket that closes without having ended its readable side was torn down: take the other one down too.
  client.on('close', (hadError) => {
    if (hadError || !client.readableEnded) abort(failure ?? 'client closed abruptly', client);
    onClosed();
  });
  target.on('close', (hadError) => {
    if (hadError || !target.readableEnded) abort(failure ?? 'target closed abruptly', target);
    onClosed();
  });

  if (options.idleTimeoutMs > 0) {
    const idleMs = options.idleTimeoutMs;
    const watch = idleWatch(idleMs);
    const entry: Watched = { client, seen: -1, since: 0, expire: () => abort(`idle for ${idleMs} ms`) };
    watch.add(entry);
    client.once('close', () => watch.delete(entry));
  }

  forward(client, target);
  forward(target, client);
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
 * One direction: what stream.pipe does for us, with fewer listeners (three per direction instead of
 * about seven). Backpressure: a write that fills `to`'s buffer pauses `from` until 'drain'.
 * Half-close: 'end' on `from` becomes end() on `to`. Errors and closes are handled by relay().
 */
function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  // The handshake paused the client socket; a 'data' listener alone does not restart a paused stream.
  from.resume();
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
