/**
 * A forwarded request written to a socket the proxy has already dialled along its route (direct, upstream
 * or chain), with node:http's client doing the framing.
 *
 * Not through http.request(): inside VS Code's extension host that function is replaced (@vscode/proxy-agent,
 * `http.proxySupport` = "override" by default) and puts its own agent on every request; an agent ignores
 * createConnection and connects to the request's host itself, which here is none, so localhost:80. The
 * ClientRequest class is not patched: with no agent and a createConnection it writes to the given socket.
 */
import { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface OriginRequestOptions {
  method: string;
  path: string;
  /** Raw header list (name, value, name, value, …), written as given. */
  headers: string[];
}

export function requestOver(socket: Duplex, options: OriginRequestOptions): ClientRequest {
  const req = new ClientRequest({ method: options.method, path: options.path, headers: options.headers, setHost: false, createConnection: () => socket as Socket });
  // A dialer hands the socket over paused (its handshake reader stopped it), and node:http only adds a
  // 'data' listener, which does not restart a paused stream: the response would never be read.
  req.once('socket', resumeSocket);
  return req;
}

function resumeSocket(socket: Duplex): void {
  socket.resume();
}
