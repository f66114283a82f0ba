import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { gssapi } from './gssapi/library';
import { GssServerHandshake } from './gssapi/server';
import { formatEndpoint, normalizeIp } from './address';
import { ConnectionContext, defaultOptions, ProtocolHandler, ProxyOptions } from './context';
import type { Router } from './dialer';
import { DirectRouter } from './direct';
import { describeError } from './errors';
import { Logger, silentLogger } from './log';
import { Session, SessionProtocol, SessionRegistry } from './registry';
import { serveSocks5 } from './socks5/handler';
import { serveSocks4 } from './socks4/handler';
import { serveHttp } from './http/handler';
import { closeWith } from './socket-util';
import { DeadlineQueue } from './deadlines';
import { describeReadPath, readPathMode } from './read-buffers';
import { asClientStream, ClientStream, PeerAddress } from './transport';
import type { Duplex } from 'node:stream';
import { OriginPool } from './http/origin-pool';

/** `host:port` of a connection's client, for log lines. */
function clientLabel(socket: ClientStream): string {
  return formatEndpoint({ host: normalizeIp(socket.remoteAddress ?? '?'), port: socket.remotePort ?? 0 });
}

/** A connection's context: a small object per connection, its methods shared. */
class Context implements ConnectionContext {
  constructor(
    private readonly server: ProxyServer,
    private readonly socket: ClientStream,
    readonly options: Readonly<ProxyOptions>,
    readonly logger: Logger,
    readonly router: Router,
    readonly overLimit: boolean,
  ) {}

  handshakeDone(): void {
    this.server.handshakeDone(this.socket);
  }

  acquireUdp(): boolean {
    return this.server.acquireUdpSlot();
  }

  releaseUdp(): void {
    this.server.releaseUdpSlot();
  }

  get pool(): OriginPool {
    return this.server.pool;
  }

  openSession(protocol: SessionProtocol, socket: ClientStream): Session {
    return this.server.openSession(protocol, socket);
  }
}

/** Connections over the session limit that may still finish a handshake to get a proper refusal. */
const HANDSHAKE_GRACE = 64;

/** Accept queue length (Node's default is 511; the kernel caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;


export interface ProxyServerEvents {
  listening: [net.AddressInfo];
  close: [];
  error: [Error];
}

/**
 * The listener: accepts connections, tells the protocol from the first byte, enforces limits and
 * hands each connection to its protocol handler. Routing and options can change while it runs;
 * sessions already open keep what they started with.
 */
export class ProxyServer extends EventEmitter<ProxyServerEvents> {
  readonly registry: SessionRegistry;
  private opts: ProxyOptions;
  private routerImpl: Router;
  private server: net.Server | undefined;
  private readonly sockets = new Set<ClientStream>();
  private udpAssociations = 0;
  private readonly handlers = new Map<number, ProtocolHandler>();
  /** Keep-alive connections to origins, for HTTP forward mode (never shared between routes or users). */
  readonly pool = new OriginPool();

  constructor(
    options: Partial<ProxyOptions> = {},
    private readonly logger: Logger = silentLogger,
    router?: Router,
    registry?: SessionRegistry,
  ) {
    super();
    this.opts = { ...defaultOptions, ...options };
    this.routerImpl = router ?? new DirectRouter(this.opts.connectTimeoutMs);
    this.registry = registry ?? new SessionRegistry();
    this.handlers.set(0x05, serveSocks5);
    this.handlers.set(0x04, serveSocks4);
    this.handlers.set(-1, serveHttp);
  }

  get options(): Readonly<ProxyOptions> {
    return this.opts;
  }

  get router(): Router {
    return this.routerImpl;
  }

  /** New connections use the new options; a changed host or port needs a restart. */
  configure(options: Partial<ProxyOptions>): void {
    this.opts = { ...this.opts, ...options };
  }

  setRouter(router: Router): void {
    this.routerImpl = router;
    // Connections kept for the old routes must not carry requests the new ones decide.
    this.pool.clear();
  }

