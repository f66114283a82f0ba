/** The client half of HTTP CONNECT (RFC 9110 section 9.3.6) with Basic proxy authentication. */
import type { Socket } from 'node:net';
import type { Endpoint } from '../address';
import { formatEndpoint } from '../address';
import { ProxyError } from '../errors';
import { decodeConnectResponse, encodeConnectRequest, replyForHttpStatus } from './codecs';
import { readMessage } from './handshake';
import { hopLabel, UpstreamHop } from './hop';
import type { CancelSignal } from '../cancel';

/** Opens a tunnel to `destination`; names are sent as they are (DNS happens at the proxy). */
export async function httpConnectHandshake(socket: Socket, hop: UpstreamHop, destination: Endpoint, signal: CancelSignal): Promise<void> {
  const creds = hop.username !== undefined ? { username: hop.username, password: hop.password ?? '' } : undefined;
  socket.write(encodeConnectRequest(destination, creds));
  const res = await readMessage(socket, decodeConnectResponse, signal, 'HTTP CONNECT response');
  if (res.status >= 200 && res.status < 300) return;
  const what = `CONNECT ${formatEndpoint(destination)}`;
  const status = `${res.status}${res.reason ? ` ${res.reason}` : ''}`;
  if (res.status === 407 || res.status === 401) {
    const why = creds ? `rejected the credentials for user "${creds.username}"` : 'requires authentication (add user:password to the URL)';
    throw new ProxyError('UPSTREAM_AUTH_FAILED', `upstream ${hopLabel(hop)} ${why} (HTTP ${status})`, replyForHttpStatus(res.status));
  }
  throw new ProxyError('UPSTREAM_FAILED', `upstream ${hopLabel(hop)} answered ${what} with HTTP ${status}`, replyForHttpStatus(res.status));
}
