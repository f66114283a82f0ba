import type { Endpoint } from '../address';
import { anonymousAllowed, checkCredentials, credentialsChecked } from '../auth';
import type { ConnectionContext, ProtocolHandler } from '../context';
import type { Dialer } from '../dialer';
import { describeError, ProxyError, Reply, ReplyCode, replyName } from '../errors';
import { admit, dialRefusal, isRefusal, Refusal, Replier, serveRequest } from '../pipeline';
import type { Session } from '../registry';
import { asClientStream, ClientStream } from '../transport';
import { closeWith } from '../socket-util';
import { failureOf } from '../outcome';
import { UdpAssociation } from './udp-association';
import { gssapi, Protector } from '../gssapi/library';
import { decodeGssMessage, encodeGssAbort, GssMessage, MAX_TOKEN, Protection } from '../gssapi/messages';
import { describeLevels, GssServerHandshake } from '../gssapi/server';
import { GssEncapsulatedStream } from '../gssapi/encapsulated-stream';
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

type Stage = 'greeting' | 'auth' | 'gssapi' | 'request' | 'done';

/** Bytes a client may send ahead while a GSS-API call runs: more than the largest message (4 + 65535). */
const MAX_BUFFERED_DURING_GSSAPI = 2 * (4 + MAX_TOKEN);

/** Registered for first byte X'05'. */
export const serveSocks5: ProtocolHandler = (socket, first, ctx) => {
  new Socks5Connection(socket, ctx, ctx.openSession('socks5', socket)).start(first);
};

/**
 * One SOCKS5 connection from greeting to close (RFC 1928, RFC 1929).
 * The handshake is parsed incrementally from whatever chunks arrive; once the request is complete the
 * socket is paused so bytes sent right behind it wait in the socket until the outbound side is ready.
 */
