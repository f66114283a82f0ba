/**
 * The request lifecycle, written once for every front end: session limit → routing → block → dial (or
 * BIND) → reply → relay, with the client's early bytes and EOF delivered by the relay. A front end only
 * parses its protocol into a ProxyRequest and renders the outcome through its Replier.
 */
import type { Duplex } from 'node:stream';
import { Endpoint, endpointOfSocket, formatEndpoint, normalizeIp } from './address';
import { Cancellation } from './cancel';
import type { ConnectionContext } from './context';
import type { Dialer, OutboundStream, RouteContext } from './dialer';
import { describeError, ProxyError, Reply, ReplyCode, replyForError } from './errors';
import { failureOf } from './outcome';
import type { Session } from './registry';
import { relaySession } from './relay';
import type { ClientStream } from './transport';

/** A request in protocol-neutral form, as a front end parsed it. */
export interface ProxyRequest {
  readonly command: 'connect' | 'bind';
  readonly destination: Endpoint;
  /** Bytes the client sent past its request: they reach the target first. */
  readonly early: Buffer;
}

/** Where a request was turned down: over the session limit, by a rule, or because the dial (or BIND) failed. */
export type RefusalStage = 'limit' | 'blocked' | 'dial';

export interface Refusal {
  readonly stage: RefusalStage;
  /** The SOCKS5 reply code for it (front ends of other protocols map it to theirs). */
  readonly reply: ReplyCode;
  /** What went wrong, for the log line and the session's outcome. */
  readonly message: string;
  /** The engine's error code, or the system's (ECONNREFUSED, …). */
  readonly code: string;
  /** The route the request was decided on (undefined over the limit: no decision was made). */
  readonly route: string | undefined;
}

/** How a front end answers in its own protocol. */
export interface Replier {
  /** CONNECT established (the outbound socket's local address) or BIND listening (where the peer should connect). */
  granted(bound: Endpoint): void;
  /** BIND only: the peer connected. */
  accepted(peer: Endpoint): void;
  /** Writes the protocol's refusal, logs it, closes the session and the client. */
  refused(refusal: Refusal): void;
  /** A line for the debug log once the relay starts (the front end knows how to name the request). */
  relaying?(): void;
}

/** The first half of the lifecycle: limit, routing, block. Records command, destination and route on the session. */
export function admit(ctx: ConnectionContext, session: Session, destination: Endpoint, route: RouteContext): { dialer: Dialer } | Refusal {
  const command = route.command;
  if (ctx.overLimit) {
    session.update({ command, destination: formatEndpoint(destination), state: 'connecting' });
    session.failed({ kind: 'refused', code: 'TOO_MANY_SESSIONS' });
    return { stage: 'limit', route: undefined, code: 'TOO_MANY_SESSIONS', reply: Reply.GENERAL_FAILURE, message: `session limit (${ctx.options.maxSessions}) reached` };
  }
  const decision = ctx.router.decide(destination, route);
  // One 'change' event for command, destination, route and state.
  session.update({ command, destination: formatEndpoint(destination), route: decision.route, routeInfo: decision.info, state: 'connecting' });
  if (decision.action === 'block') {
    session.failed({ kind: 'refused', code: 'BLOCKED' });
    return { stage: 'blocked', route: decision.route, code: 'BLOCKED', reply: Reply.NOT_ALLOWED, message: `blocked by ${decision.route}` };
  }
  return { dialer: decision.dialer };
}

export function isRefusal(x: { dialer: Dialer } | Refusal): x is Refusal {
  return 'stage' in x;
}

/** A dial or BIND failure, with its reply code from the cause; noted on the session (code, failed hop, member) for its outcome. */
export function dialRefusal(err: unknown, session: Session): Refusal {
  const cause = failureOf(err);
  session.failed(cause);
  return { stage: 'dial', route: session.route, code: cause.code, reply: replyForError(err), message: describeError(err) };
}

/**
 * Runs a parsed CONNECT or BIND to the end: admission, the outbound side, the replies, then the relay.
 * The client's close aborts a dial in flight; a client gone by the time the outbound side is up closes
 * the session without a reply.
 */
export function serveRequest(client: ClientStream, req: ProxyRequest, replier: Replier, session: Session, ctx: ConnectionContext): void {
  const admitted = admit(ctx, session, req.destination, { command: req.command, user: session.user });
  if (isRefusal(admitted)) {
    replier.refused(admitted);
    return;
  }
  new InFlight(client, req, replier, session, ctx).run(admitted.dialer);
}

/** A request between admission and the relay: the only state that needs the client's close. */
class InFlight {
  private readonly abort = new Cancellation();
  private readonly onClose = (): void => this.abort.abort();

  constructor(
    private readonly client: ClientStream,
    private readonly req: ProxyRequest,
    private readonly replier: Replier,
    private readonly session: Session,
    private readonly ctx: ConnectionContext,
  ) {
    client.once('close', this.onClose);
  }

  run(dialer: Dialer): void {
    const run = this.req.command === 'connect' ? this.connect(dialer) : this.bind(dialer);
    run.catch((err: unknown) => {
      this.client.off('close', this.onClose);
      if (this.client.destroyed) {
        this.session.close(`client went away: ${describeError(err)}`);
        return;
      }
      this.replier.refused(dialRefusal(err, this.session));
    });
  }

  private async connect(dialer: Dialer): Promise<void> {
    const target = await dialer.dial(this.req.destination, { signal: this.abort.signal, route: this.session });
    if (this.gone(target, 'client went away while connecting')) return;
    this.replier.granted(endpointOfSocket(target.localAddress, target.localPort));
    this.relay(target);
  }

  private async bind(dialer: Dialer): Promise<void> {
    if (!dialer.bind) throw new ProxyError('BAD_COMMAND', `BIND is not supported through ${dialer.label}`, Reply.COMMAND_NOT_SUPPORTED);
    const handle = await dialer.bind(this.req.destination, {
      signal: this.abort.signal,
      route: this.session,
      localAddress: normalizeIp(this.client.localAddress),
      timeoutMs: this.ctx.options.bindTimeoutMs,
      onRefusedPeer: (peer) => this.ctx.logger.warn(`#${this.session.id} ${this.session.client}: BIND refused a connection from ${formatEndpoint(peer)} (expected ${this.session.destination})`),
    });
    if (this.client.destroyed) {
      handle.close();
      this.session.close('client went away');
      return;
    }
    this.replier.granted(handle.bound);
    this.session.update({ state: 'waiting' });
    this.ctx.logger.debug(`#${this.session.id} ${this.session.client}: BIND listening on ${formatEndpoint(handle.bound)} for ${this.session.destination}`);
    const { socket: peerSocket, peer } = await handle.accepted;
    if (this.gone(peerSocket, 'client went away while waiting for the peer')) return;
    this.replier.accepted(peer);
    this.ctx.logger.debug(`#${this.session.id} ${this.session.client}: BIND accepted ${formatEndpoint(peer)}`);
    this.relay(peerSocket);
  }

  private gone(outbound: Duplex, outcome: string): boolean {
    if (!this.client.destroyed) return false;
    outbound.destroy();
    this.session.close(outcome);
    return true;
  }

  private relay(target: OutboundStream): void {
    // From here the relay owns both sockets; nothing keeps this object alive for the session's lifetime.
    this.client.off('close', this.onClose);
    if (this.ctx.logger.debugEnabled !== false) this.replier.relaying?.();
    relaySession(this.client, target, this.req.early, this.session, this.ctx);
  }
}
