/**
 * socks4:// (names resolved here to IPv4) and socks4a:// (names sent on): CONNECT and BIND, no UDP.
 * User id only, no password. An IPv4 destination 0.0.0.x (x ≠ 0) is refused by the encoder: it is
 * the SOCKS4a "name follows" marker and cannot be sent as an address.
 */
import { ProxyError, Reply } from '../../errors';
import type { HopDriver } from '../driver';
import { hopLabel } from '../hop';
import { readSocks4Reply, socks4Handshake } from '../socks4-client';

declare module '../hop' {
  interface HopKinds {
    socks4: true;
  }
}

export const socks4Driver: HopDriver = {
  name: 'socks4',
  title: 'SOCKS4',
  schemes: { socks4: { port: 1080, remoteDns: false }, socks4a: { port: 1080, remoteDns: true } },
  takesPassword: false,
  checkCredentials(username, password) {
    if (password !== undefined) return 'SOCKS4 has no passwords; give only a user id (socks4://userid@host:port)';
    if (username?.includes('\0')) return 'the user id must not contain NUL';
    return undefined;
  },
  handshake(socket, hop, command, destination, signal) {
    // The chain checks support first; this keeps the types honest.
    if (command === 'udp-associate') throw new ProxyError('BAD_COMMAND', `SOCKS4 upstream ${hopLabel(hop)} has no UDP`, Reply.COMMAND_NOT_SUPPORTED);
    return socks4Handshake(socket, hop, command, destination, signal);
  },
  readSecondReply: (socket, hop, signal) => readSocks4Reply(socket, hop, signal, 'BIND (second reply)'),
};
