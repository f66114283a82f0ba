/**
 * The local end of the egress tunnel: runs on the user's computer (the companion extension, or
 * `socks-relay egress-agent`), connects to the endpoint through the forwarded address, and dials out from
 * this computer's network for each CONNECT stream the remote relay opens. It serves nothing until the
 * endpoint has proved it knows the secret, and reconnects by itself (with backoff) when the tunnel drops.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { endpoint, formatEndpoint, normalizeIp } from '../address';
import { Cancellation } from '../cancel';
import type { Dialer, OutboundStream } from '../dialer';
import { DirectDialer } from '../direct';
import { describeError, replyForError, Reply } from '../errors';
import { Logger, silentLogger } from '../log';
import { resetOrDestroy } from '../socket-util';
import { agentProof, agentUrls, RAW_UPGRADE, EGRESS_SUBPROTOCOL, endpointProof, HEADER, parseAuthority, proofMatches, randomToken, validToken } from './protocol';
import { TUNNEL_SETTINGS, TUNNEL_WINDOW, WS_MAX_PAYLOAD } from './tuning';
import { tunnelDuplex } from './ws-duplex';

export type AgentStatus = 'connecting' | 'connected' | 'retrying' | 'refused' | 'stopped';

export interface AgentState {
  readonly status: AgentStatus;
  readonly since: number;
  /** Why the last attempt failed or the tunnel dropped. */
  readonly reason?: string;
  /** When status is retrying or refused: the next attempt is this far off. */
  readonly retryInMs?: number;
  /** Sessions carried so far, and open now. */
  readonly carried: number;
  readonly open: number;
}

export interface EgressAgentOptions {
  /** The forwarded base address of the endpoint (http://127.0.0.1:PORT/, http://HOST/proxy/PORT/, https://…). */
  url: string;
  token: string;
  logger?: Logger;
  /** How sessions leave this computer (default: directly, with this connect timeout). */
  dialer?: Dialer;
  connectTimeoutMs?: number;
  /** Reconnect backoff bounds (ms). */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Names this agent in the remote's UI and logs. */
  userAgent?: string;
  /** 'websocket': skip the plain upgrade (a forward known to pass only WebSocket). Default 'auto'. */
  carrier?: 'auto' | 'websocket';
}

export interface EgressAgentEvents {
  state: [AgentState];
}

const HANDSHAKE_TIMEOUT_MS = 10_000;

export class EgressAgent extends EventEmitter<EgressAgentEvents> {
  private readonly logger: Logger;
  private readonly dialer: Dialer;
  private readonly urls: ReturnType<typeof agentUrls>;
  private current: AgentState = { status: 'stopped', since: Date.now(), carried: 0, open: 0 };
  private ws: WebSocket | undefined;
  private directSocket: net.Socket | undefined;
  /** The forward passes only WebSocket upgrades (learnt on the first attempt). */
  private webSocketOnly = false;
  private session: http2.ServerHttp2Session | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private running = false;
  private carried = 0;
  private open = 0;

  constructor(private readonly options: EgressAgentOptions) {
    super();
    if (!validToken(options.token)) throw new TypeError('the egress secret must be at least 16 characters of A-Z, a-z, 0-9, "-" and "_"');
    this.urls = agentUrls(options.url);
    this.logger = options.logger ?? silentLogger;
    this.dialer = options.dialer ?? new DirectDialer(options.connectTimeoutMs ?? 10_000);
    this.webSocketOnly = options.carrier === 'websocket';
  }

  get state(): AgentState {
    return this.current;
  }

  /** The endpoint's address, for messages (never carries the secret). */
  get target(): string {
    return this.urls.tunnel.href;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    void this.attempt();
  }

  /** Disconnects and stops reconnecting; the sessions it carried end. */
  stop(): void {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.session?.destroy(tunnelLost('the agent stopped'));
    this.ws?.terminate();
    this.directSocket?.destroy();
    this.setState('stopped');
  }

