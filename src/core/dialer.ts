import * as net from 'node:net';
import { Endpoint } from './address';
import { listenForPeer } from './bind';
import { DirectUdpPath } from './udp-direct';
import { ProxyError, Reply } from './errors';
import type { CancelSignal } from './cancel';
import { DeadlineQueue } from './deadlines';

export interface DialOptions {
  /** Aborted when the client goes away or the server closes. */
  signal: CancelSignal;
  /** Told which member of a failover group carried the request (the session, so its route can say). */
  route?: RouteListener;
}

export interface RouteListener {
  via(member: string): void;
}

/** A listening endpoint for BIND: where the peer should connect, and the connection once it does. */
export interface BindHandle {
  readonly bound: Endpoint;
  /** Resolves with the accepted peer; rejects on timeout (X'06') or abort. */
  readonly accepted: Promise<{ socket: net.Socket; peer: Endpoint }>;
  close(): void;
}

export interface BindOptions extends DialOptions {
  /** The address the client's control connection arrived on: the listener binds there. */
  localAddress: string;
  timeoutMs: number;
  /** Told about connections refused because they came from another host than DST.ADDR. */
  onRefusedPeer?(peer: Endpoint): void;
}

/** A way to send datagrams out and receive the answers, for UDP ASSOCIATE. */
export interface UdpPath {
  send(destination: Endpoint, payload: Buffer): void;
  close(): void;
}

export type UdpReceiver = (source: Endpoint, payload: Buffer) => void;

/** Told about a datagram a path accepted but could not send (its name did not resolve, the send failed). */
export type UdpDropListener = (destination: Endpoint, bytes: number, reason: string) => void;

export interface UdpOptions extends DialOptions {
  onDrop?: UdpDropListener;
}

/** Opens an outbound TCP stream to a destination, directly or through upstreams. */
export interface Dialer {
  /** Human-readable route, e.g. "direct" or "socks5://proxy:1080". Never contains secrets. */
  readonly label: string;
  dial(destination: Endpoint, options: DialOptions): Promise<net.Socket>;
  /** BIND support; dialers without it make the server reply X'07'. */
  bind?(destination: Endpoint, options: BindOptions): Promise<BindHandle>;
  /** UDP support; dialers without it make the server reply X'07'. */
  openUdp?(receive: UdpReceiver, options: UdpOptions): Promise<UdpPath>;
}

/** A plain TCP connect with happy eyeballs and a connect timeout. */
export class DirectDialer implements Dialer {
  readonly label = 'direct';
  constructor(private readonly connectTimeoutMs = 10_000) {}

  dial(destination: Endpoint, options: DialOptions): Promise<net.Socket> {
    return connectTcp(destination.host, destination.port, this.connectTimeoutMs, options.signal);
  }

  bind(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
    return listenForPeer(destination, options);
  }

  openUdp(receive: UdpReceiver, options?: UdpOptions): Promise<UdpPath> {
    return Promise.resolve(new DirectUdpPath(receive, options?.onDrop));
  }
}

// Connect deadlines share one timer per duration (see DeadlineQueue); the key is the dial's timeout callback.
const byDuration = new Map<number, DeadlineQueue<() => void>>();
function connectDeadlines(ms: number): DeadlineQueue<() => void> {
  let q = byDuration.get(ms);
  if (!q) {
    q = new DeadlineQueue((onTimeout) => onTimeout());
    byDuration.set(ms, q);
  }
  return q;
}

/**
 * net.connect as a promise: resolves on 'connect', rejects on error, timeout (X'06') or abort,
 * destroying the socket in every failure case.
 */
export function connectTcp(host: string, port: number, timeoutMs: number, signal: CancelSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new ProxyError('DIAL_FAILED', 'aborted'));
      return;
    }
    // new Socket().connect(), not net.connect(): VS Code's extension host replaces net.connect (@vscode/proxy-agent,
    // system certificates) with one that drops the socket options, allowHalfOpen among them.
    const socket = new net.Socket({ allowHalfOpen: true });
    socket.setNoDelay(true);
    socket.connect({ host, port, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250 });
    const fail = (err: unknown): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => fail(err);
    const onAbort = (): void => fail(new ProxyError('DIAL_FAILED', 'aborted'));
    const onTimeout = (): void => fail(new ProxyError('CONNECT_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`, Reply.TTL_EXPIRED));
    const deadlines = connectDeadlines(timeoutMs);
    deadlines.add(onTimeout, timeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    function cleanup(): void {
      deadlines.delete(onTimeout);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
    }
    socket.once('error', onError);
    socket.once('connect', onConnect);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** What the server does with a request: dial it (recording the route) or refuse it. */
export type RouteDecision =
  | { action: 'dial'; dialer: Dialer; route: string }
  | { action: 'block'; route: string };

export interface RouteContext {
  command: 'connect' | 'bind' | 'udp-associate' | 'http';
  user?: string;
}

/** Chooses the route for each request; swapped at run time when rules or upstreams change. */
export interface Router {
  decide(destination: Endpoint, context: RouteContext): RouteDecision;
}

export class DirectRouter implements Router {
  private readonly decision: RouteDecision;
  constructor(connectTimeoutMs = 10_000) {
    this.decision = { action: 'dial', dialer: new DirectDialer(connectTimeoutMs), route: 'direct' };
  }
  decide(): RouteDecision {
    return this.decision;
  }
}
