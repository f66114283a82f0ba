import { EventEmitter } from 'node:events';
import { formatEndpoint, normalizeIp } from './address';
import type { RouteListener } from './dialer';
import { FailedHop, FailureCause, OK_OUTCOME, OutcomeKind, SessionOutcome } from './outcome';
import { RouteInfo, routedVia } from './route-info';

export type SessionProtocol = 'socks5' | 'socks4' | 'http';
export type SessionCommand = 'connect' | 'bind' | 'udp-associate' | 'http';
export type SessionState = 'handshake' | 'connecting' | 'waiting' | 'open' | 'closed';

/** A plain snapshot of one session, safe to hand to a UI. */
export interface SessionInfo {
  id: number;
  protocol: SessionProtocol;
  command: SessionCommand | undefined;
  client: string;
  user: string | undefined;
  /** How `user` was authenticated: a SOCKS5/HTTP password, or a Kerberos ticket (then `user` is the principal). */
  authMethod: 'password' | 'gssapi' | undefined;
  destination: string | undefined;
  /** The rendered route (routeInfo.text when the router gave one). */
  route: string | undefined;
  /** The route as data: rule, upstream name, failover member, hops. */
  routeInfo: RouteInfo | undefined;
  state: SessionState;
  startedAt: number;
  closedAt: number | undefined;
  bytesUp: number;
  bytesDown: number;
  datagramsUp: number;
  datagramsDown: number;
  /** UDP datagrams from the client that were not relayed (malformed, fragmented, blocked or undeliverable). */
  droppedDatagrams: number;
  /** 'ok' when the session ended normally; otherwise the reply or error that ended it (rendered text). */
  outcome: string | undefined;
  reply: number | undefined;
  /** How it ended, as data: read these, never the text. */
  outcomeKind: OutcomeKind | undefined;
  /** 'OK', 'CLOSED', a ProxyErrorCode (UPSTREAM_AUTH_FAILED, BLOCKED, …) or a system code (ECONNREFUSED, …). */
  outcomeCode: string | undefined;
  /** The chain hop that failed, when a chain upstream was the route. */
  failedHop: FailedHop | undefined;
  /** The failover member whose failure ended the session. */
  failedMember: string | undefined;
}

export interface Totals {
  active: number;
  opened: number;
  bytesUp: number;
  bytesDown: number;
  datagramsUp: number;
  datagramsDown: number;
  droppedDatagrams: number;
}

/** Something that counts bytes as it goes, like a net.Socket. */
interface ByteSource {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** Where a client connected from: its socket's remote address and port, read when the session opens. */
export interface ClientAddress {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

/** What ends a live session: the relay itself, or a handler's teardown. An object, not a closure, so a relayed session carries none. */
export interface SessionCloser {
  close(reason: string): void;
}

/**
 * One proxied connection. Byte counts are read from the sockets on demand (Node keeps them anyway),
 * so the relay path emits no per-chunk events.
 */
export class Session implements RouteListener {
  readonly id: number;
  readonly protocol: SessionProtocol;
  /** The client's `host:port`, formatted on first use (most sessions are never shown). */
  private clientLabel: string | undefined;
  private readonly clientPeer: ClientAddress | undefined;
  readonly startedAt = Date.now();
  command: SessionCommand | undefined;
  user: string | undefined;
  authMethod: 'password' | 'gssapi' | undefined;
  destination: string | undefined;
  route: string | undefined;
  routeInfo: RouteInfo | undefined;
  state: SessionState = 'handshake';
  closedAt: number | undefined;
  /** Set by close(); `outcome` and `reply` are its text and reply, kept as fields for the log lines. */
  result: SessionOutcome | undefined;
  outcome: string | undefined;
  reply: number | undefined;
  /** A typed failure noted by the pipeline; the front end's close() then renders it in its own words. */
  private cause: FailureCause | undefined;
  datagramsUp = 0;
  datagramsDown = 0;
  droppedDatagrams = 0;
  /** Byte counts of UDP payloads, and of relays that have finished. */
  private upBase = 0;
  private downBase = 0;
  private upstream: ByteSource | undefined;
  private upRead0 = 0;
  private upWritten0 = 0;
  /** Set by the server so the UI can end a session. */
  closer: SessionCloser | undefined;

