/** http:// and https:// (the same driver over TLS): HTTP CONNECT with Basic auth; names always go to the proxy. */
import { ProxyError, Reply } from '../../errors';
import { HopDriver, NO_ADDRESS } from '../driver';
import { hopLabel } from '../hop';
import { httpConnectHandshake } from '../http-connect-client';

declare module '../hop' {
  interface HopKinds {
    http: true;
  }
}

export const httpConnectDriver: HopDriver = {
  name: 'http',
  title: 'HTTP',
  schemes: { http: { port: 80, remoteDns: true }, https: { port: 443, remoteDns: true, tls: true } },
  takesPassword: true,
  checkCredentials(username) {
    return username?.includes(':') ? 'the username must not contain ":" (HTTP Basic)' : undefined;
  },
  async handshake(socket, hop, command, destination, signal) {
    if (command !== 'connect') throw new ProxyError('BAD_COMMAND', `HTTP upstream ${hopLabel(hop)} only does CONNECT`, Reply.COMMAND_NOT_SUPPORTED);
    await httpConnectHandshake(socket, hop, destination, signal);
    return NO_ADDRESS;
  },
};
