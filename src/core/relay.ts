import type { OutboundStream } from './dialer';
import type { Duplex } from 'node:stream';
import type { ConnectionContext } from './context';
import { describeError } from './errors';
import { forget, giveBack, isShared, readIntoBuffers, SHARED_SIZE, sharedBuffer, takeOwn } from './read-buffers';
import type { Session, SessionCloser } from './registry';
import { resetOrDestroy } from './socket-util';

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
 * - Memory: a session is a Relay and two Pumps; the event listeners are shared functions that find them
 *   through the socket (`this`), not closures per session. Returns what closes the session.
 */
export function relay(client: Duplex, target: OutboundStream, options: RelayOptions, early?: Buffer): SessionCloser {
  const r = new Relay(client, target, options);
  (client as Tagged)[kRelay] = r;
  (target as Tagged)[kRelay] = r;
  client.on('error', onError);
  target.on('error', onError);
  if (options.idleTimeoutMs > 0) {
    r.watch = idleWatch(options.idleTimeoutMs);
    r.watch.add(r);
  }
  r.up.start(early);
  r.down.start();
  client.on('close', onClose);
  target.on('close', onClose);
  return r;
}

const kRelay = Symbol('socks-relay.relay');
type Tagged = Duplex & { [kRelay]?: Relay };

class Relay implements SessionCloser {
  failure: string | undefined;
  closed = 0;
  readonly up: Pump;
  readonly down: Pump;
  /** The idle sweep this relay is in, and what it saw there (see idleWatch). */
  watch: Set<Relay> | undefined;
  seen = -1;
  since = 0;

  constructor(
    readonly client: Duplex,
    /** Always a socket the route dialled: its byte counters drive the session's counts and idle detection. */
    readonly target: OutboundStream,
    readonly options: RelayOptions,
  ) {
    this.up = new Pump(client, target);
    this.down = new Pump(target, client);
  }

  /** Resets both sides (the one that failed, `cause`, is already gone); the first reason is the one reported. */
  abort(reason: string, cause?: Duplex): void {
    this.failure ??= reason;
    for (const s of [this.client, this.target]) {
      if (s === cause || s.destroyed) continue;
      // RST so the peer sees an error, not a clean EOF (but not during a pending end(): see resetOrDestroy).
      resetOrDestroy(s);
    }
  }

  /** The UI's "close session", or the proxy stopping. */
  close(reason: string): void {
    this.abort(reason);
  }

  /** The direction that reads from `socket`. */
  from(socket: Duplex): Pump {
    return socket === this.client ? this.up : this.down;
  }

  side(socket: Duplex): string {
    return socket === this.client ? 'client' : 'target';
  }
}

const relayOf = (socket: Duplex): Relay => (socket as Tagged)[kRelay] as Relay;

function onError(this: Duplex, err: Error): void {
  const r = relayOf(this);
  r.abort(`${r.side(this)}: ${describeError(err)}`, this);
}

// A socket that closes without having ended its readable side was torn down: take the other one down too.
function onClose(this: Duplex, hadError: boolean): void {
  const r = relayOf(this);
  r.from(this).release();
  if (this === r.target) r.watch?.delete(r);
  if (hadError || !this.readableEnded) r.abort(r.failure ?? `${r.side(this)} closed abruptly`, this);
  if (++r.closed === 2) r.options.onClose(r.failure);
}

// Half-close: the end of one side's stream becomes end() on the other.
function onEnd(this: Duplex): void {
  const p = relayOf(this).from(this);
  p.release();
  p.to.end();
}

// 'drain' on a socket: the direction writing to it may read again.
function onDrain(this: Duplex): void {
  const r = relayOf(this);
  (this === r.client ? r.down : r.up).drained();
}

/** Stream mode: 'data' → write, pausing the reader when write() returns false until 'drain'. */
function onData(this: Duplex, chunk: Buffer): void {
  const p = relayOf(this).from(this);
  if (!p.to.write(chunk)) {
    p.waiting = true;
    this.pause();
  }
}

/** Buffer mode: Node calls the read callback as a method of the socket (`socket[kBufferCb](n, buf)`). */
function onRead(this: Duplex, n: number, buf: Buffer): boolean {
  return relayOf(this).from(this).read(n, buf);
}

/**
 * One direction. In buffer mode a read into the shared buffer is copied out; a read that fills it means a
 * bulk transfer, so the next reads go into a large buffer of this direction's own and are written without
 * a copy. While such a write is pending (part of it still in `to`'s queue, pointing into the buffer)
 * reading stays stopped; the write's callback or 'drain' restarts it. A short read, the end of the stream
 * or the socket's close hands the buffer back. Stream mode ('data' events) is the fallback where a socket
 * cannot read into buffers (TLS).
 */
