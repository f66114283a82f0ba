/**
 * Byte counters on an HTTP/2 stream, so that a tunnelled session is an OutboundStream like a socket: the
 * relay's idle sweep and the session's ↑/↓ figures read bytesRead/bytesWritten. The stream's own push
 * (everything it receives) and _write/_writev (everything written to it) are wrapped once per stream;
 * nothing is allocated per chunk.
 */
import type { Duplex } from 'node:stream';
import type { OutboundStream } from '../dialer';

type Writev = (chunks: { chunk: Buffer | string }[], cb: (err?: Error | null) => void) => void;
type Mutable = Duplex & { bytesRead: number; bytesWritten: number; _writev?: Writev | null };

export interface StreamAddresses {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

function abortStream(this: Duplex): void {
  this.destroy(Object.assign(new Error('the tunnel was cut'), { code: 'ECONNRESET' }));
}

export function countedStream(stream: Duplex, addresses: StreamAddresses): OutboundStream {
  const s = stream as Mutable;
  s.bytesRead = 0;
  s.bytesWritten = 0;
  const push = s.push;
  s.push = function (this: Mutable, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) this.bytesRead += (chunk as Buffer).length;
    return push.call(this, chunk, encoding);
  };
  const write = s._write;
  s._write = function (this: Mutable, chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    write.call(this, chunk, encoding, cb);
  };
  const writev = s._writev;
  if (typeof writev === 'function') {
    s._writev = function (this: Mutable, chunks, cb): void {
      for (const c of chunks) this.bytesWritten += c.chunk.length;
      writev.call(this, chunks, cb);
    };
  }
  // An HTTP/2 stream cut by its session going away is 'aborted', then ended: error it first, so the relay
  // resets its client instead of passing on a FIN as if a truncated transfer were complete.
  s.once('aborted', abortStream);
  for (const key of ['localAddress', 'localPort', 'remoteAddress', 'remotePort'] as const) {
    Object.defineProperty(s, key, { value: addresses[key], enumerable: true, configurable: true });
  }
  return s as unknown as OutboundStream;
}
