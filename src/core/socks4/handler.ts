import { Endpoint, formatEndpoint } from '../address';
import { anonymousAllowed } from '../auth';
import type { ConnectionContext, ProtocolHandler } from '../context';
import { describeError } from '../errors';
import { Refusal, Replier, serveRequest } from '../pipeline';
import type { Session } from '../registry';
import type { ClientStream } from '../transport';
import { closeWith } from '../socket-util';
import { decodeSocks4Request, encodeSocks4Reply, Socks4Reply, Socks4ReplyCode, socks4ReplyName, Socks4Request } from './protocol';

const EMPTY = Buffer.alloc(0);

/** Registered for first byte X'04'. */
export const serveSocks4: ProtocolHandler = (socket, first, ctx) => {
  const session = ctx.openSession('socks4', socket);
  new Socks4Connection(socket, ctx, session).start(first);
};

/**
 * One SOCKS4/4a connection: a single request (CONNECT or BIND), its reply (two for BIND), then a relay.
 * SOCKS4 carries no password, so it is refused while users are configured unless allowNoAuth is set.
 * The user id is logged but never trusted for routing.
 */
export class Socks4Connection implements Replier {
  private buf: Buffer = EMPTY;
  private done = false;

  constructor(
    private readonly socket: ClientStream,
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
    if (!anonymousAllowed(options)) {
      this.refuse('SOCKS4 cannot carry a password and users are configured (use SOCKS5 or HTTP with credentials, or allow unauthenticated clients)', 'warn');
      return;
    }
    // From here the pipeline owns the request; as in the SOCKS5 handler, letting go of this object frees it.
    this.socket.off('close', this.onClose);
    const early = this.buf;
    this.buf = EMPTY;
    serveRequest(this.socket, { command: req.command, destination: dest, early }, this, this.session, this.ctx);
  }

  /** Replier: reply 90 with the outbound address (CONNECT) or where the peer should connect (BIND's first reply). */
  granted(bound: Endpoint): void {
    this.socket.write(encodeSocks4Reply(Socks4Reply.GRANTED, bound));
  }

  /** Replier: BIND's second reply. */
  accepted(peer: Endpoint): void {
    this.socket.write(encodeSocks4Reply(Socks4Reply.GRANTED, peer));
  }

  /** Replier: SOCKS4 has one refusal code (91); the log line and the outcome say why. */
  refused(r: Refusal): void {
    if (r.stage === 'dial') this.refuse(`${r.message} (via ${r.route})`, 'warn');
    else this.refuse(r.message, r.stage === 'blocked' ? 'info' : 'warn');
  }

  relaying(): void {
    this.ctx.logger.debug(`${this.tag}: SOCKS4 ${this.session.command === 'bind' ? 'BIND' : 'CONNECT'} ${this.session.destination} via ${this.session.route}`);
  }
}
