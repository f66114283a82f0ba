/**
 * The remote end of the egress tunnel: an HTTP listener on the remote host's loopback that the agent on
 * the user's computer reaches through a port forward, and the HTTP/2 client that opens one CONNECT stream
 * per session over the agent's WebSocket (see protocol.ts for the contract).
 *
 * It keeps listening whatever happens to an agent, so that a restarted or reconnecting agent resumes
 * service; sessions an agent carried end with it (their streams are destroyed, the relay resets the
 * clients). Without an agent that has proved the secret, open() fails at once with EGRESS_UNAVAILABLE.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { Endpoint, formatEndpoint, normalizeIp } from '../address';
import type { CancelSignal } from '../cancel';
import type { OutboundStream } from '../dialer';
import { describeError, ProxyError, Reply, ReplyCode } from '../errors';
import { Logger, silentLogger } from '../log';
import { countedStream } from './counted-stream';
import { agentProof, authorityOf, parseAuthority, RAW_UPGRADE, CHALLENGE_PATH, EGRESS_PATH, EGRESS_SUBPROTOCOL, endpointProof, HEADER, proofMatches, randomToken, validToken } from './protocol';
import { TUNNEL_SETTINGS, TUNNEL_WINDOW, WS_MAX_PAYLOAD } from './tuning';
import { tunnelDuplex } from './ws-duplex';

export type EgressStatus = 'waiting' | 'connected' | 'disconnected';

export interface EgressState {
  /** waiting: no agent yet; connected: an agent proved the secret; disconnected: the last agent went away. */
  readonly status: EgressStatus;
  readonly since: number;
  /** Round trip to the agent (HTTP/2 PING), once measured. */
  readonly rttMs?: number;
  /** Why the last agent went away, or why the last one was refused. */
  readonly reason?: string;
  /** What the agent says it is (its User-Agent), for the UI. */
  readonly agent?: string;
  /** Streams open through the current agent. */
  readonly streams: number;
}

export interface EgressEndpointOptions {
  /** Loopback by default: the forward reaches it there, and nobody else should. */
  host?: string;
  port?: number;
  /** The per-run secret the agent must prove (protocol.ts randomToken()). */
  token: string;
  logger?: Logger;
  /** How long the agent may take to dial a destination before the session fails (ms). */
  connectTimeoutMs?: number;
  /** Between PINGs that measure the round trip and find a dead agent (ms). */
  pingIntervalMs?: number;
}

export interface EgressEndpointEvents {
  state: [EgressState];
}

/** Outstanding challenges: bounded, single-use, short-lived. */
const MAX_CHALLENGES = 64;
const CHALLENGE_TTL_MS = 30_000;
/** Upgrade requests are small: anything larger is not an agent. */
const MAX_HEADER_BYTES = 8 * 1024;

