import * as dns from 'node:dns/promises';
import type { Duplex } from 'node:stream';
import { Endpoint, endpoint } from '../address';
import { ProxyError, Reply } from '../errors';
import type { Decoded } from '../socks5/protocol';
import type { CancelSignal } from '../cancel';

/**
 * Reads one message from `socket` with a pure decoder. On success the socket is left paused with no
 * data listener, and any bytes after the message are unshifted back so the next reader (or the relay)
 * gets them. Rejects when the peer closes, errors or the signal aborts (with the signal's reason).
 */
export function readMessage<T>(socket: Duplex, decode: (buf: Buffer) => Decoded<T> | undefined, signal: CancelSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      socket.pause();
    };
    const fail = (err: unknown): void => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let decoded: Decoded<T> | undefined;
      try {
        decoded = decode(buf);
      } catch (err) {
        fail(err);
        return;
      }
      if (!decoded) return;
      cleanup();
      if (decoded.length < buf.length) socket.unshift(buf.subarray(decoded.length));
      resolve(decoded.value);
    };
    const onEnd = (): void => fail(new ProxyError('UPSTREAM_FAILED', `the upstream closed the connection while we waited for its ${what}`, Reply.GENERAL_FAILURE));
    const onError = (err: Error): void => fail(new ProxyError('UPSTREAM_FAILED', `upstream connection failed while we waited for its ${what}: ${err.message}`, Reply.GENERAL_FAILURE, { cause: err }));
    const onAbort = (): void => fail(signal.reason);
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    if (socket.destroyed || socket.readableEnded) {
      reject(new ProxyError('UPSTREAM_FAILED', `the upstream connection closed before its ${what}`, Reply.GENERAL_FAILURE));
      return;
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.resume();
  });
}

/** Resolves a domain destination here (for socks5:// and socks4:// upstreams); IPs pass through. */
export async function resolveHere(destination: Endpoint, family?: 4): Promise<Endpoint> {
  if (destination.type !== 'domain') return destination;
  try {
    const all = await dns.lookup(destination.host, { all: true, ...(family ? { family } : {}) });
    // One address goes to the upstream: prefer IPv4, which every upstream can reach and SOCKS4 can carry.
    const pick = all.find((a) => a.family === 4) ?? all[0];
    if (!pick) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
    return endpoint(pick.address, destination.port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
    throw new ProxyError('DIAL_FAILED', `cannot resolve ${destination.host}: ${code}`, Reply.HOST_UNREACHABLE, { cause: err });
  }
}

/** An CancelSignal that fires when `parent` aborts or `timeoutMs` passes, with a ProxyError as its reason. */
export function deadline(
  parent: CancelSignal,
  timeoutMs: number,
  what: string,
  code: 'CONNECT_TIMEOUT' | 'BIND_TIMEOUT' = 'CONNECT_TIMEOUT',
): { signal: CancelSignal; dispose(): void } {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort(new ProxyError('DIAL_FAILED', 'aborted'));
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = timeoutMs > 0 ? setTimeout(() => ctl.abort(new ProxyError(code, `${what} timed out after ${timeoutMs} ms`, Reply.TTL_EXPIRED)), timeoutMs) : undefined;
  return {
    signal: ctl.signal,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}
