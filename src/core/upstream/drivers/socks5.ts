/** socks5:// (names resolved here) and socks5h:// (names sent on): CONNECT, BIND and UDP ASSOCIATE. */
import type { HopDriver } from '../driver';
import { readSocks5Reply, socks5Handshake } from '../socks5-client';
import { Socks5UdpPath } from '../udp-client';

declare module '../hop' {
  interface HopKinds {
    socks5: true;
  }
}

export const socks5Driver: HopDriver = {
  name: 'socks5',
  title: 'SOCKS5',
  schemes: { socks5: { port: 1080, remoteDns: false, gssapi: true }, socks5h: { port: 1080, remoteDns: true, gssapi: true } },
  takesPassword: true,
  checkCredentials(username, password) {
    if ((username === undefined) !== (password === undefined)) return 'SOCKS5 username/password authentication needs both a username and a password';
    if (username !== undefined && Buffer.byteLength(username) > 255) return 'the username is longer than 255 bytes (RFC 1929)';
    if (password !== undefined && Buffer.byteLength(password) > 255) return 'the password is longer than 255 bytes (RFC 1929)';
    return undefined;
  },
  handshake: socks5Handshake,
  readSecondReply: (socket, hop, signal) => readSocks5Reply(socket, hop, signal, 'BIND (second reply)'),
  openUdp: (control, bound, hop, receive, logger, onDrop) => Socks5UdpPath.open(control, bound, hop, receive, logger, onDrop),
};