export class EgressEndpoint extends EventEmitter<EgressEndpointEvents> {
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD, perMessageDeflate: false, skipUTF8Validation: true });
  private readonly challenges = new Map<string, number>();
  private readonly logger: Logger;
  private readonly token: string;
  private session: http2.ClientHttp2Session | undefined;
  /** Closes what the current session runs over (the upgraded socket, or the WebSocket). */
  private carrier: (() => void) | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private current: EgressState = { status: 'waiting', since: Date.now(), streams: 0 };
  private closed = false;

  constructor(private readonly options: EgressEndpointOptions) {
    super();
    if (!validToken(options.token)) throw new ProxyError('EGRESS_UNAVAILABLE', 'the egress secret must be at least 16 characters of A-Z, a-z, 0-9, "-" and "_"');
    this.token = options.token;
    this.logger = options.logger ?? silentLogger;
    this.server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  get state(): EgressState {
    return this.current;
  }

  /** Whether sessions can go out now. */
  get ready(): boolean {
    return this.session !== undefined && !this.session.closed && !this.session.destroyed;
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        this.logger.info(`egress: waiting for the agent on ${formatEndpoint({ host: address.address, port: address.port })}`);
        resolve(address);
      });
    });
  }

  address(): net.AddressInfo | undefined {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  /** Stops listening and drops the agent (its sessions end). */
  async close(): Promise<void> {
    this.closed = true;
    this.dropAgent('the relay stopped');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  /**
   * A stream to `destination`, dialled by the agent from the user's computer. Names are sent unresolved:
   * they resolve there, where the intranet's DNS is.
   */
  open(destination: Endpoint, signal: CancelSignal): Promise<OutboundStream> {
    const session = this.session;
    if (!session || session.closed || session.destroyed) {
      return Promise.reject(new ProxyError('EGRESS_UNAVAILABLE', `this computer is not connected (${this.unavailableReason()})`, Reply.GENERAL_FAILURE));
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    const authority = authorityOf(destination.host, destination.port);
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({ [http2.constants.HTTP2_HEADER_METHOD]: 'CONNECT', [http2.constants.HTTP2_HEADER_AUTHORITY]: authority }, { endStream: false });
      } catch (err) {
        reject(new ProxyError('EGRESS_UNAVAILABLE', `this computer is not connected (${describeError(err)})`, Reply.GENERAL_FAILURE, { cause: err }));
        return;
      }
      this.countStream(stream);
      const timeoutMs = (this.options.connectTimeoutMs ?? 10_000) + 5_000;
      const timer = setTimeout(() => fail(new ProxyError('CONNECT_TIMEOUT', `this computer did not answer for ${authority} within ${timeoutMs} ms`, Reply.TTL_EXPIRED)), timeoutMs);
      const fail = (err: unknown): void => {
        cleanup();
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      };
      const onAbort = (): void => fail(signal.reason);
      const onError = (err: Error): void => fail(new ProxyError('EGRESS_UNAVAILABLE', `the tunnel to this computer failed: ${describeError(err)}`, Reply.GENERAL_FAILURE, { cause: err }));
      const onClose = (): void => fail(new ProxyError('EGRESS_UNAVAILABLE', `the tunnel to this computer closed before ${authority} was reached`, Reply.GENERAL_FAILURE));
      const onResponse = (headers: http2.IncomingHttpHeaders): void => {
        cleanup();
        const status = Number(headers[http2.constants.HTTP2_HEADER_STATUS]);
        if (status === 200) {
          resolve(countedStream(stream, { ...boundAddress(headers[HEADER.bound]), remoteAddress: destination.host, remotePort: destination.port }));
          return;
        }
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(dialFailure(headers, status, authority));
      };
      function cleanup(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        stream.off('response', onResponse);
        stream.off('error', onError);
        stream.off('close', onClose);
      }
      stream.once('response', onResponse);
      stream.once('error', onError);
      stream.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private unavailableReason(): string {
    const s = this.current;
    if (s.status === 'waiting') return 'no egress agent has connected yet';
    return `the egress agent went away${s.reason !== undefined ? `: ${s.reason}` : ''}`;
  }

  private setState(next: Omit<EgressState, 'since' | 'streams'> & { since?: number }): void {
    this.current = { streams: this.openStreams, since: Date.now(), ...next };
    this.emit('state', this.current);
  }

  private openStreams = 0;
  private countStream(stream: http2.ClientHttp2Stream): void {
    this.openStreams++;
    stream.once('close', () => {
      this.openStreams--;
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path.endsWith(`/${CHALLENGE_PATH}`)) {
      const challenge = this.issueChallenge();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ challenge }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('This is the SOCKS Relay egress endpoint: connect to it with `socks-relay egress-agent`.\n');
  }

  private issueChallenge(): string {
    const now = Date.now();
    for (const [c, expires] of this.challenges) if (expires <= now) this.challenges.delete(c);
    // The oldest outstanding challenge makes room: a flood of requests cannot grow the map.
    while (this.challenges.size >= MAX_CHALLENGES) this.challenges.delete(this.challenges.keys().next().value as string);
    const challenge = randomToken(24);
    this.challenges.set(challenge, now + CHALLENGE_TTL_MS);
    return challenge;
  }

  /** Takes the challenge (single use); whether it was outstanding and fresh. */
  private redeem(challenge: string | undefined): boolean {
    if (challenge === undefined) return false;
    const expires = this.challenges.get(challenge);
    this.challenges.delete(challenge);
    return expires !== undefined && expires > Date.now();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const from = formatEndpoint({ host: normalizeIp(req.socket.remoteAddress), port: req.socket.remotePort ?? 0 });
    const path = (req.url ?? '').split('?')[0];
    const refuse = (status: number, why: string): void => {
      this.logger.warn(`egress: refused an agent connection from ${from}: ${why}`);
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    if (this.closed) return refuse(503, 'the relay is stopping');
    if (!path.endsWith(`/${EGRESS_PATH}`)) return refuse(404, `unknown path ${path.slice(0, 100)}`);
    const raw = String(req.headers.upgrade ?? '').toLowerCase() === RAW_UPGRADE;
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!raw && !protocols.includes(EGRESS_SUBPROTOCOL)) return refuse(400, `not the ${EGRESS_SUBPROTOCOL} protocol`);
    const challenge = header(req, HEADER.challenge);
    const nonce = header(req, HEADER.nonce);
    const fresh = this.redeem(challenge);
    if (challenge === undefined || nonce === undefined || !/^[A-Za-z0-9_-]{16,128}$/.test(nonce)) return refuse(401, 'no proof of the secret');
    if (!fresh) return refuse(401, 'unknown or expired challenge');
    if (!proofMatches(agentProof(this.token, challenge, nonce), header(req, HEADER.proof))) return refuse(401, 'wrong secret');
    // One agent at a time: a second one (another window running the agent too) gets in only when the
    // current one no longer answers, so two agents cannot keep displacing each other and their sessions.
    void this.currentAnswers().then((answers) => {
      if (socket.destroyed) return;
      if (answers) return refuse(409, 'another agent is connected and answering');
      if (this.session) this.dropAgent('the previous agent stopped answering');
      this.accept(req, socket, head, raw, challenge, nonce, from);
    });
  }

  /** Whether the current agent answers a PING within a couple of seconds. */
  private currentAnswers(): Promise<boolean> {
    const session = this.session;
    if (!session || session.destroyed || session.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 2_000);
      const ok = session.ping((err) => {
        clearTimeout(timer);
        resolve(!err);
      });
      if (!ok) {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }

  private accept(req: http.IncomingMessage, socket: Duplex, head: Buffer, raw: boolean, challenge: string, nonce: string, from: string): void {
    const proof = endpointProof(this.token, nonce, challenge);
    const agent = String(req.headers['user-agent'] ?? 'egress agent').slice(0, 200);
    if (raw && socket instanceof net.Socket) {
      // HTTP/2 straight on the TCP socket: nghttp2 reads it natively, no WebSocket framing or masking.
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RAW_UPGRADE}\r\n${HEADER.proof}: ${proof}\r\n\r\n`);
      if (head.length > 0) socket.unshift(head);
      socket.setNoDelay(true);
      this.attach(socket, () => socket.destroy(), agent, from, 'direct');
      return;
    }
    if (raw) {
      socket.destroy();
      return;
    }
    const addProof = (headers: string[]): void => {
      headers.push(`${HEADER.proof}: ${proof}`);
    };
    // ws emits 'headers' synchronously inside handleUpgrade (or not at all, when it refuses the request).
    this.wss.on('headers', addProof);
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.attachWebSocket(ws, agent, from));
    } finally {
      this.wss.off('headers', addProof);
    }
  }

  private attachWebSocket(ws: WebSocket, agent: string, from: string): void {
    const carrier = (): void => ws.terminate();
    // Before createWebSocketStream's own 'close' listener, which ends the duplex cleanly (see tunnelLost).
    ws.once('close', (code, reason) => {
      if (this.carrier !== carrier) return;
      this.lastReason ??= `the tunnel closed (WebSocket ${code}${reason.length ? ` ${reason.toString().slice(0, 100)}` : ''})`;
      if (this.session && !this.session.destroyed) this.session.destroy(tunnelLost('the tunnel to this computer closed'));
    });
    this.attach(tunnelDuplex(ws), carrier, agent, from, 'WebSocket');
  }

  /**
   * The agent proved the secret: it becomes the one sessions go through (a previous one is let go).
   * `stream` is the upgraded TCP socket itself, or the WebSocket as a stream where only WebSocket gets
   * through the forwarder (code-server's /proxy/PORT/, Codespaces).
   */
  private attach(stream: Duplex, carrier: () => void, agent: string, from: string, how: 'direct' | 'WebSocket'): void {
    if (this.session) this.dropAgent('a new agent connected');
    if (stream instanceof net.Socket) {
      // The HTTP server's sockets allow half-open connections; the tunnel has no use for one: the agent's
      // FIN (its process ended) is the end of the tunnel.
      stream.once('end', () => stream.destroy());
      stream.once('close', () => {
        if (this.carrier !== carrier) return;
        this.lastReason ??= 'the tunnel closed (TCP)';
        if (this.session && !this.session.destroyed) this.session.destroy(tunnelLost('the tunnel to this computer closed'));
      });
    }
    const session = http2.connect('http://egress.socks-relay.invalid', {
      createConnection: () => stream,
      settings: TUNNEL_SETTINGS,
      // Both ends set their own window: the agent's (its uploads to us) and this one (what it sends back).
      maxSessionMemory: 64,
    });
    this.session = session;
    this.carrier = carrier;
    session.on('error', (err) => this.logger.debug(`egress: tunnel error: ${describeError(err)}`));
    session.once('connect', () => {
      session.setLocalWindowSize(TUNNEL_WINDOW);
    });
    session.once('close', () => {
      if (this.session !== session) return;
      this.session = undefined;
      this.carrier = undefined;
      this.stopPings();
      if (!this.closed) this.logger.warn('egress: the agent went away; its sessions were reset, waiting for it to reconnect');
      this.setState({ status: 'disconnected', reason: this.lastReason ?? 'the tunnel closed', agent });
      this.lastReason = undefined;
    });
    this.logger.info(`egress: agent connected from ${from} (${agent}, HTTP/2 over ${how === 'direct' ? 'the upgraded connection' : 'a WebSocket'})`);
    this.setState({ status: 'connected', agent });
    this.startPings(session, agent);
  }

  private lastReason: string | undefined;

  private startPings(session: http2.ClientHttp2Session, agent: string): void {
    const interval = this.options.pingIntervalMs ?? 10_000;
    let outstanding = false;
    const ping = (): void => {
      if (session.destroyed) return;
      if (outstanding) {
        this.lastReason = `no answer to a ping within ${interval} ms`;
        session.destroy(tunnelLost(this.lastReason));
        return;
      }
      outstanding = true;
      session.ping((err, duration) => {
        outstanding = false;
        if (err || session !== this.session) return;
        this.setState({ status: 'connected', rttMs: Math.round(duration * 10) / 10, agent });
      });
    };
    session.once('connect', ping);
    this.pingTimer = setInterval(ping, interval);
    this.pingTimer.unref();
  }

  private stopPings(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private dropAgent(reason: string): void {
    const session = this.session;
    const carrier = this.carrier;
    if (!session) return;
    this.lastReason = reason;
    // Destroyed, not closed gracefully: its streams are reset, so no client waits on a tunnel we let go.
    session.destroy(tunnelLost(reason));
    carrier?.();
  }
}

/**
 * What the HTTP/2 session is destroyed with when the tunnel goes: always an error. Destroyed without one,
 * http2 still pushes the end of each stream's readable side (and a socket that closes makes it close the
 * streams with CANCEL, which is no error either), so the relay would end its clients cleanly, as if a cut
 * transfer had been complete. With an error the streams error and the relay resets the clients.
 */
function tunnelLost(why: string): ProxyError {
  return new ProxyError('EGRESS_UNAVAILABLE', why, Reply.GENERAL_FAILURE);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v.length <= 512 ? v : undefined;
}

function boundAddress(value: string | string[] | undefined): { localAddress?: string; localPort?: number } {
  const bound = typeof value === 'string' ? parseAuthority(value) : undefined;
  return bound ? { localAddress: bound.host, localPort: bound.port } : {};
}

/** The agent's answer to a CONNECT it could not carry out, as the error the pipeline maps to a reply. */
function dialFailure(headers: http2.IncomingHttpHeaders, status: number, authority: string): ProxyError {
  const code = Number(headers[HEADER.reply]);
  const reply = (Number.isInteger(code) && code >= 1 && code <= 8 ? code : Reply.GENERAL_FAILURE) as ReplyCode;
  const raw = headers[HEADER.error];
  const why = typeof raw === 'string' ? raw.slice(0, 300) : `HTTP ${status}`;
  const errorCode = reply === Reply.TTL_EXPIRED ? 'CONNECT_TIMEOUT' : 'DIAL_FAILED';
  return new ProxyError(errorCode, `this computer could not reach ${authority}: ${why}`, reply);
}
