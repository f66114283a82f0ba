/**
 * RFC 1961 messages, pure encode/decode. After method X'01' both sides exchange
 *
 *   +------+------+------+.......................+
 *   + ver  | mtyp | len  |       token           |
 *   +------+------+------+.......................+
 *   + 0x01 | 0x01 | 0x02 | up to 2^16 - 1 octets |
 *
 * with mtyp 1 for context establishment (section 3.3), 2 for the protection-level subnegotiation
 * (section 4) and 3 for per-message encapsulation (section 5); a refusal is the two octets X'01' X'FF'
 * with no length or token (section 3.4).
 */
import { ProxyError } from '../errors';
import type { Decoded } from '../socks5/protocol';

export const GSS_VERSION = 0x01;

export const MessageType = {
  AUTHENTICATION: 0x01,
  PROTECTION: 0x02,
  ENCAPSULATION: 0x03,
  ABORT: 0xff,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

/**
 * Protection levels (section 4). RFC 1961 names 1-3; 0, "no per-message protection", is what the NEC
 * reference code, Dante and curl send when the context only authenticates, and what this product uses.
 */
export const Protection = {
  NONE: 0x00,
  INTEGRITY: 0x01,
  CONFIDENTIALITY: 0x02,
  SELECTIVE: 0x03,
} as const;
export type ProtectionLevel = (typeof Protection)[keyof typeof Protection];

const protectionNames: Record<number, string> = {
  0x00: 'no per-message protection',
  0x01: 'per-message integrity',
  0x02: 'per-message integrity and confidentiality',
  0x03: 'selective per-message protection',
};

/** The words for levels 0-2 in settings and URLs (Dante's gssapi.enctype uses the same, "clear" for none). */
export const PROTECTION_WORDS = ['none', 'integrity', 'confidentiality'] as const;

/** A level from its word ("clear" as Dante spells none); undefined for anything else. */
export function protectionFromWord(word: string): ProtectionLevel | undefined {
  const w = word.toLowerCase();
  if (w === 'clear') return Protection.NONE;
  const i = (PROTECTION_WORDS as readonly string[]).indexOf(w);
  return i < 0 ? undefined : (i as ProtectionLevel);
}

export function protectionName(level: number): string {
  return protectionNames[level] ?? `unknown protection level 0x${level.toString(16).padStart(2, '0')}`;
}

export type GssMessage = { readonly type: 'abort' } | { readonly type: 'authentication' | 'protection' | 'encapsulation'; readonly token: Buffer };

const typeNames = {
  [MessageType.AUTHENTICATION]: 'authentication',
  [MessageType.PROTECTION]: 'protection',
  [MessageType.ENCAPSULATION]: 'encapsulation',
} as const;

export const MAX_TOKEN = 0xffff;

/** The 4-octet header of a message with a `length`-octet token; throws PROTOCOL_ERROR over 65535 (the length field's limit). */
export function encodeGssHeader(type: Exclude<MessageTypeCode, typeof MessageType.ABORT>, length: number): Buffer {
  if (length > MAX_TOKEN) throw new ProxyError('PROTOCOL_ERROR', `a GSS-API token of ${length} octets does not fit RFC 1961's 16-bit length`);
  const out = Buffer.allocUnsafe(4);
  out[0] = GSS_VERSION;
  out[1] = type;
  out.writeUInt16BE(length, 2);
  return out;
}

/** One message, header and token in one buffer. */
export function encodeGssMessage(type: Exclude<MessageTypeCode, typeof MessageType.ABORT>, token: Buffer): Buffer {
  return Buffer.concat([encodeGssHeader(type, token.length), token]);
}

/** The refusal (section 3.4): X'01' X'FF'. */
export function encodeGssAbort(): Buffer {
  return Buffer.from([GSS_VERSION, MessageType.ABORT]);
}

/**
 * The type and whole length (header included) of the message at the front of `buf`, once its header is
 * there; undefined before. A wrong version or an unknown type throws PROTOCOL_ERROR (nothing valid can follow it).
 */
export function decodeGssHeader(buf: Buffer): { readonly type: GssMessage['type']; readonly length: number } | undefined {
  if (buf.length < 2) return undefined;
  if (buf[0] !== GSS_VERSION) throw new ProxyError('PROTOCOL_ERROR', `GSS-API message version 0x${buf[0].toString(16).padStart(2, '0')} (expected 0x01)`);
  const mtyp = buf[1];
  if (mtyp === MessageType.ABORT) return { type: 'abort', length: 2 };
  const type = typeNames[mtyp as keyof typeof typeNames] as GssMessage['type'] | undefined;
  if (type === undefined || type === 'abort') throw new ProxyError('PROTOCOL_ERROR', `unknown GSS-API message type 0x${mtyp.toString(16).padStart(2, '0')}`);
  if (buf.length < 4) return undefined;
  return { type, length: 4 + buf.readUInt16BE(2) };
}

/** Decodes one message from the front of `buf`; undefined until it is complete (see decodeGssHeader for what throws). */
export function decodeGssMessage(buf: Buffer): Decoded<GssMessage> | undefined {
  const h = decodeGssHeader(buf);
  if (!h || buf.length < h.length) return undefined;
  if (h.type === 'abort') return { value: { type: 'abort' }, length: 2 };
  return { value: { type: h.type, token: Buffer.from(buf.subarray(4, h.length)) }, length: h.length };
}

/** A decoder that accepts only `expected` (or an abort), for readers that know which message comes next. */
export function expectGssMessage(expected: GssMessage['type']): (buf: Buffer) => Decoded<GssMessage> | undefined {
  return (buf) => {
    const d = decodeGssMessage(buf);
    if (d && d.value.type !== 'abort' && d.value.type !== expected) {
      throw new ProxyError('PROTOCOL_ERROR', `expected a GSS-API ${expected} message, got ${d.value.type}`);
    }
    return d;
  };
}