  private setState(status: AgentStatus, reason?: string, retryInMs?: number): void {
    this.current = {
      status,
      since: Date.now(),
      ...(reason !== undefined ? { reason } : {}),
      ...(retryInMs !== undefined ? { retryInMs } : {}),
      carried: this.carried,
      open: this.open,
    };
    this.emit('state', this.current);
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    this.setState('connecting');
    let challenge = await this.challenge();
    if (challenge === undefined) return;
    if (!this.webSocketOnly && this.urls.tunnel.protocol === 'ws:') {
      if ((await this.tryDirect(challenge)) === 'handled') return;
      // The forward carries only WebSocket (code-server's /proxy/PORT/): use that from now on.
      this.webSocketOnly = true;
      this.logger.debug('egress agent: the forward does not pass a plain upgrade through; using a WebSocket');
      challenge = await this.challenge();
      if (challenge === undefined) return;
    }
    const nonce = randomToken(24);
    const ws = new WebSocket(this.urls.tunnel, EGRESS_SUBPROTOCOL, {
      headers: {
        [HEADER.challenge]: challenge,
        [HEADER.nonce]: nonce,
        [HEADER.proof]: agentProof(this.options.token, challenge, nonce),
        'user-agent': this.options.userAgent ?? `socks-relay-egress-agent (${hostname()})`,
      },
      perMessageDeflate: false,
      maxPayload: WS_MAX_PAYLOAD,
      skipUTF8Validation: true,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.ws = ws;
    let proved = false;
    let refusal: string | undefined;
    ws.once('upgrade', (res: http.IncomingMessage) => {
      const proof = res.headers[HEADER.proof];
      proved = proofMatches(endpointProof(this.options.token, nonce, challenge), typeof proof === 'string' ? proof : undefined);
      if (!proved) {
        refusal = 'the endpoint did not prove that it knows the secret (is another program on the forwarded port?)';
        ws.terminate();
      }
    });
    ws.once('unexpected-response', (_req, res: http.IncomingMessage) => {
      refusal =
        res.statusCode === 401
          ? 'the endpoint refused the secret (401): is SOCKS_RELAY_EGRESS_TOKEN the one the relay shows?'
          : res.statusCode === 409
            ? 'another agent is connected to this relay (409)'
            : `the endpoint answered HTTP ${res.statusCode ?? '?'}`;
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      refusal ??= describeError(err);
    });
    ws.once('open', () => {
      if (!proved) return;
      if (!this.running) {
        ws.terminate();
        return;
      }
      this.serve(tunnelDuplex(ws), 'a WebSocket');
    });
    ws.once('close', () => {
      if (this.ws === ws) this.ws = undefined;
      this.carrierClosed(refusal);
    });
  }

  /** A fresh challenge; undefined (a retry is scheduled, or the agent stopped) when there is none. */
  private async challenge(): Promise<string | undefined> {
    try {
      const challenge = await fetchChallenge(this.urls.challenge);
      return this.running ? challenge : undefined;
    } catch (err) {
      this.retry(`cannot reach the endpoint at ${this.urls.challenge.origin}: ${describeError(err)}`);
      return undefined;
    }
  }

  /** The tunnel's connection closed: reconnect (or, refused, say so and back off). */
  private carrierClosed(refusal: string | undefined): void {
    const wasServing = this.session !== undefined;
    this.session?.destroy(tunnelLost('the tunnel closed'));
    this.session = undefined;
    if (!this.running) return;
    if (wasServing) {
      this.logger.warn('egress agent: the tunnel closed; reconnecting');
      this.failures = 0;
      this.retry('the tunnel closed');
    } else if (refusal !== undefined && /401|did not prove/.test(refusal)) {
      this.logger.error(`egress agent: ${refusal}`);
      this.retry(refusal, 'refused');
    } else {
      this.retry(refusal ?? 'the connection closed during the handshake');
    }
  }

  /**
   * Upgrades to HTTP/2 straight on the TCP connection (no WebSocket framing or masking: nghttp2 reads
   * the socket natively). 'fallback' when the forward does not pass that upgrade through. Through
   * ClientRequest with our own socket, not http.request: VS Code's extension host patches that one.
   */
  private tryDirect(challenge: string): Promise<'handled' | 'fallback'> {
    const url = new URL(this.urls.tunnel.href.replace(/^ws/, 'http'));
    const nonce = randomToken(24);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port || 80);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (v: 'handled' | 'fallback'): void => {
        if (settled) return;
        settled = true;
        resolve(v);
      };
      const req = new http.ClientRequest({
        method: 'GET',
        path: url.pathname,
        setHost: true,
        host,
        port,
        headers: {
          connection: 'Upgrade',
          upgrade: RAW_UPGRADE,
          [HEADER.challenge]: challenge,
          [HEADER.nonce]: nonce,
          [HEADER.proof]: agentProof(this.options.token, challenge, nonce),
          'user-agent': this.options.userAgent ?? `socks-relay-egress-agent (${hostname()})`,
        },
        timeout: HANDSHAKE_TIMEOUT_MS,
        createConnection: () => new net.Socket({ allowHalfOpen: false }).connect({ host, port }),
      });
      req.once('upgrade', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        socket.on('error', () => undefined);
        if (String(res.headers.upgrade ?? '').toLowerCase() !== RAW_UPGRADE) {
          socket.destroy();
          settle('fallback');
          return;
        }
        const proof = res.headers[HEADER.proof];
        settle('handled');
        if (!this.running) {
          // Stopped while the upgrade was under way.
          socket.destroy();
          return;
        }
        if (!proofMatches(endpointProof(this.options.token, nonce, challenge), typeof proof === 'string' ? proof : undefined)) {
          socket.destroy();
          this.carrierClosed('the endpoint did not prove that it knows the secret (is another program on the forwarded port?)');
          return;
        }
        if (head.length > 0) socket.unshift(head);
        socket.setNoDelay(true);
        // Before http2's own listener: a tunnel that drops must error the streams, not end them (see tunnelLost).
        socket.once('close', () => {
          if (this.directSocket === socket) this.directSocket = undefined;
          this.carrierClosed(undefined);
        });
        this.directSocket = socket;
        this.serve(socket, 'the upgraded connection');
      });
      req.once('response', (res: http.IncomingMessage) => {
        res.resume();
        if (res.statusCode === 401) {
          settle('handled');
          this.carrierClosed('the endpoint refused the secret (401): is SOCKS_RELAY_EGRESS_TOKEN the one the relay shows?');
          return;
        }
        if (res.statusCode === 409) {
          settle('handled');
          this.carrierClosed('another agent is connected to this relay (409)');
          return;
        }
        settle('fallback');
      });
      req.once('timeout', () => req.destroy(new Error('no answer to the upgrade')));
      // code-server's proxy drops an upgrade that is not a WebSocket: the connection just closes.
      req.once('error', () => settle('fallback'));
      req.end();
    });
  }

  private retry(reason: string, status: AgentStatus = 'retrying'): void {
    if (!this.running) return;
    const min = this.options.minRetryMs ?? 500;
    const max = this.options.maxRetryMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.failures, 16));
    this.failures++;
    if (status === 'retrying') this.logger.debug(`egress agent: ${reason}; next attempt in ${delay} ms`);
    this.setState(status, reason, delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delay);
    this.retryTimer.unref?.();
  }

  private serve(stream: Duplex, how: string): void {
    const session = http2.performServerHandshake(stream, { settings: TUNNEL_SETTINGS, maxSessionMemory: 64 });
    this.session = session;
    session.on('error', (err) => this.logger.debug(`egress agent: tunnel error: ${describeError(err)}`));
    session.setLocalWindowSize(TUNNEL_WINDOW);
    session.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.failures = 0;
    this.logger.info(`egress agent: connected to ${this.options.url} (HTTP/2 over ${how}); carrying sessions from the remote relay`);
    this.setState('connected');
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const method = headers[http2.constants.HTTP2_HEADER_METHOD];
    if (method !== 'CONNECT') {
      stream.respond({ ':status': 405, [HEADER.reply]: String(Reply.COMMAND_NOT_SUPPORTED) }, { endStream: true });
      return;
    }
    const raw = headers[http2.constants.HTTP2_HEADER_AUTHORITY];
    const authority = parseAuthority(typeof raw === 'string' ? raw : undefined);
    if (!authority) {
      stream.respond({ ':status': 400, [HEADER.reply]: String(Reply.ADDRESS_TYPE_NOT_SUPPORTED), [HEADER.error]: 'not a host:port' }, { endStream: true });
      return;
    }
    const cancel = new Cancellation();
    const onEarlyClose = (): void => cancel.abort();
    stream.once('close', onEarlyClose);
    this.open++;
    this.carried++;
    stream.once('close', () => {
      this.open--;
    });
    const destination = endpoint(authority.host, authority.port);
    this.dialer.dial(destination, { signal: cancel.signal }).then(
      (socket) => {
        stream.off('close', onEarlyClose);
        if (stream.destroyed || stream.closed) {
          socket.destroy();
          return;
        }
        const bound = socket.localAddress !== undefined ? formatEndpoint({ host: normalizeIp(socket.localAddress), port: socket.localPort ?? 0 }) : undefined;
        stream.respond({ ':status': 200, ...(bound !== undefined ? { [HEADER.bound]: bound } : {}) });
        splice(stream, socket);
      },
      (err: unknown) => {
        stream.off('close', onEarlyClose);
        if (stream.destroyed || stream.closed) return;
        const reply = replyForError(err);
        const why = describeError(err).replace(/[\r\n]+/g, ' ').slice(0, 300);
        this.logger.debug(`egress agent: ${formatEndpoint(destination)}: ${why}`);
        stream.respond({ ':status': reply === Reply.TTL_EXPIRED ? 504 : 502, [HEADER.reply]: String(reply), [HEADER.error]: why }, { endStream: true });
      },
    );
  }
}