class Pump {
  own: Buffer | undefined;
  /** Reading was stopped for backpressure and waits for `to` to empty its queue. */
  waiting = false;
  /** Write callback for writes from `own`; made on the first one, so idle sessions do not carry it. */
  private afterWrite: (() => void) | undefined;
  // Node asks for the next buffer after each read, without arguments: a function of the pump's own, so that
  // whenever Node calls it, a socket can only ever be given its own buffer or the shared one.
  private readonly nextBuffer = (): Buffer => this.own ?? sharedBuffer();

  constructor(
    readonly from: Duplex,
    readonly to: Duplex,
  ) {}

  /**
   * `early`: bytes the front end read past its handshake; they go out before anything still in the socket.
   * The client may also have sent its FIN during the handshake: then its 'end' event has already been
   * emitted (net.Socket emits it at EOF even while paused), no listener added now would hear it, and the
   * half-close is passed on here instead.
   */
  start(early?: Buffer): void {
    const { from, to } = this;
    if (early !== undefined && early.length > 0 && !to.write(early)) this.waiting = true;
    if (from.readableEnded) {
      to.end();
      return;
    }
    from.on('end', onEnd);
    to.on('drain', onDrain);
    if (!readIntoBuffers(from, onRead, this.nextBuffer)) {
      from.on('data', onData);
      // The handshake paused the client socket: start it again.
      from.resume();
      return;
    }
    // What the socket read in stream mode before the switch (and bytes unshifted after a handshake) goes first.
    for (let chunk = from.read() as Buffer | null; chunk !== null; chunk = from.read() as Buffer | null) {
      if (!to.write(chunk)) this.waiting = true;
    }
    // Start reading (the handshake paused the client socket) unless `to` must empty its queue first.
    if (!this.waiting) from.resume();
  }

  read(n: number, buf: Buffer): boolean {
    const to = this.to;
    if (isShared(buf)) {
      const chunk = Buffer.allocUnsafe(n);
      buf.copy(chunk, 0, 0, n);
      if (n === SHARED_SIZE) this.own = takeOwn();
      // A copy: ordinary backpressure, 'drain' follows a false.
      if (to.write(chunk)) return true;
    } else {
      // A full read is written as the buffer itself: no view object per chunk.
      to.write(n === buf.length ? buf : buf.subarray(0, n), (this.afterWrite ??= () => this.drained()));
      if (to.writableLength === 0) {
        if (n < SHARED_SIZE) this.release();
        return true;
      }
    }
    this.waiting = true;
    return false;
  }

  drained(): void {
    if (this.waiting && this.to.writableLength === 0) {
      this.waiting = false;
      this.from.resume();
    }
  }

  /** No read comes after the end (a half-closed session may stay open a long time) or the close. */
  release(): void {
    const own = this.own;
    if (!own) return;
    this.own = undefined;
    // A write that was still pending when the socket closed may point into it.
    if (this.waiting) forget();
    else giveBack(own);
  }
}

const watchers = new Map<number, Set<Relay>>();

/**
 * Idle detection without per-chunk work: instead of socket.setTimeout (which re-arms a timer on every
 * read and write), one sweep per idle limit compares each target socket's byte counters with the last
 * sweep. Everything relayed either way crosses the target socket (always a real socket, whatever transport
 * the client came by), so unchanged counters mean no traffic.
 * A session is closed between `idleMs` and 1.5 × `idleMs` after its last byte.
 */
function idleWatch(idleMs: number): Set<Relay> {
  const existing = watchers.get(idleMs);
  if (existing) return existing;
  const entries = new Set<Relay>();
  watchers.set(idleMs, entries);
  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const r of entries) {
        const bytes = r.target.bytesRead + r.target.bytesWritten;
        if (bytes !== r.seen) {
          r.seen = bytes;
          r.since = now;
        } else if (now - r.since >= idleMs) {
          entries.delete(r);
          r.abort(`idle for ${idleMs} ms`);
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
 * Puts an established session on the relay: bytes that arrived glued to the request go first, the
 * session counts what crosses `target`, and it closes (with the failure, if any) when both sides have.
 */
export function relaySession(client: Duplex, target: OutboundStream, leftover: Buffer, session: Session, ctx: Pick<ConnectionContext, 'options' | 'logger'>): void {
  session.track(target);
  session.update({ state: 'open' });
  // Not unshift(): after an early FIN the client's stream has ended and unshift() would throw.
  session.closer = relay(client, target, new SessionEnd(session, ctx), leftover);
}

/** The relay options of a session: an object rather than closures, one less allocation set per session. */
class SessionEnd implements RelayOptions {
  readonly idleTimeoutMs: number;
  constructor(
    private readonly session: Session,
    private readonly ctx: Pick<ConnectionContext, 'options' | 'logger'>,
  ) {
    this.idleTimeoutMs = ctx.options.idleTimeoutMs;
  }

  onClose(error: string | undefined): void {
    const { session, ctx } = this;
    // The tag is built only for a line that is written (the client label costs a getpeername).
    if (error && ctx.logger.debugEnabled !== false) ctx.logger.debug(`#${session.id} ${session.client}: ${session.destination} ended: ${error}`);
    if (error === undefined) session.complete();
    else session.close(error);
  }
}
