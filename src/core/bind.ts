import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import { Endpoint, endpointOfSocket, isUnspecified, normalizeIp } from './address';
import type { BindHandle, BindOptions } from './dialer';
import { ProxyError, Reply } from './errors';

/** Addresses a BIND peer may come from; undefined means anyone (DST.ADDR was 0.0.0.0 or ::). */
async function expectedPeers(destination: Endpoint): Promise<Set<string> | undefined> {
  if (isUnspecified(destination)) return undefined;
  if (destination.type !== 'domain') return new Set([destination.host]);
  const all = await dns.lookup(destination.host, { all: true });
  return new Set(all.map((a) => normalizeIp(a.address)));
}

/**
 * RFC 1928 BIND, served locally: listen on the interface the client reached us on, accept one
 * connection from the expected peer (others are refused), and give up after `timeoutMs`.
 */
export async function listenForPeer(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
  const allowed = await expectedPeers(destination);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.localAddress, port: 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  let timer: NodeJS.Timeout | undefined;
  const close = (): void => {
    clearTimeout(timer);
    server.close();
  };
  const accepted = new Promise<{ socket: net.Socket; peer: Endpoint }>((resolve, reject) => {
    const fail = (err: Error): void => {
      close();
      reject(err);
    };
    timer = setTimeout(() => fail(new ProxyError('BIND_TIMEOUT', `no peer connected within ${options.timeoutMs} ms`, Reply.TTL_EXPIRED)), options.timeoutMs);
    options.signal.addEventListener('abort', () => fail(new ProxyError('BIND_TIMEOUT', 'aborted')), { once: true });
    server.on('error', fail);
    server.on('connection', (socket) => {
      const peer = endpointOfSocket(socket.remoteAddress, socket.remotePort);
      if (allowed && !allowed.has(peer.host)) {
        // Not the host the client said would connect: refuse it and keep waiting.
        socket.destroy();
        options.onRefusedPeer?.(peer);
        return;
      }
      close();
      resolve({ socket, peer });
    });
  });
  // Avoid an unhandled rejection if the caller stops listening before awaiting.
  accepted.catch(() => undefined);
  return { bound: endpointOfSocket(address.address, address.port), accepted, close };
}
