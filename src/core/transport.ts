/**
 * What the server serves: any duplex byte stream with its peer's addresses. The TCP listener hands over
 * its sockets (a net.Socket is both); other transports (a tunnel's streams, a test's stream pair) hand over
 * a Duplex with the addresses they know. Real sockets keep the zero-copy read path; other streams relay in
 * stream mode.
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Where a client stream comes from (for a TCP connection: its socket's addresses). */
export interface PeerAddress {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** The address the client reached us on: BIND and UDP ASSOCIATE listen there. */
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** A client connection as the front ends see it. */
export type ClientStream = Duplex & PeerAddress;

/**
 * The stream with its addresses readable the way a socket's are (`stream.remoteAddress`, …), so every
 * front end reads them in one way. A net.Socket already has them; another stream gets them as read-only
 * own properties.
 */
export function asClientStream(stream: Duplex, peer: PeerAddress): ClientStream {
  if (stream instanceof Socket) return stream;
  for (const key of ['remoteAddress', 'remotePort', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(stream, key, { value: peer[key], enumerable: true });
  }
  return stream as ClientStream;
}
