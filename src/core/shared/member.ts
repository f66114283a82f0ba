/**
 * A member's side of the control channel: proves the secret, then follows the owner's state and session
 * batches and sends it commands. 'lost' means the owner went away (its window closed, reloaded or
 * crashed): the member then tries to take over (membership.ts).
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { CONTROL_VERSION, ControlCommand, encodeMessage, LineDecoder, ownerMessage, RelayState, SessionBatch } from './protocol';

const COMMAND_TIMEOUT_MS = 30_000;
const WELCOME_TIMEOUT_MS = 5_000;

export interface MemberChannelEvents {
  state: [RelayState];
  sessions: [SessionBatch];
  lost: [string];
}

export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

export class MemberChannel extends EventEmitter<MemberChannelEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  relay: RelayState | undefined;
  private gone = false;

  private constructor(private readonly socket: net.Socket) {
    super();
  }

  /** Says hello and waits for the welcome; rejects (and closes) when the owner denies or does not answer. */
  static async join(socket: net.Socket, token: string, window: string): Promise<{ channel: MemberChannel; relay: RelayState; sessions: SessionBatch }> {
    const channel = new MemberChannel(socket);
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    const decoder = new LineDecoder();
    return new Promise((resolve, reject) => {
      let welcomed = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlError('NO_WELCOME', 'the owning window did not answer'));
      }, WELCOME_TIMEOUT_MS);
      socket.on('data', (chunk: string) => {
        let messages: unknown[];
        try {
          messages = decoder.push(chunk);
        } catch (err) {
          socket.destroy(err as Error);
          return;
        }
        for (const raw of messages) {
          const m = ownerMessage(raw);
          if (!m) continue; // newer owner, unknown message: ignore
          if (!welcomed) {
            clearTimeout(timer);
            if (m.t !== 'welcome') {
              socket.destroy();
              reject(new ControlError('DENIED', m.t === 'denied' ? m.reason : 'unexpected answer'));
              return;
            }
            welcomed = true;
            channel.relay = m.relay;
            resolve({ channel, relay: m.relay, sessions: m.sessions });
            continue;
          }
          channel.handle(m);
        }
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (!welcomed) reject(new ControlError('NO_WELCOME', 'the owning window closed the connection'));
        else channel.lost('the owning window went away');
      });
      socket.write(encodeMessage({ t: 'hello', version: CONTROL_VERSION, token, window }));
    });
  }

  /** Runs a command on the shared relay; resolves when the owner has done it. */
  command(command: ControlCommand): Promise<void> {
    if (this.gone) return Promise.reject(new ControlError('OWNER_GONE', 'the owning window went away'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlError('TIMEOUT', `the owning window did not finish ${command.name}`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeMessage({ t: 'command', id, command }));
    });
  }

  close(): void {
    this.gone = true;
    this.socket.destroy();
  }

  private handle(m: NonNullable<ReturnType<typeof ownerMessage>>): void {
    switch (m.t) {
      case 'state':
        this.relay = m.relay;
        this.emit('state', m.relay);
        break;
      case 'sessions':
        this.emit('sessions', m.batch);
        break;
      case 'result': {
        const p = this.pending.get(m.id);
        if (!p) break;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve();
        else p.reject(new ControlError(m.error?.code ?? 'FAILED', m.error?.message ?? 'failed'));
        break;
      }
      default:
        break;
    }
  }

  private lost(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ControlError('OWNER_GONE', reason));
    }
    this.pending.clear();
    this.emit('lost', reason);
  }
}
