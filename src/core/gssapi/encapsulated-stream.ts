/**
 * RFC 1961 section 5: once integrity or confidentiality is agreed, every byte after the subnegotiation
 * (the SOCKS request, the reply and all relayed data) travels as `01 03 len gss_wrap(data)` messages.
 * This Duplex sits on the raw socket and carries plaintext: writes are wrapped in messages of at most
 * 65535 octets, received messages are unwrapped and pushed, and the socket is paused while the reader
 * is full, so backpressure passes through in both directions and at most one message is buffered.
 * A message inside one chunk is unwrapped where it lies; one spread over chunks is copied once, into a
 * buffer of its size, and each written message goes out as header and token without joining them.
 *
 * A message that fails to unwrap (forged, replayed, out of order), an unencrypted message on a
 * confidential context, an abort or a truncated message at EOF destroys the stream with an error: the
 * relay then resets the other side rather than pass on a FIN for data that did not all arrive.
 */
import { Duplex } from 'node:stream';
import { ProxyError } from '../errors';
import { resetOrDestroy } from '../socket-util';
import { gssProxyError } from './errors';
import type { Protector } from './library';
import { decodeGssHeader, encodeGssHeader, GssMessage, MAX_TOKEN, MessageType } from './messages';

const EMPTY = Buffer.alloc(0);

/** What the stream needs from the socket under it (a net.Socket, or any Duplex with the same calls). */
export type Carrier = Duplex & {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  setTimeout?(ms: number, callback?: () => void): unknown;
  setNoDelay?(noDelay?: boolean): unknown;
  setKeepAlive?(enable?: boolean, delay?: number): unknown;
};

export class GssEncapsulatedStream extends Duplex {
  /** Plaintext counts, as a socket's (the session's ↑/↓ figures and the idle sweep read them). */
  bytesRead = 0;
  bytesWritten = 0;
  /** Fewer octets than a header, kept until the next chunk. */
  private head: Buffer = EMPTY;
  /** A message spread over chunks, filled up to `filled`, and its type. */
  private partial: Buffer | undefined;
  private partialType: GssMessage['type'] = 'encapsulation';
  private filled = 0;
  private readonly maxPlain: number;
  private ended = false;

  constructor(
    private readonly carrier: Carrier,
    private readonly protector: Protector,
    private readonly confidential: boolean,
    private readonly who: string,
  ) {
    super({ allowHalfOpen: true });
    // The largest message whose token fits RFC 1961's 16-bit length.
    this.maxPlain = Math.max(1, protector.maxInput(confidential, MAX_TOKEN));
    carrier.on('data', this.onData);
    carrier.once('end', this.onEnd);
    carrier.once('error', this.onError);
    carrier.once('close', this.onClose);
  }

  get remoteAddress(): string | undefined {
    return this.carrier.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.carrier.remotePort;
  }
  get localAddress(): string | undefined {
    return this.carrier.localAddress;
  }
  get localPort(): number | undefined {
    return this.carrier.localPort;
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.carrier.setTimeout?.(ms, callback);
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.carrier.setNoDelay?.(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.carrier.setKeepAlive?.(enable, delay);
    return this;
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      let data = chunk;
      if (this.partial) {
        const n = Math.min(data.length, this.partial.length - this.filled);
        data.copy(this.partial, this.filled, 0, n);
        this.filled += n;
        if (this.filled < this.partial.length) return;
        const whole = this.partial;
        this.partial = undefined;
        this.deliver(this.partialType, whole);
        data = data.subarray(n);
      } else if (this.head.length > 0) {
        data = Buffer.concat([this.head, data]);
        this.head = EMPTY;
      }
      while (data.length > 0 && !this.destroyed) {
        const h = decodeGssHeader(data);
        if (!h) {
          this.head = Buffer.from(data);
          return;
        }
        if (data.length < h.length) {
          this.partial = Buffer.allocUnsafe(h.length);
          this.partialType = h.type;
          this.filled = data.copy(this.partial);
          return;
        }
        this.deliver(h.type, data.subarray(0, h.length));
        data = data.subarray(h.length);
      }
    } catch (err) {
      this.destroy(gssProxyError(err, this.who));
    }
  };

  /** One whole message: its data is pushed, anything else ends the stream with an error. */
  private deliver(type: GssMessage['type'], message: Buffer): void {
    if (type === 'abort') throw new ProxyError('GSSAPI_REJECTED', `${this.who} aborted the GSSAPI-protected connection`);
    if (type !== 'encapsulation') throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a GSS-API ${type} message where encapsulated data was expected`);
    const { data, confidential } = this.protector.unwrap(message.subarray(4));
    if (this.confidential && !confidential) throw new ProxyError('GSSAPI_FAILED', `${this.who} sent an unencrypted message on a confidential connection`);
    if (data.length === 0) return;
    this.bytesRead += data.length;
    if (!this.push(data)) this.carrier.pause();
  }

  override _read(): void {
    this.carrier.resume();
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    const arrived = this.partial ? this.filled : this.head.length;
    if (arrived > 0) {
      this.destroy(new ProxyError('GSSAPI_FAILED', `${this.who} closed the connection inside an encapsulated message (${arrived} octets of it arrived)`));
      return;
    }
    this.push(null);
  };

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  /** The socket closed without a FIN (reset) or after one: only the former is an error here. */
  private readonly onClose = (): void => {
    if (!this.ended && !this.destroyed) this.destroy(Object.assign(new Error(`${this.who}: connection closed`), { code: 'ECONNRESET' }));
  };

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    let ok = true;
    try {
      this.carrier.cork();
      for (let off = 0; off < chunk.length; off += this.maxPlain) {
        const token = this.protector.wrap(chunk.subarray(off, Math.min(chunk.length, off + this.maxPlain)), this.confidential);
        this.carrier.write(encodeGssHeader(MessageType.ENCAPSULATION, token.length));
        ok = this.carrier.write(token);
      }
    } catch (err) {
      callback(gssProxyError(err, this.who));
      return;
    } finally {
      this.carrier.uncork();
    }
    this.bytesWritten += chunk.length;
    if (ok) {
      callback();
      return;
    }
    // The socket's buffer is full: take no more until it drains (or goes away).
    const done = (): void => {
      this.carrier.off('drain', done);
      this.carrier.off('close', done);
      callback(this.carrier.destroyed ? new Error(`${this.who}: connection closed`) : null);
    };
    this.carrier.on('drain', done);
    this.carrier.on('close', done);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.carrier.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.carrier.off('data', this.onData);
    // A failure resets the connection (RST) so the peer cannot take the end for a complete stream.
    if (err) resetOrDestroy(this.carrier);
    else this.carrier.destroy();
    this.protector.dispose();
    callback(err);
  }
}
