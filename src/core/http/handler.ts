/**
 * The HTTP proxy front end (RFC 9110, RFC 9112) on the shared port: CONNECT tunnels and absolute-URI
 * requests forwarded over keep-alive client connections.
 *
 * Each connection is handed to a private node:http Server (never listening) after the sniffed first
 * chunk is put back, so llhttp does the framing: keep-alive, pipelining, chunked bodies, 100-continue,
 * a bounded header size (431). Every request or tunnel is one session in the registry, routed by the
 * same rules and upstreams as SOCKS5: router.decide, then decision.dialer.dial. Forwarded requests are
 * written to the dialed socket by node:http's client (origin-request.ts, never through the http.request
 * entry point that VS Code patches), and bodies are piped both ways, so nothing is buffered whole.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dialer, OutboundStream } from '../dialer';
import { Socket } from 'node:net';
import { endpoint, formatEndpoint, normalizeIp } from '../address';
import { anonymousAllowed, checkCredentials, credentialsChecked } from '../auth';
import type { ConnectionContext, ProtocolHandler } from '../context';
import { describeError, Reply, replyForError } from '../errors';
import type { Session } from '../registry';
import { admit, dialRefusal, isRefusal, Refusal, Replier, serveRequest } from '../pipeline';
import { closeWith } from '../socket-util';
import type { ClientStream } from '../transport';
import { requestOver } from './origin-request';
import { encodeSimpleResponse, HttpTarget, parseAbsoluteTarget, parseBasicCredentials, parseConnectTarget, statusForParseError, stripHopByHop, targetScheme } from './parse';
import { Cancellation } from '../cancel';

/** Largest request head accepted (request line plus headers); more gets 431. */
export const MAX_HEADER_BYTES = 32 * 1024;
export const PROXY_REALM = 'SOCKS Relay';
const PROXY_AUTHENTICATE = `Basic realm="${PROXY_REALM}"`;
const VIA = '1.1 socks-relay';
/** Upper bound on how long an idle keep-alive client connection is kept. */
const KEEP_ALIVE_MAX_MS = 60_000;
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

function clientLabel(socket: ClientStream): string {
  return formatEndpoint({ host: normalizeIp(socket.remoteAddress ?? '?'), port: socket.remotePort ?? 0 });
}

function reasonPhrase(status: number): string {
  return http.STATUS_CODES[status] ?? 'Error';
}

/** 504 for timeouts, 502 for every other failure to reach the target or an upstream. */
export function statusForDialError(err: unknown): 502 | 504 {
  return statusForReply(replyForError(err));
}

function statusForReply(reply: number): 502 | 504 {
  return reply === Reply.TTL_EXPIRED ? 504 : 502;
}

/** Registered for every first byte that is not SOCKS: serves the connection as an HTTP proxy. */
export const serveHttp: ProtocolHandler = (socket, first, ctx) => {
  if (!ctx.options.http) {
    ctx.logger.warn(`${clientLabel(socket)}: not SOCKS (first byte 0x${first[0].toString(16).padStart(2, '0')}) and the HTTP proxy is disabled; closing`);
    closeWith(socket);
    return;
  }
  new HttpConnection(socket, ctx).start(first);
};

/** One forwarded request, as the forward path needs it (dial, keep-alive reuse, the retry). */
interface ForwardRequest {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly target: HttpTarget;
  readonly dialer: Dialer;
  readonly session: Session;
  readonly tag: string;
  readonly expectContinue: boolean;
  readonly refuse: (status: number, why: string, level?: 'info' | 'warn') => void;
  readonly hasBody: boolean;
}

/** `challenge`: no credentials were sent, the normal first step of clients that wait for a 407. */
/** `forbidden`: no HTTP credentials can succeed here (403 instead of a 407 that would ask for them). */
type AuthResult = { ok: true; user: string | undefined } | { ok: false; why: string; challenge: boolean; forbidden?: true };

