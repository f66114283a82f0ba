import type { Socket } from 'node:net';
import { Endpoint, endpointOfSocket, formatEndpoint, normalizeIp } from '../address';
import { checkCredentials } from '../auth';
import { Cancellation, type CancelSignal } from '../cancel';
import type { ConnectionContext } from '../context';
import type { Dialer } from '../dialer';
import { describeError, ProxyError, Reply, ReplyCode, replyForError, replyName } from '../errors';
import type { Session } from '../registry';
import { relaySession } from '../relay';
import { closeWith } from '../socket-util';
import { UdpAssociation } from './udp-association';
import {
  decodeGreeting,
  decodeRequest,
  decodeUserPass,
  encodeMethodSelection,
  encodeReply,
  encodeUserPassReply,
  Method,
  Request,
} from './protocol';

const NO_ADDRESS: Endpoint = { type: 'ipv4', host: '0.0.0.0', port: 0 };
const EMPTY = Buffer.alloc(0);

type Stage = 'greeting' | 'auth' | 'request' | 'done';

/**
 * One SOCKS5 connection from greeting to close (RFC 1928, RFC 1929).
 * The handshake is parsed incrementally from whatever chunks arrive; once the request is complete the
 * socket is paused so bytes sent right behind it wait in the socket until the outbound side is ready.
 */
export class Socks5Connection {
  private buf: Buffer = EMPTY;
  private stage: Stage = 'greeting';
  /** Set while a dial or BIND is in flight (closing the client aborts it); dropped once relaying. */
  private abort: Cancellation | undefined;
  constructor(
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
    private readonly session: Session,
  ) {
    socket.on('data', this.onData);
    socket.once('close', this.onClose);
    socket.once('end', this.onEnd);
  }

  /** A FIN before the request is complete: no request can follow, so close now rather than at the handshake deadline. */
  private readonly onEnd = (): void => {
    if (this.stage === 'done') return;
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: client half-closed during the ${this.stage}; closing`);
    this.ctx.handshakeDone();
    this.finish('client closed during handshake');
  };

  private readonly onClose = (): void => {
    // Only when something is in flight: stops a dial whose client has gone.
    this.abort?.abort();
    if (this.stage !== 'done') this.session.close('client closed during handshake');
  };

  /** `#id client` for log lines, formatted only when a line is written. */
  private get tag(): string {
    return `#${this.session.id} ${this.session.client}`;
  }

  /** Feeds the bytes the protocol sniffer already read. */
  start(first: Buffer): void {
    this.onData(first);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      this.advance();
    } catch (err) {
      this.failHandshake(err);
    }
  };

  private consume(n: number): void {
    this.buf = this.buf.length === n ? EMPTY : this.buf.subarray(n);
  }

  private advance(): void {
    const { options } = this.ctx;
    while (this.stage !== 'done') {
      if (this.stage === 'greeting') {
        const g = decodeGreeting(this.buf);
        if (!g) return;
        this.consume(g.length);
        const method = this.chooseMethod(g.value);
        if (method === Method.NO_ACCEPTABLE) {
          const offered = g.value.map((m) => `0x${m.toString(16).padStart(2, '0')}`).join(',') || 'none';
          this.ctx.logger.warn(`${this.tag}: no acceptable authentication method (offered ${offered})`);
          this.finish('no acceptable method', encodeMethodSelection(Method.NO_ACCEPTABLE));
          return;
        }
        this.socket.write(encodeMethodSelection(method));
        this.stage = method === Method.USERNAME_PASSWORD ? 'auth' : 'request';
      } else if (this.stage === 'auth') {
        const a = decodeUserPass(this.buf);
        if (!a) return;
        this.consume(a.length);
        if (!checkCredentials(options.users, a.value.username, a.value.password)) {
          this.ctx.logger.warn(`${this.tag}: authentication failed for user "${a.value.username}"`);
          this.finish('authentication failed', encodeUserPassReply(false));
          return;
        }
        this.session.update({ user: a.value.username });
        this.socket.write(encodeUserPassReply(true));
        this.stage = 'request';
      } else {
        const r = decodeRequest(this.buf);
        if (!r) return;
        this.consume(r.length);
        this.stage = 'done';
        this.socket.off('data', this.onData);
        // From here a FIN is the client's half-close of the session, delivered by the relay.
        this.socket.off('end', this.onEnd);
        this.socket.pause();
        this.ctx.handshakeDone();
        this.handleRequest(r.value);
        return;
      }
    }
  }

  private chooseMethod(offered: number[]): number {
    const { users, allowNoAuth } = this.ctx.options;
    if (users.length > 0 && offered.includes(Method.USERNAME_PASSWORD)) return Method.USERNAME_PASSWORD;
    if ((users.length === 0 || allowNoAuth) && offered.includes(Method.NO_AUTH)) return Method.NO_AUTH;
    return Method.NO_ACCEPTABLE;
  }

  private failHandshake(err: unknown): void {
    const message = describeError(err);
    this.ctx.logger.warn(`${this.tag}: malformed ${this.stage === 'request' ? 'request' : this.stage}: ${message}`);
    // Only a request has a reply format that can carry an error code; earlier stages just close.
    const reply = this.stage === 'request' && err instanceof ProxyError ? encodeReply(err.reply, NO_ADDRESS) : undefined;
    const code = err instanceof ProxyError ? err.reply : Reply.GENERAL_FAILURE;
    this.stage = 'done';
    this.ctx.handshakeDone();
    this.finish(message, reply, reply ? code : undefined);
  }