  constructor(
    private readonly registry: SessionRegistry,
    id: number,
    protocol: SessionProtocol,
    client: string | ClientAddress,
  ) {
    this.id = id;
    this.protocol = protocol;
    if (typeof client === 'string') this.clientLabel = client;
    else this.clientPeer = client;
  }

  get client(): string {
    if (this.clientLabel === undefined) {
      const peer = this.clientPeer;
      this.clientLabel = formatEndpoint({ host: normalizeIp(peer?.remoteAddress ?? '?'), port: peer?.remotePort ?? 0 });
    }
    return this.clientLabel;
  }

  get bytesUp(): number {
    return this.upBase + (this.upstream ? this.upstream.bytesWritten - this.upWritten0 : 0);
  }

  get bytesDown(): number {
    return this.downBase + (this.upstream ? this.upstream.bytesRead - this.upRead0 : 0);
  }

  /** Counts what crosses `socket` (the outbound side) from now on: bytes written are up, bytes read are down. */
  track(socket: ByteSource): void {
    this.freezeCounters();
    this.upstream = socket;
    this.upWritten0 = socket.bytesWritten;
    this.upRead0 = socket.bytesRead;
  }

  countDatagram(direction: 'up' | 'down', bytes: number): void {
    if (direction === 'up') {
      this.datagramsUp++;
      this.upBase += bytes;
    } else {
      this.datagramsDown++;
      this.downBase += bytes;
    }
  }

  /**
   * A client datagram that was not relayed. `countedBytes`: it had been counted as sent up (the path
   * found it undeliverable later, e.g. its name did not resolve), so that count is taken back.
   */
  countDropped(countedBytes?: number): void {
    this.droppedDatagrams++;
    if (countedBytes !== undefined && this.datagramsUp > 0) {
      this.datagramsUp--;
      this.upBase -= countedBytes;
    }
  }

  /** `routeInfo`, when given, also sets `route` to its text. */
  update(fields: Partial<Pick<Session, 'command' | 'user' | 'authMethod' | 'destination' | 'route' | 'routeInfo' | 'state'>>): void {
    if (this.state === 'closed') return;
    Object.assign(this, fields);
    if (fields.routeInfo) this.route = fields.routeInfo.text;
    this.registry.emit('change', this);
  }

  /** A failover group says which member carried the request (see RouteListener): `default → ha via office`. */
  via(member: string): void {
    if (this.routeInfo) this.update({ routeInfo: routedVia(this.routeInfo, member) });
    else this.update({ route: `${this.route ?? ''} via ${member}`.trimStart() });
  }

  /** Notes why the session is about to end (the pipeline's refusal or dial failure), for close() to record. */
  failed(cause: FailureCause): void {
    if (this.state !== 'closed') this.cause = cause;
  }

  /**
   * Ends the session. `message` is the text front ends have always rendered; the outcome's kind and code
   * come from the failure noted with failed(), or say it just closed. A relay that finished cleanly calls complete().
   */
  close(message: string, reply?: number): void {
    const c = this.cause;
    // 'ok' is the handlers' word for a clean end (UDP association, HTTP forward): kept so their close sites stay as they are.
    if (!c && message === OK_OUTCOME.message && reply === undefined) return this.complete();
    this.end(c ? { kind: c.kind, code: c.code, message, reply, hop: c.hop, member: c.member } : { kind: 'closed', code: 'CLOSED', message, reply });
  }

  /** Ends a session that completed normally. */
  complete(): void {
    this.end(OK_OUTCOME);
  }

  private end(outcome: SessionOutcome): void {
    if (this.state === 'closed') return;
    this.freezeCounters();
    this.state = 'closed';
    this.closedAt = Date.now();
    this.result = outcome;
    this.outcome = outcome.message;
    this.reply = outcome.reply;
    this.cause = undefined;
    this.closer = undefined;
    this.registry.finish(this);
  }