  /** Registers the handler for connections whose first byte is `firstByte` (-1: everything else). */
  handle(firstByte: number, handler: ProtocolHandler): void {
    this.handlers.set(firstByte, handler);
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  address(): net.AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  async listen(): Promise<net.AddressInfo> {
    if (this.server) throw new Error('already listening');
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.serve(socket, socket));
    this.server = server;
    // How sessions will read (the self-check runs once per process, before the first connection is accepted).
    const readPath = await readPathMode();
    if (this.server !== server) throw new Error('closed before listening');
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        this.server = undefined;
        reject(err);
      });
      server.listen({ host: this.opts.host, port: this.opts.port, ipv6Only: false, backlog: LISTEN_BACKLOG }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => {
          this.logger.error(`listener error: ${describeError(err)}`);
          this.emit('error', err);
        });
        const address = server.address() as net.AddressInfo;
        this.logger.info(`listening on ${formatEndpoint({ host: address.address, port: address.port })}`);
        this.logger.info(describeReadPath(readPath));
        if (this.opts.gssapi) this.logGssapi(this.opts.gssapi.keytab);
        this.emit('listening', address);
        resolve(address);
      });
    });
  }

  /** Stops listening and ends every open session. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // Streams handed to serve() are ended too, whether or not this server listens itself.
    this.handshakes.clear();
    this.pool.clear();
    for (const s of this.registry.sessions()) s.closer?.close('proxy stopped');
    for (const socket of this.sockets) socket.destroy();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.logger.info('stopped');
    this.emit('close');
  }

  /** Whether SOCKS5 clients can use GSSAPI as of the last listen(), and why not; undefined when it is not configured. */
  gssapiStatus: { readonly offered: boolean; readonly detail: string } | undefined;

  /** One line saying whether SOCKS5 clients can use GSSAPI, and why not (the keytab is tried once here). */
  private logGssapi(keytab: string | undefined): void {
    const load = gssapi();
    if (!load.ok) {
      this.gssapiStatus = { offered: false, detail: load.reason };
      this.logger.warn(`GSSAPI is not offered: ${load.reason}`);
      return;
    }
    try {
      new GssServerHandshake(load.api, keytab, 'the listener').dispose();
      const detail = `keytab ${keytab ?? 'from KRB5_KTNAME or the system default'} · ${load.api.source}`;
      this.gssapiStatus = { offered: true, detail };
      this.logger.info(`GSSAPI offered to SOCKS5 clients (${detail})`);
    } catch (err) {
      this.gssapiStatus = { offered: false, detail: describeError(err) };
      this.logger.warn(`GSSAPI is not offered: ${describeError(err)}`);
    }
  }

  /** Handshake deadlines: one timer for all connections (after configure() lowers the timeout, see DeadlineQueue). */
  private readonly handshakes = new DeadlineQueue<ClientStream>((socket) => {
    this.logger.warn(`${clientLabel(socket)}: handshake not completed within ${this.opts.handshakeTimeoutMs} ms; closing`);
    socket.destroy();
  });

  /** Stops a connection's handshake deadline (idempotent). */
  handshakeDone(socket: ClientStream): void {
    this.handshakes.delete(socket);
  }

  // Listeners shared by every connection (`this` is the socket), not two new closures per connection.
  private readonly onSocketClose = ((server: ProxyServer) =>
    function (this: ClientStream): void {
      server.sockets.delete(this);
      server.handshakes.delete(this);
    })(this);

  private readonly onSocketError = ((server: ProxyServer) =>
    function (this: ClientStream, err: Error): void {
      server.logger.debug(`${clientLabel(this)}: ${describeError(err)}`);
    })(this);

  /**
   * Serves a client connection from any transport: a duplex byte stream and the peer's addresses (the TCP
   * listener passes each accepted socket as both). Works whether or not this server listens itself.
   */
  serve(stream: Duplex, peer: PeerAddress): void {
    const socket = asClientStream(stream, peer);
    const live = this.sockets.size;
    if (live >= this.opts.maxSessions + HANDSHAKE_GRACE) {
      this.logger.warn(`${clientLabel(socket)}: connection dropped: ${live} connections open (limit ${this.opts.maxSessions})`);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    // An absolute deadline, not socket.setTimeout: a client trickling one byte at a time must not extend it.
    const handshakeTimeout = this.opts.handshakeTimeoutMs;
    if (handshakeTimeout > 0) this.handshakes.add(socket, handshakeTimeout);
    const ctx = new Context(this, socket, this.opts, this.logger, this.routerImpl, live >= this.opts.maxSessions);
    socket.once('data', (first: Buffer) => {
      const handler = this.handlers.get(first[0]) ?? this.handlers.get(-1);
      if (!handler) {
        this.logger.warn(`${clientLabel(socket)}: unsupported protocol (first byte 0x${first[0].toString(16).padStart(2, '0')}); closing`);
        closeWith(socket);
        return;
      }
      handler(socket, first, ctx);
    });
  }

  /** Reserves one of the server's UDP association slots (called through each connection's context). */
  acquireUdpSlot(): boolean {
    if (this.udpAssociations >= this.opts.maxUdpAssociations) return false;
    this.udpAssociations++;
    return true;
  }

  releaseUdpSlot(): void {
    this.udpAssociations--;
  }

  /** Opens a registry session for a connection of the given protocol. */
  openSession(protocol: SessionProtocol, socket: ClientStream): Session {
    // The address is read now (the socket forgets it once closed); the label is formatted only when used.
    return this.registry.open(protocol, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  }
}