  /** Ends the session with a final message. */
  private finish(outcome: string, bytes?: Buffer, reply?: number): void {
    this.stage = 'done';
    this.session.close(outcome, reply);
    closeWith(this.socket, bytes);
  }

  private refuse(code: ReplyCode, why: string, level: 'warn' | 'info' = 'info'): void {
    this.ctx.logger[level](`${this.tag}: ${this.session.command ?? 'request'} ${this.session.destination ?? ''} refused with 0x0${code} (${replyName(code)}): ${why}`);
    this.finish(`${replyName(code)}: ${why}`, encodeReply(code, NO_ADDRESS), code);
  }

  private handleRequest(req: Request): void {
    const dest = req.destination;
    if (this.ctx.overLimit) {
      this.session.update({ command: req.command, destination: formatEndpoint(dest), state: 'connecting' });
      this.refuse(Reply.GENERAL_FAILURE, `session limit (${this.ctx.options.maxSessions}) reached`, 'warn');
      return;
    }
    const decision = this.ctx.router.decide(dest, { command: req.command, user: this.session.user });
    // One 'change' event for command, destination, route and state.
    this.session.update({ command: req.command, destination: formatEndpoint(dest), route: decision.route, state: 'connecting' });
    if (decision.action === 'block') {
      this.refuse(Reply.NOT_ALLOWED, `blocked by ${decision.route}`);
      return;
    }
    const dialer = decision.dialer;
    this.abort = new Cancellation();
    const { signal } = this.abort;
    const run = req.command === 'connect' ? this.connect(dest, dialer, signal) : req.command === 'bind' ? this.bind(dest, dialer, signal) : this.udpAssociate(dest, dialer);
    run.catch((err: unknown) => {
      if (this.socket.destroyed) {
        this.session.close(`client went away: ${describeError(err)}`);
        return;
      }
      this.refuse(replyForError(err), describeError(err), 'warn');
    });
  }

  private startRelay(target: Socket): void {
    this.abort = undefined;
    // From here the relay owns both sockets; letting go of this handler frees it for the session's lifetime.
    this.socket.off('close', this.onClose);
    const leftover = this.buf;
    this.buf = EMPTY;
    relaySession(this.socket, target, leftover, this.session, this.ctx);
  }

  private async connect(dest: Endpoint, dialer: Dialer, signal: CancelSignal): Promise<void> {
    const target = await dialer.dial(dest, { signal, route: this.session });
    if (this.socket.destroyed) {
      target.destroy();
      this.session.close('client went away while connecting');
      return;
    }
    this.socket.write(encodeReply(Reply.SUCCEEDED, endpointOfSocket(target.localAddress, target.localPort)));
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: CONNECT ${this.session.destination} via ${this.session.route}`);
    this.startRelay(target);
  }

  private async bind(dest: Endpoint, dialer: Dialer, signal: CancelSignal): Promise<void> {
    if (!dialer.bind) throw new ProxyError('BAD_COMMAND', `BIND is not supported through ${dialer.label}`, Reply.COMMAND_NOT_SUPPORTED);
    const handle = await dialer.bind(dest, {
      signal,
      route: this.session,
      localAddress: normalizeIp(this.socket.localAddress),
      timeoutMs: this.ctx.options.bindTimeoutMs,
      onRefusedPeer: (peer) => this.ctx.logger.warn(`${this.tag}: BIND refused a connection from ${formatEndpoint(peer)} (expected ${this.session.destination})`),
    });
    this.socket.write(encodeReply(Reply.SUCCEEDED, handle.bound));
    this.session.update({ state: 'waiting' });
    this.ctx.logger.debug(`${this.tag}: BIND listening on ${formatEndpoint(handle.bound)} for ${this.session.destination}`);
    const { socket: peerSocket, peer } = await handle.accepted;
    if (this.socket.destroyed) {
      peerSocket.destroy();
      this.session.close('client went away while waiting for the peer');
      return;
    }
    this.socket.write(encodeReply(Reply.SUCCEEDED, peer));
    this.ctx.logger.debug(`${this.tag}: BIND accepted ${formatEndpoint(peer)}`);
    this.startRelay(peerSocket);
  }

  private async udpAssociate(hint: Endpoint, firstDialer: Dialer): Promise<void> {
    if (!firstDialer.openUdp) throw new ProxyError('BAD_COMMAND', `UDP is not supported through ${firstDialer.label}`, Reply.COMMAND_NOT_SUPPORTED);
    if (!this.ctx.acquireUdp()) {
      throw new ProxyError('TOO_MANY_ASSOCIATIONS', `UDP association limit (${this.ctx.options.maxUdpAssociations}) reached`, Reply.GENERAL_FAILURE);
    }
    const assoc = new UdpAssociation(this.socket, this.ctx, this.session, hint, this.tag);
    try {
      await assoc.open();
    } catch (err) {
      assoc.teardown(describeError(err));
      throw err;
    }
  }
}