/** One client connection carrying any number of proxy requests, or a single CONNECT tunnel. */
class HttpConnection {
  private readonly server: http.Server;
  private readonly client: string;
  private readonly keepAliveMs: number;
  /** Requests whose response is not finished yet. */
  private active = 0;
  /** Absolute deadline for the next request head on an idle keep-alive connection (trickling cannot extend it). */
  private nextHead: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: ClientStream,
    private readonly ctx: ConnectionContext,
  ) {
    this.client = clientLabel(socket);
    const idle = ctx.options.idleTimeoutMs;
    this.keepAliveMs = idle > 0 ? Math.min(idle, KEEP_ALIVE_MAX_MS) : KEEP_ALIVE_MAX_MS;
    // requireHostHeader is checked here instead, so that each refusal is logged.
    const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false, noDelay: true });
    server.keepAliveTimeout = this.keepAliveMs;
    // A client that half-closes right after its request (printf ... | nc) still gets the answer; the
    // connection ends after the last response. Without this node:http would end the socket at once.
    (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // No client-side inactivity timer while a request is in progress: the upstream socket's idle timer
    // (forward) or relay() (CONNECT) covers a stalled client too, and must be the one that answers 504.
    server.timeout = 0;
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('checkContinue', (req, res) => this.onRequest(req, res, true));
    // node:http hands back the stream it was given (this.socket), typed as a plain Duplex.
    server.on('connect', (req: http.IncomingMessage, _sock: Duplex, head: Buffer) => this.onConnect(req, this.socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException) => this.onClientError(err, this.socket));
    this.server = server;
    socket.once('close', () => clearTimeout(this.nextHead));
  }

  /** Puts the sniffed bytes back and lets node:http read the connection from its first byte. */
  start(first: Buffer): void {
    this.socket.pause();
    this.socket.unshift(first);
    this.server.emit('connection', this.socket);
    // resume() drains the unshifted chunk on the next tick, before any further read from the kernel.
    this.socket.resume();
  }

  private headStarted(): void {
    this.ctx.handshakeDone();
    clearTimeout(this.nextHead);
    this.nextHead = undefined;
  }

  private requestDone(): void {
    this.active--;
    if (this.active > 0 || this.socket.destroyed) return;
    const handshake = this.ctx.options.handshakeTimeoutMs;
    if (handshake <= 0) return;
    clearTimeout(this.nextHead);
    this.nextHead = setTimeout(() => {
      this.ctx.logger.debug(`${this.client}: no further request within ${this.keepAliveMs + handshake} ms; closing`);
      this.socket.destroy();
    }, this.keepAliveMs + handshake);
    this.nextHead.unref();
  }

  private authenticate(req: http.IncomingMessage): AuthResult {
    const { options } = this.ctx;
    if (!credentialsChecked(options)) {
      // No users but not open either: a GSSAPI-only listener, which HTTP clients cannot authenticate to.
      return anonymousAllowed(options) ? { ok: true, user: undefined } : { ok: false, why: 'this listener authenticates SOCKS5 clients with Kerberos (GSSAPI) only', challenge: false, forbidden: true };
    }
    const header = req.headers['proxy-authorization'];
    if (header === undefined) return anonymousAllowed(options) ? { ok: true, user: undefined } : { ok: false, why: 'no Proxy-Authorization', challenge: true };
    const creds = parseBasicCredentials(header);
    if (!creds) return { ok: false, why: `unsupported Proxy-Authorization scheme "${header.trim().split(/\s+/)[0]}"`, challenge: false };
    if (!checkCredentials(options.users, creds.username, creds.password)) return { ok: false, why: `authentication failed for user "${creds.username}"`, challenge: false };
    return { ok: true, user: creds.username };
  }

  // ---- malformed requests ----

  private onClientError(err: NodeJS.ErrnoException, sock: ClientStream): void {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !sock.writable) {
      sock.destroy();
      return;
    }
    const status = statusForParseError(err.code);
    const session = this.ctx.openSession('http', sock);
    const why = `${err.code ?? 'error'}: ${err.message}`;
    this.ctx.logger.warn(`#${session.id} ${this.client}: malformed HTTP request, answered ${status} ${reasonPhrase(status)} (${why})`);
    session.close(`${status} ${reasonPhrase(status)}: ${why}`, status);
    this.ctx.handshakeDone();
    // A response already on the wire cannot be followed by another one: just close.
    if (this.active > 0) sock.destroy();
    else closeWith(sock, encodeSimpleResponse(status, reasonPhrase(status), `${status} ${reasonPhrase(status)}\n`));
  }

  // ---- absolute-URI requests ----

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse, expectContinue = false): void {
    this.headStarted();
    this.active++;
    res.once('close', () => this.requestDone());
    const session = this.ctx.openSession('http', this.socket);
    const tag = `#${session.id} ${this.client}`;
    const target = req.url ?? '';
    session.update({ command: 'http' });
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;

    const refuse = (status: number, why: string, level: 'info' | 'warn' = 'info', headers: Record<string, string> = {}): void => {
      this.ctx.logger[level](`${tag}: ${req.method ?? '?'} ${session.destination ?? target} refused with ${status} ${reasonPhrase(status)}: ${why}`);
      session.close(`${status} ${reasonPhrase(status)}: ${why}`, status);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = `${status} ${reasonPhrase(status)}: ${why}\n`;
      const out: Record<string, string | number> = { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) };
      // An unread request body (or one the client holds back waiting for 100 Continue) makes the connection unusable.
      if (hasBody) out.Connection = 'close';
      res.writeHead(status, out);
      res.end(body);
    };

    const auth = this.authenticate(req);
    if (!auth.ok) {
      if (auth.forbidden) refuse(403, auth.why, 'warn', {});
      else refuse(407, auth.why, auth.challenge ? 'info' : 'warn', { 'Proxy-Authenticate': PROXY_AUTHENTICATE });
      return;
    }
    if (auth.user !== undefined) session.update({ user: auth.user });
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      refuse(400, 'HTTP/1.1 request without Host', 'warn');
      return;
    }
    const parsed = parseAbsoluteTarget(target);
    if (!parsed) {
      const scheme = targetScheme(target);
      const why =
        scheme === undefined
          ? `request target "${target.slice(0, 200)}" is not an absolute http:// URI (this is a proxy; origin-form requests are not served)`
          : scheme === 'https'
            ? 'https:// request targets need CONNECT'
            : `unsupported request target "${target.slice(0, 200)}"`;
      refuse(400, why, 'warn');
      return;
    }
    const dest = endpoint(parsed.host, parsed.port);
    const admitted = admit(this.ctx, session, dest, { command: 'http', user: session.user });
    if (isRefusal(admitted)) {
      const r = refusalStatus(admitted);
      refuse(r.status, r.why, r.level, r.status === 503 ? { Connection: 'close' } : {});
      return;
    }
    this.dialAndForward({ req, res, target: parsed, dialer: admitted.dialer, session, tag, expectContinue, refuse, hasBody }, true);
  }

  /**
   * A kept connection for this route, user and origin if there is one; else a new dial. `mayReuse` is false
   * for the retry of a request whose kept connection the origin had just closed.
   */
  private dialAndForward(x: ForwardRequest, mayReuse: boolean): void {
    const { res, session, target } = x;
    const pool = this.ctx.pool;
    const key = pool.key(x.dialer, session.user, target.host, target.port);
    const kept = mayReuse ? pool.take(key) : undefined;
    if (kept) {
      this.forward(x, kept, key, true);
      return;
    }
    const abort = new Cancellation();
    res.once('close', () => abort.abort());
    x.dialer.dial(endpoint(target.host, target.port), { signal: abort.signal, route: session }).then(
      (upstream) => {
        if (res.destroyed || this.socket.destroyed) {
          upstream.destroy();
          session.close('client went away while connecting');
          return;
        }
        this.forward(x, upstream, key, false);
      },
      (err: unknown) => {
        if (res.destroyed || this.socket.destroyed) {
          session.close(`client went away: ${describeError(err)}`);
          return;
        }
        const r = refusalStatus(dialRefusal(err, session));
        x.refuse(r.status, r.why, r.level);
      },
    );
  }

  private forward(x: ForwardRequest, upstream: OutboundStream, key: string, reused: boolean): void {
    const { req, res, target, session, tag, expectContinue, refuse } = x;
    // Kept alive only on TCP connections (a tunnel's HTTP/2 stream is cheap to open anyway).
    const keep = upstream instanceof Socket;
    session.track(upstream);
    session.update({ state: 'open' });
    const headers = ['Host', target.authority, ...stripHopByHop(req.rawHeaders, ['host', 'via'])];
    const via = req.headers.via;
    headers.push('Via', via ? `${via}, ${VIA}` : VIA);
    // The body is re-framed by node:http: chunked stays chunked, Content-Length is passed on as is.
    if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
    if (keep) headers.push('Connection', 'keep-alive');
    let finished = false;
    const done = (outcome: string): void => {
      if (finished) return;
      finished = true;
      session.close(outcome);
    };
    session.closer = {
      close: (reason) => {
        done(reason);
        upstream.destroy();
        res.destroy();
      },
    };
    const preq = requestOver(upstream, { method: req.method ?? 'GET', path: target.path, headers });
    const idle = this.ctx.options.idleTimeoutMs;
    const onStall = (): void => {
      preq.destroy(Object.assign(new Error(`no response for ${idle} ms`), { code: 'ETIMEDOUT' }));
    };
    if (idle > 0) upstream.setTimeout(idle, onStall);
    if (keep) {
      // node:http decides: with both sides keeping the connection alive, a complete exchange ends in 'free'.
      (preq as http.ClientRequest & { shouldKeepAlive: boolean }).shouldKeepAlive = true;
      const socket = upstream as Socket;
      socket.once('free', () => {
        socket.off('timeout', onStall);
        this.ctx.pool.give(key, socket);
      });
    }
    if (expectContinue) preq.on('continue', () => res.writeContinue());
    let answered = false;
    preq.on('error', (err) => {
      if (finished) return;
      // A kept connection the origin closed just before this request: once more on a new one (no body was
      // sent, so nothing is sent twice).
      if (reused && !answered && !x.hasBody && !res.headersSent && !res.destroyed) {
        upstream.destroy();
        this.dialAndForward(x, false);
        return;
      }
      if (!res.headersSent) {
        refuse(statusForDialError(err), `${describeError(err)} (via ${session.route})`, 'warn');
        finished = true;
      } else {
        this.ctx.logger.warn(`${tag}: ${req.method ?? '?'} ${session.destination}: target failed mid-response: ${describeError(err)}`);
        done(`target failed: ${describeError(err)}`);
        res.destroy();
      }
      upstream.destroy();
    });
    preq.on('response', (pres) => {
      answered = true;
      const status = pres.statusCode ?? 502;
      res.writeHead(status, pres.statusMessage, stripHopByHop(pres.rawHeaders));
      pres.pipe(res);
      pres.on('error', () => undefined); // reported through 'close' below
      pres.once('close', () => {
        if (!pres.complete && !finished) {
          this.ctx.logger.warn(`${tag}: ${req.method ?? '?'} ${session.destination}: response truncated by the target`);
          done('response truncated by the target');
          res.destroy();
        }
      });
      res.once('finish', () => {
        if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${tag}: ${req.method ?? '?'} ${session.destination}${target.path.length > 80 ? target.path.slice(0, 80) + '…' : target.path} → ${status} via ${session.route}`);
        done('ok');
      });
    });
    res.once('close', () => {
      if (!res.writableFinished && !finished) {
        done('client went away');
        preq.destroy();
        upstream.destroy();
      }
    });
    req.on('error', (err) => preq.destroy(err));
    // A retry on a new connection comes after the (bodiless) request was read to its end: pipe() would not end it again.
    if (req.readableEnded) preq.end();
    else req.pipe(preq);
  }

  // ---- CONNECT tunnels ----

  private onConnect(req: http.IncomingMessage, sock: ClientStream, head: Buffer): void {
    this.headStarted();
    this.active++;
    const session = this.ctx.openSession('http', sock);
    const target = req.url ?? '';
    session.update({ command: 'connect' });
    const tunnel = new Tunnel(sock, session, this.client, target, this.ctx);
    const auth = this.authenticate(req);
    if (!auth.ok) {
      if (auth.forbidden) tunnel.refuse(403, auth.why, 'warn', []);
      else tunnel.refuse(407, auth.why, auth.challenge ? 'info' : 'warn', [['Proxy-Authenticate', PROXY_AUTHENTICATE]]);
      return;
    }
    if (auth.user !== undefined) session.update({ user: auth.user });
    const hp = parseConnectTarget(target);
    if (!hp) {
      tunnel.refuse(400, `CONNECT target "${target.slice(0, 200)}" is not host:port`, 'warn');
      return;
    }
    // Bytes the client sent right behind the CONNECT head go first.
    serveRequest(sock, { command: 'connect', destination: endpoint(hp.host, hp.port), early: head }, tunnel, session, this.ctx);
  }
}

/** HTTP status, reason and log level for a refusal from the pipeline: 503 over the limit, 403 blocked, 502/504 failed. */
function refusalStatus(r: Refusal): { status: number; why: string; level: 'info' | 'warn' } {
  switch (r.stage) {
    case 'limit':
      return { status: 503, why: r.message, level: 'warn' };
    case 'blocked':
      return { status: 403, why: r.message, level: 'info' };
    case 'dial':
      return { status: statusForReply(r.reply), why: `${r.message} (via ${r.route})`, level: 'warn' };
  }
}

/** One CONNECT: the pipeline's answers as HTTP responses on the tunnel's socket. */
class Tunnel implements Replier {
  constructor(
    private readonly sock: ClientStream,
    private readonly session: Session,
    private readonly client: string,
    private readonly target: string,
    private readonly ctx: ConnectionContext,
  ) {}

  granted(): void {
    this.sock.write(ESTABLISHED);
  }

  accepted(): void {
    // CONNECT has no second reply.
  }

  refused(r: Refusal): void {
    const { status, why, level } = refusalStatus(r);
    this.refuse(status, why, level);
  }

  relaying(): void {
    this.ctx.logger.debug(`#${this.session.id} ${this.client}: CONNECT ${this.session.destination} via ${this.session.route}`);
  }

  refuse(status: number, why: string, level: 'info' | 'warn' = 'info', headers: [string, string][] = []): void {
    this.ctx.logger[level](`#${this.session.id} ${this.client}: CONNECT ${this.session.destination ?? this.target} refused with ${status} ${reasonPhrase(status)}: ${why}`);
    this.session.close(`${status} ${reasonPhrase(status)}: ${why}`, status);
    closeWith(this.sock, encodeSimpleResponse(status, reasonPhrase(status), `${status} ${reasonPhrase(status)}: ${why}\n`, headers));
  }
}
