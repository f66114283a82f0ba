/**
 * What chain building, URL parsing and the UI need to know about one kind of upstream. A driver speaks
 * its protocol over a stream that is already open (TCP, or TLS for a scheme with `tls`); the chain
 * connects, wraps TLS and bounds the whole setup with one deadline.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../address';
import type { CancelSignal } from '../cancel';
import type { UdpDropListener, UdpPath, UdpReceiver } from '../dialer';
import type { Logger } from '../log';
import type { CommandName } from '../socks5/protocol';
import type { HopKind, UpstreamHop } from './hop';

/**
 * A handshake that changed the stream: after GSSAPI with per-message protection (RFC 1961 section 5)
 * the rest of the chain and the relayed data go through `socket`, which encapsulates the original.
 */
export interface HandshakeResult {
  readonly bound: Endpoint;
  readonly socket: Socket;
}

/** The bound address of a reply that carries none (HTTP CONNECT). */
export const NO_ADDRESS: Endpoint = { type: 'ipv4', host: '0.0.0.0', port: 0 };

/** Per-scheme defaults: one driver may serve several schemes (socks5 and socks5h). */
export interface SchemeDefaults {
  readonly port: number;
  /** Destination names are sent to the upstream unresolved. */
  readonly remoteDns: boolean;
  /** The stream is wrapped in TLS before the handshake; the URL then accepts ?insecure, ?ca, ?servername. */
  readonly tls?: boolean;
  /** The URL accepts ?gssapi[=service] (SOCKS5). */
  readonly gssapi?: boolean;
}

export interface HopDriver {
  /** Becomes UpstreamHop.kind; unique, and never "direct". The module declares it in HopKinds (hop.ts). */
  readonly name: HopKind;
  /** For messages: "SOCKS5", "HTTP". */
  readonly title: string;
  /** The URL schemes it serves (lower case, without "://"). */
  readonly schemes: Readonly<Record<string, SchemeDefaults>>;
  /** Whether a user in the URL comes with a password (the UI asks for one and keeps it in secret storage). */
  readonly takesPassword: boolean;
  /** Why these URL credentials cannot be used, or undefined when they can. */
  checkCredentials?(username: string | undefined, password: string | undefined): string | undefined;
  /**
   * Asks the upstream to run `command` for `destination` and resolves with the bound address of its
   * (first) reply; 0.0.0.0:0 when the protocol has none. Only called with commands `supports` allows;
   * on success the socket is left paused with any bytes after the reply unshifted. A driver that must
   * carry what follows in its own framing resolves with the stream to use instead.
   */
  handshake(socket: Socket, hop: UpstreamHop, command: CommandName, destination: Endpoint, signal: CancelSignal): Promise<Endpoint | HandshakeResult>;
  /** BIND: the second reply, naming the peer that connected. Present iff the driver can BIND. */
  readSecondReply?(socket: Socket, hop: UpstreamHop, signal: CancelSignal): Promise<Endpoint>;
  /** UDP ASSOCIATE granted on `control` with relay address `bound`. Present iff the driver relays UDP. */
  openUdp?(control: Socket, bound: Endpoint, hop: UpstreamHop, receive: UdpReceiver, logger: Logger, onDrop?: UdpDropListener): Promise<UdpPath>;
}

/** CONNECT always; BIND and UDP ASSOCIATE when the driver has the method that finishes them. */
export function driverSupports(driver: HopDriver, command: CommandName): boolean {
  if (command === 'bind') return driver.readSecondReply !== undefined;
  if (command === 'udp-associate') return driver.openUdp !== undefined;
  return true;
}
