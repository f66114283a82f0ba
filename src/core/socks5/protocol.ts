/**
 * SOCKS5 (RFC 1928) and username/password (RFC 1929) messages as pure functions.
 * Decoders take the bytes received so far and return undefined when the message is not complete yet,
 * the decoded value and its length when it is, or throw a ProxyError naming the reply to send.
 */
import { Endpoint, encodedAddressLength, readAddress, writeAddress } from '../address';
import { ProxyError, Reply, ReplyCode } from '../errors';

export const SOCKS_VERSION = 0x05;
export const AUTH_VERSION = 0x01;

export const Method = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERNAME_PASSWORD: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

export const Command = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const;
export type CommandName = 'connect' | 'bind' | 'udp-associate';

const commandNames: Record<number, CommandName> = {
  [Command.CONNECT]: 'connect',
  [Command.BIND]: 'bind',
  [Command.UDP_ASSOCIATE]: 'udp-associate',
};

export interface Decoded<T> {
  value: T;
  /** Bytes consumed; whatever follows belongs to the next message. */
  length: number;
}

function checkVersion(buf: Buffer, expected: number, what: string): void {
  if (buf.length > 0 && buf[0] !== expected) {
    throw new ProxyError('BAD_VERSION', `${what}: version 0x${buf[0].toString(16).padStart(2, '0')} where 0x0${expected} was expected`, Reply.GENERAL_FAILURE);
  }
}

// ---- method negotiation ----

/** VER NMETHODS METHODS... (client → server). */
export function decodeGreeting(buf: Buffer): Decoded<number[]> | undefined {
  checkVersion(buf, SOCKS_VERSION, 'greeting');
  if (buf.length < 2) return undefined;
  const n = buf[1];
  if (buf.length < 2 + n) return undefined;
  return { value: [...buf.subarray(2, 2 + n)], length: 2 + n };
}

export function encodeGreeting(methods: readonly number[]): Buffer {
  return Buffer.from([SOCKS_VERSION, methods.length, ...methods]);
}

/** VER METHOD (server → client). */
export function encodeMethodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

export function decodeMethodSelection(buf: Buffer): Decoded<number> | undefined {
  checkVersion(buf, SOCKS_VERSION, 'method selection');
  if (buf.length < 2) return undefined;
  return { value: buf[1], length: 2 };
}

// ---- RFC 1929 username/password ----

export interface Credentials {
  username: string;
  password: string;
}

/** VER ULEN UNAME PLEN PASSWD (client → server). */
export function decodeUserPass(buf: Buffer): Decoded<Credentials> | undefined {
  if (buf.length > 0 && buf[0] !== AUTH_VERSION) {
    throw new ProxyError('BAD_AUTH_VERSION', `username/password: version 0x${buf[0].toString(16).padStart(2, '0')} where 0x01 was expected`);
  }
  if (buf.length < 2) return undefined;
  const ulen = buf[1];
  if (buf.length < 2 + ulen + 1) return undefined;
  const plen = buf[2 + ulen];
  const end = 2 + ulen + 1 + plen;
  if (buf.length < end) return undefined;
  return {
    value: { username: buf.toString('utf8', 2, 2 + ulen), password: buf.toString('utf8', 3 + ulen, end) },
    length: end,
  };
}

export function encodeUserPass(creds: Credentials): Buffer {
  const u = Buffer.from(creds.username, 'utf8');
  const p = Buffer.from(creds.password, 'utf8');
  if (u.length < 1 || u.length > 255 || p.length < 1 || p.length > 255) {
    throw new ProxyError('BAD_UPSTREAM_URL', 'username and password must each be 1 to 255 bytes (RFC 1929)');
  }
  return Buffer.concat([Buffer.from([AUTH_VERSION, u.length]), u, Buffer.from([p.length]), p]);
}

/** VER STATUS: X'00' success, anything else failure. */
export function encodeUserPassReply(success: boolean): Buffer {
  return Buffer.from([AUTH_VERSION, success ? 0x00 : 0x01]);
}

export function decodeUserPassReply(buf: Buffer): Decoded<boolean> | undefined {
  if (buf.length < 2) return undefined;
  return { value: buf[1] === 0x00, length: 2 };
}

// ---- requests and replies ----

export interface Request {
  command: CommandName;
  destination: Endpoint;
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT. Unknown CMD → X'07', unknown ATYP → X'08'. */
export function decodeRequest(buf: Buffer): Decoded<Request> | undefined {
  checkVersion(buf, SOCKS_VERSION, 'request');
  if (buf.length < 2) return undefined;
  const command = commandNames[buf[1]];
  if (command === undefined) {
    throw new ProxyError('BAD_COMMAND', `unknown command 0x${buf[1].toString(16).padStart(2, '0')}`, Reply.COMMAND_NOT_SUPPORTED);
  }
  if (buf.length < 4) return undefined;
  const addr = readAddress(buf, 3);
  if (addr === undefined) return undefined;
  return { value: { command, destination: addr.endpoint }, length: addr.end };
}

const commandCodes: Record<CommandName, number> = { connect: Command.CONNECT, bind: Command.BIND, 'udp-associate': Command.UDP_ASSOCIATE };

export function encodeRequest(req: Request): Buffer {
  const out = Buffer.allocUnsafe(3 + encodedAddressLength(req.destination));
  out[0] = SOCKS_VERSION;
  out[1] = commandCodes[req.command];
  out[2] = 0x00;
  writeAddress(req.destination, out, 3);
  return out;
}

/** VER REP RSV ATYP BND.ADDR BND.PORT. */
export function encodeReply(reply: ReplyCode, bound: Endpoint): Buffer {
  const out = Buffer.allocUnsafe(3 + encodedAddressLength(bound));
  out[0] = SOCKS_VERSION;
  out[1] = reply;
  out[2] = 0x00;
  writeAddress(bound, out, 3);
  return out;
}

export interface ReplyMessage {
  reply: number;
  bound: Endpoint;
}

export function decodeReply(buf: Buffer): Decoded<ReplyMessage> | undefined {
  checkVersion(buf, SOCKS_VERSION, 'reply');
  if (buf.length < 4) return undefined;
  const addr = readAddress(buf, 3);
  if (addr === undefined) return undefined;
  return { value: { reply: buf[1], bound: addr.endpoint }, length: addr.end };
}

// ---- UDP ----

export interface UdpDatagram {
  frag: number;
  destination: Endpoint;
  payload: Buffer;
}

/** RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. A datagram is whole or it is invalid: throws when truncated. */
export function decodeUdpHeader(buf: Buffer): UdpDatagram {
  if (buf.length < 4) throw new ProxyError('PROTOCOL_ERROR', `UDP datagram of ${buf.length} bytes is shorter than its header`);
  const addr = readAddress(buf, 3);
  if (addr === undefined) throw new ProxyError('PROTOCOL_ERROR', 'UDP datagram truncated inside its address');
  // subarray: the payload shares the datagram's memory, no copy.
  return { frag: buf[2], destination: addr.endpoint, payload: buf.subarray(addr.end) };
}

export function encodeUdpHeader(source: Endpoint): Buffer {
  const out = Buffer.allocUnsafe(3 + encodedAddressLength(source));
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  writeAddress(source, out, 3);
  return out;
}