/**
 * Both ways between a CONNECT stream and the dialled socket. pipe() keeps backpressure and passes a
 * half-close on (END_STREAM ⇄ FIN); a failure on either side resets the other (RST_STREAM CONNECT_ERROR
 * for the tunnel, as RFC 9113 §8.5 asks for a TCP reset; RST for the socket).
 */
function splice(stream: http2.ServerHttp2Stream, socket: OutboundStream): void {
  // A stream cut by the tunnel going away is 'aborted' and then ended: error it first, so the target gets no FIN.
  stream.once('aborted', abortStream);
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => {
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
  });
  socket.once('close', () => {
    if (!socket.readableEnded && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
  });
  stream.once('close', () => {
    // A stream reset by the relay (its client failed) or the tunnel dropping: no clean FIN to the target.
    if (!stream.readableEnded || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) resetOrDestroy(socket);
  });
}

/**
 * What the HTTP/2 session is destroyed with when the tunnel goes: always an error, so that its streams
 * error and splice() resets the targets. Destroyed without one, http2 ends each stream's readable side,
 * and pipe() would pass a clean FIN to a target whose upload was cut.
 */
function tunnelLost(why: string): Error {
  return new Error(`egress tunnel: ${why}`);
}

function abortStream(this: http2.ServerHttp2Stream): void {
  this.destroy(tunnelLost('the tunnel was cut'));
}

/** GET the single-use challenge (small JSON, bounded). */
function fetchChallenge(url: URL): Promise<string> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(url, { headers: { accept: 'application/json' }, timeout: HANDSHAKE_TIMEOUT_MS }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode ?? '?'} from ${url.href} (is this the address the relay shows?)`));
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 4096) req.destroy(new Error('the challenge answer is too large'));
      });
      res.on('end', () => {
        try {
          const challenge = (JSON.parse(body) as { challenge?: unknown }).challenge;
          if (typeof challenge !== 'string') throw new Error('no challenge in the answer');
          resolve(challenge);
        } catch (err) {
          reject(new Error(`not a SOCKS Relay egress endpoint: ${describeError(err)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
  });
}
