import * as dgram from 'node:dgram';
import { isIP, Socket } from 'node:net';
import { Endpoint, endpoint, endpointOfSocket, formatEndpoint, normalizeIp } from '../address';
import { checkCredentials } from '../auth';
import { Cancellation, type CancelSignal } from '../cancel';
import type { ConnectionContext } from '../context';
import type { Dialer, UdpPath } from '../dialer';
import { describeError, ProxyError, Reply, ReplyCode, replyForError, replyName } from '../errors';
import type { Session } from '../registry';
import { relaySession } from '../relay';
import { closeWith } from '../socket-util';
import {
  decodeGreeting,
  decodeRequest,
  decodeUdpHeader,
  decodeUserPass,
  encodeMethodSelection,
  encodeReply,
  encodeUdpHeader,
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
  }

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

/** One UDP ASSOCIATE: a client-facing relay socket, outbound paths per route, and their lifetime. */
class UdpAssociation {
  private relaySocket: dgram.Socket | undefined;
  private readonly clientIp: string;
  private clientPort: number | undefined;
  /** The relay socket is connect()ed to the client once its port is known (see connectToClient). */
  private connected = false;
  private readonly paths = new Map<Dialer, UdpPath | Promise<UdpPath | undefined>>();
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly headerCache = new Map<string, Buffer>();
  private readonly abort = new Cancellation();

  constructor(
    private readonly control: Socket,
    private readonly ctx: ConnectionContext,
    private readonly session: Session,
    hint: Endpoint,
    private readonly tag: string,
  ) {
    this.clientIp = normalizeIp(control.remoteAddress);
    // RFC 1928: DST.PORT is the port the client will send from; 0 means "not known yet".
    this.clientPort = hint.port !== 0 ? hint.port : undefined;
  }

  async open(): Promise<void> {
    const localIp = normalizeIp(this.control.localAddress);
    const sock = dgram.createSocket({ type: isIP(localIp) === 6 ? 'udp6' : 'udp4' });
    this.relaySocket = sock;
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, localIp, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => this.ctx.logger.debug(`${this.tag}: UDP relay socket: ${err.message}`));
    sock.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    if (this.clientPort !== undefined) this.connectToClient(this.clientPort);
    const bound = endpoint(localIp, sock.address().port);
    this.control.write(encodeReply(Reply.SUCCEEDED, bound));
    this.session.update({ state: 'open' });
    this.ctx.logger.debug(`${this.tag}: UDP ASSOCIATE relaying on ${formatEndpoint(bound)}`);
    // The association lives as long as its TCP connection (RFC 1928 section 7); drain anything sent on it.
    this.control.on('data', () => undefined);
    this.control.on('end', () => this.teardown('ok'));
    this.control.on('close', () => this.teardown('ok'));
    this.control.on('error', (err) => this.teardown(`control connection: ${err.message}`));
    this.control.resume();
    const idle = this.ctx.options.udpIdleTimeoutMs;
    if (idle > 0) {
      this.idleTimer = setInterval(() => {
        if (Date.now() - this.lastActivity >= idle) this.teardown(`UDP idle for ${idle} ms`);
      }, Math.max(50, Math.min(idle / 4, 5_000)));
      this.idleTimer.unref();
    }
    this.session.closer = { close: (reason) => this.teardown(reason) };
  }

  teardown(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    clearInterval(this.idleTimer);
    this.relaySocket?.close();
    for (const p of this.paths.values()) {
      if (p instanceof Promise) void p.then((path) => path?.close());
      else p.close();
    }
    this.paths.clear();
    this.ctx.releaseUdp();
    if (reason !== 'ok') this.ctx.logger.debug(`${this.tag}: UDP association ended: ${reason}`);
    this.session.close(reason);
    if (!this.control.destroyed) this.control.destroy();
  }

  private fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (normalizeIp(rinfo.address) !== this.clientIp) return; // only the client may use its association
    if (this.clientPort === undefined) {
      this.clientPort = rinfo.port;
      this.connectToClient(rinfo.port);
    } else if (rinfo.port !== this.clientPort) return;
    this.lastActivity = Date.now();
    let datagram;
    try {
      datagram = decodeUdpHeader(msg);
    } catch (err) {
      this.ctx.logger.debug(`${this.tag}: dropped malformed UDP datagram: ${describeError(err)}`);
      return;
    }
    if (datagram.frag !== 0) {
      this.ctx.logger.debug(`${this.tag}: dropped UDP fragment ${datagram.frag} (fragmentation is not supported)`);
      return;
    }
    const decision = this.ctx.router.decide(datagram.destination, { command: 'udp-associate', user: this.session.user });
    if (this.session.destination === undefined || this.session.route === undefined) {
      this.session.update({ destination: formatEndpoint(datagram.destination), route: decision.route });
    }
    if (decision.action === 'block') {
      this.ctx.logger.debug(`${this.tag}: UDP to ${formatEndpoint(datagram.destination)} blocked by ${decision.route}`);
      return;
    }
    this.session.countDatagram('up', datagram.payload.length);
    const path = this.paths.get(decision.dialer);
    if (path && !(path instanceof Promise)) {
      path.send(datagram.destination, datagram.payload);
      return;
    }
    const pending = path ?? this.openPath(decision.dialer);
    void pending.then((p) => p?.send(datagram.destination, datagram.payload));
  }

  /**
   * The relay socket talks to one client endpoint only: connected to it, the kernel drops datagrams from
   * anyone else, and each answer is sent without an address (no lookup and route per datagram in Node and
   * the kernel). Until the connect completes, answers carry the address.
   */
  private connectToClient(port: number): void {
    this.relaySocket?.connect(port, this.clientIp, () => {
      this.connected = true;
    });
  }

  private openPath(dialer: Dialer): Promise<UdpPath | undefined> {
    const pending = (dialer.openUdp ? dialer.openUdp((src, payload) => this.toClient(src, payload), { signal: this.abort.signal, route: this.session }) : Promise.reject(new Error(`UDP is not supported through ${dialer.label}`))).then(
      (path) => {
        if (this.done) {
          path.close();
          return undefined;
        }
        this.paths.set(dialer, path);
        return path;
      },
      (err: unknown) => {
        this.paths.delete(dialer);
        this.ctx.logger.warn(`${this.tag}: UDP through ${dialer.label} failed: ${describeError(err)}`);
        return undefined;
      },
    );
    this.paths.set(dialer, pending);
    return pending;
  }

  private toClient(source: Endpoint, payload: Buffer): void {
    if (this.done || this.clientPort === undefined || !this.relaySocket) return;
    this.lastActivity = Date.now();
    this.session.countDatagram('down', payload.length);
    const key = `${source.host}|${source.port}`;
    let header = this.headerCache.get(key);
    if (!header) {
      if (this.headerCache.size >= 1024) this.headerCache.clear();
      header = encodeUdpHeader(source);
      this.headerCache.set(key, header);
    }
    // A list of buffers goes out as one datagram without copying the payload.
    if (this.connected) this.relaySocket.send([header, payload]);
    else this.relaySocket.send([header, payload], this.clientPort, this.clientIp);
  }
}
