/**
 * RFC 1961 section 5: once integrity or confidentiality is agreed, every byte after the subnegotiation
 * (the SOCKS request, the reply and all relayed data) travels as `01 03 len gss_wrap(data)` messages.
 * This Duplex sits on the raw socket and carries plaintext: writes are wrapped in messages of at most
 * 65535 octets, received messages are unwrapped and pushed, and the socket is paused while the reader
 * is full, so backpressure passes through in both directions and at most one message is buffered.
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
import { decodeGssMessage, encodeGssMessage, MAX_TOKEN, MessageType } from './messages';

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
  private buf: Buffer = EMPTY;
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
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      for (;;) {
        const m = decodeGssMessage(this.buf);
        if (!m) return;
        this.buf = m.length === this.buf.length ? EMPTY : this.buf.subarray(m.length);
        if (m.value.type === 'abort') throw new ProxyError('GSSAPI_REJECTED', `${this.who} aborted the GSSAPI-protected connection`);
        if (m.value.type !== 'encapsulation') throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a GSS-API ${m.value.type} message where encapsulated data was expected`);
        const { data, confidential } = this.protector.unwrap(m.value.token);
        if (this.confidential && !confidential) throw new ProxyError('GSSAPI_FAILED', `${this.who} sent an unencrypted message on a confidential connection`);
        if (data.length === 0) continue;
        this.bytesRead += data.length;
        if (!this.push(data)) this.carrier.pause();
      }
    } catch (err) {
      this.destroy(gssProxyError(err, this.who));
    }
  };

  override _read(): void {
    this.carrier.resume();
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    if (this.buf.length > 0) {
      this.destroy(new ProxyError('GSSAPI_FAILED', `${this.who} closed the connection inside an encapsulated message (${this.buf.length} octets of it arrived)`));
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
      for (let off = 0; off < chunk.length; off += this.maxPlain) {
        const piece = chunk.subarray(off, Math.min(chunk.length, off + this.maxPlain));
        ok = this.carrier.write(encodeGssMessage(MessageType.ENCAPSULATION, this.protector.wrap(piece, this.confidential)));
      }
    } catch (err) {
      callback(gssProxyError(err, this.who));
      return;
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
