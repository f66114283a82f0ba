import type { Socket } from 'node:net';
import { Endpoint, endpointOfSocket, formatEndpoint, normalizeIp } from '../address';
import type { ConnectionContext } from '../context';
import type { Dialer } from '../dialer';
import { Cancellation } from '../cancel';
import { describeError, ProxyError, Reply } from '../errors';
import type { Session } from '../registry';
import { relaySession } from '../relay';
import type { ProtocolHandler } from '../server';
import { closeWith } from '../socket-util';
import { decodeSocks4Request, encodeSocks4Reply, Socks4Reply, Socks4ReplyCode, socks4ReplyName, Socks4Request } from './protocol';

const EMPTY = Buffer.alloc(0);

/** Registered for first byte X'04'. */
export const serveSocks4: ProtocolHandler = (socket, first, ctx, proxy) => {
  const session = proxy.openSession('socks4', socket);
  new Socks4Connection(socket, ctx, session).start(first);
};

/**
 * One SOCKS4/4a connection: a single request (CONNECT or BIND), its reply (two for BIND), then a relay.
 * SOCKS4 carries no password, so it is refused while users are configured unless allowNoAuth is set.
 * The user id is logged but never trusted for routing.
 */
export class Socks4Connection {
  private buf: Buffer = EMPTY;
  private done = false;
  private readonly abort = new Cancellation();

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
    if (this.done) return;
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: client half-closed before its request was complete; closing`);
    this.ctx.handshakeDone();
    this.finish('client closed during handshake');
  };

  private readonly onClose = (): void => {
    this.abort.abort();
    if (!this.done) this.session.close('client closed during handshake');
  };

  /** `#id client` for log lines, formatted only when a line is written (the client label costs a getpeername). */
  private get tag(): string {
    return `#${this.session.id} ${this.session.client}`;
  }

  start(first: Buffer): void {
    this.onData(first);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let decoded;
    try {
      decoded = decodeSocks4Request(this.buf);
    } catch (err) {
      this.done = true;
      this.ctx.handshakeDone();
      this.refuse(`malformed request: ${describeError(err)}`, 'warn');
      return;
    }
    if (!decoded) return;
    this.buf = this.buf.subarray(decoded.length);
    this.done = true;
    this.socket.off('data', this.onData);
    // From here a FIN is the client's half-close of the session, delivered by the relay.
    this.socket.off('end', this.onEnd);
    this.socket.pause();
    this.ctx.handshakeDone();
    this.handleRequest(decoded.value);
  };

  private finish(outcome: string, bytes?: Buffer, reply?: number): void {
    this.done = true;
    this.session.close(outcome, reply);
    closeWith(this.socket, bytes);
  }

  private refuse(why: string, level: 'warn' | 'info' = 'info', code: Socks4ReplyCode = Socks4Reply.REJECTED): void {
    this.ctx.logger[level](`${this.tag}: SOCKS4 ${this.session.command ?? 'request'} ${this.session.destination ?? ''} refused with ${code} (${socks4ReplyName(code)}): ${why}`);
    this.finish(`${socks4ReplyName(code)}: ${why}`, encodeSocks4Reply(code), code);
  }

  private handleRequest(req: Socks4Request): void {
    const { options } = this.ctx;
    const dest = req.destination;
    this.session.update({ command: req.command, destination: formatEndpoint(dest), state: 'connecting' });
    const version = req.socks4a ? 'SOCKS4a' : 'SOCKS4';
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: ${version} ${req.command.toUpperCase()} ${formatEndpoint(dest)} user id "${req.userId}"`);
    if (!options.socks4) {
      this.refuse('SOCKS4 is disabled in the configuration', 'warn');
      return;
    }
    if (options.users.length > 0 && !options.allowNoAuth) {
      this.refuse('SOCKS4 cannot carry a password and users are configured (use SOCKS5 or HTTP with credentials, or allow unauthenticated clients)', 'warn');
      return;
    }
    if (this.ctx.overLimit) {
      this.refuse(`session limit (${options.maxSessions}) reached`, 'warn');
      return;
    }
    const decision = this.ctx.router.decide(dest, { command: req.command });
    this.session.update({ route: decision.route });
    if (decision.action === 'block') {
      this.refuse(`blocked by ${decision.route}`);
      return;
    }
    const run = req.command === 'connect' ? this.connect(dest, decision.dialer) : this.bind(dest, decision.dialer);
    run.catch((err: unknown) => {
      if (this.socket.destroyed) {
        this.session.close(`client went away: ${describeError(err)}`);
        return;
      }
      this.refuse(`${describeError(err)} (via ${decision.route})`, 'warn');
    });
  }

  private startRelay(target: Socket): void {
    // From here the relay owns both sockets; as in the SOCKS5 handler, letting go of this object frees it.
    this.socket.off('close', this.onClose);
    const leftover = this.buf;
    this.buf = EMPTY;
    relaySession(this.socket, target, leftover, this.session, this.ctx);
  }


  private async connect(dest: Endpoint, dialer: Dialer): Promise<void> {
    const target = await dialer.dial(dest, { signal: this.abort.signal, route: this.session });
    if (this.socket.destroyed) {
      target.destroy();
      this.session.close('client went away while connecting');
      return;
    }
    this.socket.write(encodeSocks4Reply(Socks4Reply.GRANTED, endpointOfSocket(target.localAddress, target.localPort)));
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: SOCKS4 CONNECT ${this.session.destination} via ${this.session.route}`);
    this.startRelay(target);
  }

  private async bind(dest: Endpoint, dialer: Dialer): Promise<void> {
    if (!dialer.bind) throw new ProxyError('BAD_COMMAND', `BIND is not supported through ${dialer.label}`, Reply.COMMAND_NOT_SUPPORTED);
    const handle = await dialer.bind(dest, {
      signal: this.abort.signal,
      route: this.session,
      localAddress: normalizeIp(this.socket.localAddress),
      timeoutMs: this.ctx.options.bindTimeoutMs,
      onRefusedPeer: (peer) => this.ctx.logger.warn(`${this.tag}: SOCKS4 BIND refused a connection from ${formatEndpoint(peer)} (expected ${this.session.destination})`),
    });
    if (this.socket.destroyed) {
      handle.close();
      this.session.close('client went away');
      return;
    }
    this.socket.write(encodeSocks4Reply(Socks4Reply.GRANTED, handle.bound));
    this.session.update({ state: 'waiting' });
    this.ctx.logger.debug(`${this.tag}: SOCKS4 BIND listening on ${formatEndpoint(handle.bound)} for ${this.session.destination}`);
    const { socket: peerSocket, peer } = await handle.accepted;
    if (this.socket.destroyed) {
      peerSocket.destroy();
      this.session.close('client went away while waiting for the peer');
      return;
    }
    this.socket.write(encodeSocks4Reply(Socks4Reply.GRANTED, peer));
    this.ctx.logger.debug(`${this.tag}: SOCKS4 BIND accepted ${formatEndpoint(peer)}`);
    this.startRelay(peerSocket);
  }
}