export class Socks5Connection implements Replier {
  private buf: Buffer = EMPTY;
  private stage: Stage = 'greeting';
  /** The RFC 1961 exchange, while method X'01' runs. */
  private gss: GssServerHandshake | undefined;
  /** A GSS-API call is running: bytes wait in `buf` until it is done. */
  private waiting = false;
  private gssGaveUpLogged = false;
  constructor(
    private socket: ClientStream,
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
    if (this.stage === 'gssapi') this.logGssGaveUp();
    else if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: client half-closed during the ${this.stage}; closing`);
    this.ctx.handshakeDone();
    this.finish('client closed during handshake');
  };

  private readonly onClose = (): void => {
    if (this.stage === 'gssapi') this.logGssGaveUp();
    this.disposeGss();
    if (this.stage !== 'done') this.session.close(this.stage === 'gssapi' ? 'client closed during GSSAPI authentication' : 'client closed during handshake');
  };

  /** A GSSAPI client that closes instead of sending a token usually has no ticket (Dante's client does that). */
  private logGssGaveUp(): void {
    if (this.gssGaveUpLogged) return;
    this.gssGaveUpLogged = true;
    this.ctx.logger.warn(`${this.tag}: client closed during GSSAPI authentication (${this.gss?.principal === undefined ? 'before completing the Kerberos context: no ticket, or it refused ours' : 'during the protection-level subnegotiation'})`);
  }

  private disposeGss(): void {
    this.gss?.dispose();
    this.gss = undefined;
  }

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
    if (this.waiting) {
      if (this.buf.length > MAX_BUFFERED_DURING_GSSAPI) this.failHandshake(new ProxyError('PROTOCOL_ERROR', `${this.buf.length} bytes sent ahead during the GSSAPI exchange`));
      return;
    }
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
        this.stage = method === Method.USERNAME_PASSWORD ? 'auth' : method === Method.GSSAPI ? 'gssapi' : 'request';
      } else if (this.stage === 'gssapi') {
        const m = decodeGssMessage(this.buf);
        if (!m) return;
        this.consume(m.length);
        this.runGss(m.value);
        return;
      } else if (this.stage === 'auth') {
        const a = decodeUserPass(this.buf);
        if (!a) return;
        this.consume(a.length);
        if (!checkCredentials(options.users, a.value.username, a.value.password)) {
          this.ctx.logger.warn(`${this.tag}: authentication failed for user "${a.value.username}"`);
          this.finish('authentication failed', encodeUserPassReply(false));
          return;
        }
        this.session.update({ user: a.value.username, authMethod: 'password' });
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

  /**
   * Username/password first (a client offers it only when it has a password to send); then no
   * authentication where allowed, before GSSAPI: curl and others offer GSSAPI whenever they are built
   * with it, ticket or not, so adding a keytab must not turn a client that worked into one that fails.
   * GSSAPI is chosen when it is the way in: the client offers nothing else that is accepted.
   */
  private chooseMethod(offered: number[]): number {
    const { options } = this.ctx;
    if (credentialsChecked(options) && offered.includes(Method.USERNAME_PASSWORD)) return Method.USERNAME_PASSWORD;
    if (anonymousAllowed(options) && offered.includes(Method.NO_AUTH)) return Method.NO_AUTH;
    if (options.gssapi && offered.includes(Method.GSSAPI) && this.prepareGss(options.gssapi.keytab)) return Method.GSSAPI;
    return Method.NO_ACCEPTABLE;
  }

  /** Sets up the acceptor before X'01' is chosen, so a missing library or keytab means the method is not offered. */
  private prepareGss(keytab: string | undefined): boolean {
    const load = gssapi();
    if (!load.ok) {
      this.ctx.logger.debug(`${this.tag}: GSSAPI offered by the client but not available: ${load.reason}`);
      return false;
    }
    try {
      this.gss = new GssServerHandshake(load.api, keytab, `client ${this.tag}`);
      return true;
    } catch (err) {
      this.ctx.logger.warn(`${this.tag}: GSSAPI not offered: ${describeError(err)}`);
      return false;
    }
  }

  /**
   * From here everything (the request, the reply, the relayed data) goes through an encapsulating
   * stream (RFC 1961 section 5): this handler and then the relay read and write plaintext from it.
   */
  private encapsulate(protector: Protector, confidential: boolean): void {
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('end', this.onEnd);
    raw.off('close', this.onClose);
    // Bytes that came right behind the subnegotiation are already encapsulated: the stream decodes them.
    if (this.buf.length > 0) raw.unshift(this.buf);
    this.buf = EMPTY;
    const stream = asClientStream(new GssEncapsulatedStream(raw, protector, confidential, `client ${this.tag}`), raw);
    // The raw socket keeps the server's listeners (error, close, the handshake deadline); the stream's errors end the session.
    stream.on('error', (err: Error) => this.ctx.logger.debug(`${this.tag}: GSSAPI-protected stream: ${describeError(err)}`));
    stream.on('data', this.onData);
    stream.once('end', this.onEnd);
    stream.once('close', this.onClose);
    this.socket = stream;
  }

  /** One RFC 1961 message through the acceptor (on a worker thread); the next bytes wait until it answers. */
  private runGss(msg: GssMessage): void {
    const gss = this.gss;
    if (!gss) throw new ProxyError('PROTOCOL_ERROR', 'GSSAPI message without a GSSAPI exchange');
    this.waiting = true;
    gss.handle(msg).then(
      (r) => {
        this.waiting = false;
        if (this.stage === 'done' || this.socket.destroyed) return;
        if (r.reply.length > 0) this.socket.write(r.reply);
        if (r.requested !== undefined && r.agreed !== undefined) {
          this.session.update({ user: r.principal, authMethod: 'gssapi' });
          this.ctx.logger.info(`${this.tag}: GSSAPI authenticated ${r.principal ?? 'unknown principal'} (${describeLevels(r.requested, r.agreed)})`);
          if (r.agreed !== Protection.NONE) this.encapsulate(gss.takeProtector(), r.agreed === Protection.CONFIDENTIALITY);
          this.disposeGss();
          this.stage = 'request';
        }
        this.onData(EMPTY);
      },
      (err: unknown) => {
        this.waiting = false;
        this.disposeGss();
        // The client went away while the call ran: its close already ended the session and said why.
        if (this.stage === 'done' || this.socket.destroyed) return;
        const code = err instanceof ProxyError ? err.code : 'GSSAPI_FAILED';
        this.ctx.logger.warn(`${this.tag}: GSSAPI authentication failed [${code}]: ${describeError(err)}`);
        this.stage = 'done';
        this.ctx.handshakeDone();
        this.session.failed(failureOf(err, 'refused'));
        this.session.close(`GSSAPI authentication failed: ${describeError(err)}`);
        // Section 3.4: the refusal, then close (no abort back to a client that aborted itself).
        closeWith(this.socket, err instanceof ProxyError && err.code === 'GSSAPI_REJECTED' ? undefined : encodeGssAbort());
      },
    );
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

  /** Replier: the debug line once relaying. */
  relaying(): void {
    this.ctx.logger.debug(`${this.tag}: ${this.session.command === 'bind' ? 'BIND' : 'CONNECT'} ${this.session.destination} via ${this.session.route}`);
  }

  private refuse(code: ReplyCode, why: string, level: 'warn' | 'info' = 'info'): void {
    this.ctx.logger[level](`${this.tag}: ${this.session.command ?? 'request'} ${this.session.destination ?? ''} refused with 0x0${code} (${replyName(code)}): ${why}`);
    this.finish(`${replyName(code)}: ${why}`, encodeReply(code, NO_ADDRESS), code);
  }

  private handleRequest(req: Request): void {
    // The socket is wrapped in RFC 1961 section 5 encapsulation: datagrams would need it too.
    if (req.command === 'udp-associate' && this.socket instanceof GssEncapsulatedStream) {
      this.session.update({ command: 'udp-associate' });
      this.refuse(Reply.COMMAND_NOT_SUPPORTED, 'UDP ASSOCIATE with GSSAPI per-message protection would need encapsulated datagrams, which are not supported', 'warn');
      return;
    }
    if (req.command === 'udp-associate') {
      this.associate(req.destination);
      return;
    }
    // From here the pipeline owns the request; letting go of this handler frees it for the session's lifetime.
    this.socket.off('close', this.onClose);
    const early = this.buf;
    this.buf = EMPTY;
    serveRequest(this.socket, { command: req.command, destination: req.destination, early }, this, this.session, this.ctx);
  }

  private associate(hint: Endpoint): void {
    const admitted = admit(this.ctx, this.session, hint, { command: 'udp-associate', user: this.session.user });
    if (isRefusal(admitted)) {
      this.refused(admitted);
      return;
    }
    this.udpAssociate(hint, admitted.dialer).catch((err: unknown) => {
      if (this.socket.destroyed) {
        this.session.close(`client went away: ${describeError(err)}`);
        return;
      }
      this.refused(dialRefusal(err, this.session));
    });
  }

  /** Replier: a refusal as the SOCKS5 reply carrying its code (RFC 1928 section 6), with a log line. */
  refused(r: Refusal): void {
    this.refuse(r.reply, r.message, r.stage === 'blocked' ? 'info' : 'warn');
  }

  /** Replier: a success reply with BND.ADDR/BND.PORT (CONNECT, and BIND's first reply). */
  granted(bound: Endpoint): void {
    this.socket.write(encodeReply(Reply.SUCCEEDED, bound));
  }

  /** Replier: BIND's second reply, the peer's address. */
  accepted(peer: Endpoint): void {
    this.socket.write(encodeReply(Reply.SUCCEEDED, peer));
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
