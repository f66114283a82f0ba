/**
 * The owner's side of the control channel: accepts the windows that attach, checks their secret, sends
 * them the relay's state and session batches, and runs the commands they send (Start, Stop, …) on the
 * relay it owns. Bounded: a few dozen members, small handshakes with a deadline, one batch per interval.
 */
import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { CONTROL_VERSION, ControlCommand, encodeMessage, LineDecoder, memberMessage, OwnerMessage, RelayState, SessionBatch } from './protocol';

const MAX_MEMBERS = 64;
const HELLO_TIMEOUT_MS = 5_000;
/** A member that does not read (its window hangs) is dropped rather than buffered for. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export interface OwnerChannelEvents {
  /** A member's command; `done` reports the result to it. */
  command: [ControlCommand, (error?: { code: string; message: string }) => void];
  members: [number];
}

export class OwnerChannel extends EventEmitter<OwnerChannelEvents> {
  private readonly members = new Set<net.Socket>();
  private closed = false;

  constructor(
    private readonly server: net.Server,
    private readonly token: string,
    /** The current state and a full session batch, for a member that just arrived. */
    private readonly snapshot: () => { relay: RelayState; sessions: SessionBatch },
  ) {
    super();
    server.on('connection', (socket) => this.accept(socket));
  }

  get size(): number {
    return this.members.size;
  }

  broadcast(message: OwnerMessage): void {
    if (this.members.size === 0) return;
    const line = encodeMessage(message);
    for (const m of this.members) {
      if (m.writableLength > MAX_PENDING_BYTES) {
        m.destroy();
        continue;
      }
      m.write(line);
    }
  }

  close(): Promise<void> {
    this.closed = true;
    for (const m of this.members) m.destroy();
    this.members.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    if (this.closed || this.members.size >= MAX_MEMBERS) {
      socket.destroy();
      return;
    }
    socket.setEncoding('utf8');
    const decoder = new LineDecoder();
    let member = false;
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    const send = (m: OwnerMessage): void => {
      if (!socket.destroyed) socket.write(encodeMessage(m));
    };
    socket.on('data', (chunk: string) => {
      let messages: unknown[];
      try {
        messages = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const raw of messages) {
        const m = memberMessage(raw);
        if (!m) {
          socket.destroy();
          return;
        }
        if (!member) {
          if (m.t !== 'hello' || !sameSecret(m.token, this.token)) {
            send({ t: 'denied', reason: 'wrong secret' });
            socket.end();
            return;
          }
          if (m.version !== CONTROL_VERSION) {
            send({ t: 'denied', reason: `control version ${m.version} (this window speaks ${CONTROL_VERSION}): reload the older window` });
            socket.end();
            return;
          }
          clearTimeout(timer);
          member = true;
          this.members.add(socket);
          const { relay, sessions } = this.snapshot();
          send({ t: 'welcome', version: CONTROL_VERSION, relay, sessions });
          this.emit('members', this.members.size);
          continue;
        }
        if (m.t === 'command') {
          const id = m.id;
          this.emit('command', m.command, (error) => send({ t: 'result', id, ok: error === undefined, ...(error ? { error } : {}) }));
        }
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.members.delete(socket)) this.emit('members', this.members.size);
    });
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
