/** The client half of SOCKS4 and SOCKS4a over an already open stream. */
import type { Socket } from 'node:net';
import type { Endpoint } from '../address';
import { formatEndpoint } from '../address';
import { ProxyError, Reply } from '../errors';
import { decodeSocks4Reply, encodeSocks4Request, Socks4Reply } from '../socks4/protocol';
import { readMessage, resolveHere } from './handshake';
import { hopLabel, UpstreamHop } from './hop';
import type { CancelSignal } from '../cancel';

/**
 * CONNECT or BIND through a SOCKS4 upstream. socks4:// resolves names here (IPv4 only); socks4a:// sends them.
 * Replies: 90 granted; 91 rejected or failed → X'05' (SOCKS4 cannot say which); 92/93 (identd) → X'01' as an auth failure.
 */
export async function socks4Handshake(socket: Socket, hop: UpstreamHop, command: 'connect' | 'bind', destination: Endpoint, signal: CancelSignal): Promise<Endpoint> {
  const target = hop.remoteDns ? destination : await resolveHere(destination, 4);
  socket.write(encodeSocks4Request(command, target, hop.username ?? ''));
  return readSocks4Reply(socket, hop, signal, `${command.toUpperCase()} ${formatEndpoint(destination)}`);
}

/** Reads one SOCKS4 reply (BIND sends two). */
export async function readSocks4Reply(socket: Socket, hop: UpstreamHop, signal: CancelSignal, what: string): Promise<Endpoint> {
  const reply = await readMessage(socket, decodeSocks4Reply, signal, 'SOCKS4 reply');
  switch (reply.code) {
    case Socks4Reply.GRANTED:
      return reply.bound;
    case Socks4Reply.REJECTED:
      throw new ProxyError('UPSTREAM_FAILED', `upstream ${hopLabel(hop)} rejected ${what} (SOCKS4 reply 91: rejected or failed)`, Reply.CONNECTION_REFUSED);
    case Socks4Reply.NO_IDENTD:
    case Socks4Reply.IDENTD_MISMATCH:
      throw new ProxyError('UPSTREAM_AUTH_FAILED', `upstream ${hopLabel(hop)} refused user id "${hop.username ?? ''}" (SOCKS4 reply ${reply.code}: identd check failed)`, Reply.GENERAL_FAILURE);
    default:
      throw new ProxyError('UPSTREAM_FAILED', `upstream ${hopLabel(hop)} answered ${what} with unknown SOCKS4 code ${reply.code}`, Reply.GENERAL_FAILURE);
  }
}
