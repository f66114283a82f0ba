import type { OriginPool } from './http/origin-pool';
import type { UserCredentials } from './auth';
import type { Router } from './dialer';
import type { Logger } from './log';
import { DEFAULTS } from './defaults';
import type { Session, SessionProtocol } from './registry';
import type { ClientStream } from './transport';

/** Everything configurable about the listener. Times are in milliseconds; 0 disables a timeout. */
export interface ProxyOptions {
  host: string;
  port: number;
  /** Accounts for SOCKS5 username/password and HTTP Basic. Empty: no authentication. */
  users: UserCredentials[];
  /** Accept clients that offer no authentication even when users are configured. Default: only when there are no users. */
  allowNoAuth: boolean;
  /**
   * SOCKS5 GSSAPI (RFC 1961) clients, authenticated with this keytab (a path; undefined: the Kerberos
   * library's default, KRB5_KTNAME or /etc/krb5.keytab). The principal becomes the session's user.
   */
  gssapi?: { keytab?: string };
  /** Serve SOCKS4/4a (it cannot carry a password, so it is refused while users are configured unless this is true). */
  socks4: boolean;
  /** Serve plain HTTP proxy requests and CONNECT on the same port. */
  http: boolean;
  handshakeTimeoutMs: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  bindTimeoutMs: number;
  udpIdleTimeoutMs: number;
  maxSessions: number;
  maxUdpAssociations: number;
}

export const defaultOptions: ProxyOptions = { ...DEFAULTS, users: [] };

/** What a protocol handler needs from the server for one connection. */
export interface ConnectionContext {
  readonly options: Readonly<ProxyOptions>;
  readonly logger: Logger;
  readonly router: Router;
  /** True when this connection arrived while the session limit was reached: refuse its request. */
  readonly overLimit: boolean;
  /** Stops the handshake deadline; call once the request is parsed. */
  handshakeDone(): void;
  /** Reserves a UDP association slot; false when the limit is reached. */
  acquireUdp(): boolean;
  releaseUdp(): void;
  /** Idle keep-alive connections to origins (HTTP forward mode). */
  readonly pool: OriginPool;
  /** A registry session for a request on `socket` (an HTTP connection carries one per request). */
  openSession(protocol: SessionProtocol, socket: ClientStream): Session;
}

/** Serves a connection once its protocol is known from the first byte (`first`, already read). */
export type ProtocolHandler = (socket: ClientStream, first: Buffer, ctx: ConnectionContext) => void;
