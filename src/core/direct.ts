/** The direct route: a plain TCP connect (happy eyeballs, a connect timeout), BIND and UDP from this host. */
import * as net from 'node:net';
import type { Endpoint } from './address';
import { listenForPeer } from './bind';
import type { CancelSignal } from './cancel';
import { DeadlineQueue } from './deadlines';
import type { BindHandle, BindOptions, Dialer, DialOptions, RouteDecision, Router, UdpOptions, UdpPath, UdpReceiver } from './dialer';
import { ProxyError, Reply } from './errors';
import { DirectUdpPath } from './udp-direct';

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


export class DirectRouter implements Router {
  private readonly decision: RouteDecision;
  constructor(connectTimeoutMs = 10_000) {
    this.decision = { action: 'dial', dialer: new DirectDialer(connectTimeoutMs), route: 'direct' };
  }
  decide(): RouteDecision {
    return this.decision;
  }
}
