/**
 * The WebSocket as the byte stream HTTP/2 runs over (both ends). ws's createWebSocketStream sends one
 * WebSocket message per write, and http2 writes a DATA frame's 9-byte header and its payload as separate
 * buffers: two messages, two frame headers, two masks and two socket writes per 16 KB, which on loopback
 * cost more than half of the tunnel's throughput. A session's flush arrives corked, so _writev gets all
 * of it: one message.
 */
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocket } from 'ws';

type Chunks = { chunk: Buffer | string }[];

export function tunnelDuplex(ws: WebSocket): Duplex {
  const duplex = createWebSocketStream(ws, { allowHalfOpen: false });
  duplex._writev = function (chunks: Chunks, callback: (err?: Error | null) => void): void {
    const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => (typeof c.chunk === 'string' ? Buffer.from(c.chunk) : c.chunk)));
    // _write keeps what createWebSocketStream does around the send (waiting for 'open').
    duplex._write(data, 'buffer' as BufferEncoding, callback);
  };
  duplex.on('error', () => undefined);
  return duplex;
}