  info(): SessionInfo {
    return {
      id: this.id,
      protocol: this.protocol,
      command: this.command,
      client: this.client,
      user: this.user,
      authMethod: this.authMethod,
      destination: this.destination,
      route: this.route,
      routeInfo: this.routeInfo,
      state: this.state,
      startedAt: this.startedAt,
      closedAt: this.closedAt,
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      datagramsUp: this.datagramsUp,
      datagramsDown: this.datagramsDown,
      droppedDatagrams: this.droppedDatagrams,
      outcome: this.outcome,
      reply: this.reply,
      outcomeKind: this.result?.kind,
      outcomeCode: this.result?.code,
      failedHop: this.result?.hop,
      failedMember: this.result?.member,
    };
  }

  private freezeCounters(): void {
    if (!this.upstream) return;
    this.upBase = this.bytesUp;
    this.downBase = this.bytesDown;
    this.upstream = undefined;
  }
}

export interface RegistryEvents {
  open: [Session];
  change: [Session];
  close: [Session];
  cleared: [];
}

/**
 * Live sessions and a bounded list of recently closed ones, with running totals.
 * Events: 'open', 'change' (state, destination or route changed), 'close', 'cleared' (closed list emptied).
 */
export class SessionRegistry extends EventEmitter<RegistryEvents> {
  private nextId = 1;
  private readonly live = new Map<number, Session>();
  /** Closed sessions are frozen, so their snapshots are taken only when someone asks (and then cached). */
  private readonly closed: Session[] = [];
  private closedInfo: SessionInfo[] | undefined;
  private closedTotals = { bytesUp: 0, bytesDown: 0, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 };
  private opened = 0;

  constructor(private readonly keepClosed = 100) {
    super();
  }

  /** `client` is a `host:port` label or the client's address (formatted only when someone asks). */
  open(protocol: SessionProtocol, client: string | ClientAddress): Session {
    const s = new Session(this, this.nextId++, protocol, client);
    this.live.set(s.id, s);
    this.opened++;
    this.emit('open', s);
    return s;
  }

  /** Called by Session.close. */
  finish(s: Session): void {
    if (!this.live.delete(s.id)) return;
    this.closedTotals.bytesUp += s.bytesUp;
    this.closedTotals.bytesDown += s.bytesDown;
    this.closedTotals.datagramsUp += s.datagramsUp;
    this.closedTotals.datagramsDown += s.datagramsDown;
    this.closedTotals.droppedDatagrams += s.droppedDatagrams;
    if (this.keepClosed > 0) {
      this.closed.push(s);
      // Trimmed in batches: a splice from the front per close would move the whole list every time.
      if (this.closed.length >= 2 * this.keepClosed) this.closed.splice(0, this.closed.length - this.keepClosed);
      this.closedInfo = undefined;
    }
    this.emit('close', s);
  }

  get size(): number {
    return this.live.size;
  }

  get(id: number): Session | undefined {
    return this.live.get(id);
  }

  sessions(): IterableIterator<Session> {
    return this.live.values();
  }

  snapshot(): SessionInfo[] {
    return [...this.live.values()].map((s) => s.info());
  }

  recentlyClosed(): readonly SessionInfo[] {
    this.closedInfo ??= this.closed.slice(-this.keepClosed).map((s) => s.info());
    return this.closedInfo;
  }

  clearClosed(): void {
    this.closed.length = 0;
    this.closedInfo = undefined;
    this.emit('cleared');
  }

  /** Ends a live session (the UI's "close session"). Returns false when it is not live. */
  terminate(id: number, reason = 'closed by user'): boolean {
    const s = this.live.get(id);
    if (!s?.closer) return false;
    s.closer.close(reason);
    return true;
  }

  totals(): Totals {
    const t = { active: this.live.size, opened: this.opened, ...this.closedTotals };
    for (const s of this.live.values()) {
      t.bytesUp += s.bytesUp;
      t.bytesDown += s.bytesDown;
      t.datagramsUp += s.datagramsUp;
      t.datagramsDown += s.datagramsDown;
      t.droppedDatagrams += s.droppedDatagrams;
    }
    return t;
  }
}
