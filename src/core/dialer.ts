/**
 * The outbound side's types: what a route dials with (Dialer), BIND and UDP handles, and the Router that
 * picks a route per request. Types only, so that every implementation (direct.ts, upstream/*) can import
 * them without import circles.
 */
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from './address';
import type { CancelSignal } from './cancel';
import type { RouteInfo } from './route-info';

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

/**
 * What a route's dial gives: a connected byte stream that counts what crosses it (a net.Socket, or a
 * tunnel's stream). The counters drive the session's figures and idle detection; the local address is
 * the BND.ADDR/PORT of a CONNECT reply.
 */
export type OutboundStream = Duplex & {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  /** Calls back after this long without activity (a socket's and an HTTP/2 stream's setTimeout). */
  setTimeout(ms: number, callback?: () => void): unknown;
};

/** Opens an outbound TCP stream to a destination, directly or through upstreams. */
export interface Dialer {
  /** Human-readable route, e.g. "direct" or "socks5://proxy:1080". Never contains secrets. */
  readonly label: string;
  dial(destination: Endpoint, options: DialOptions): Promise<OutboundStream>;
  /** BIND support; dialers without it make the server reply X'07'. */
  bind?(destination: Endpoint, options: BindOptions): Promise<BindHandle>;
  /** UDP support; dialers without it make the server reply X'07'. */
  openUdp?(receive: UdpReceiver, options: UdpOptions): Promise<UdpPath>;
}

/**
 * What the server does with a request: dial it (recording the route) or refuse it. `info` is the route
 * as data (rule, upstream name, hops); a router without names (tests, the CLI's direct router) may omit it.
 */
export type RouteDecision =
  | { action: 'dial'; dialer: Dialer; route: string; info?: RouteInfo }
  | { action: 'block'; route: string; info?: RouteInfo };

export interface RouteContext {
  command: 'connect' | 'bind' | 'udp-associate' | 'http';
  user?: string;
}

/** Chooses the route for each request; swapped at run time when rules or upstreams change. */
export interface Router {
  decide(destination: Endpoint, context: RouteContext): RouteDecision;
}
