/** The client half of SOCKS5 (RFC 1928) with username/password (RFC 1929), over an already open stream. */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../address';
import { formatEndpoint } from '../address';
import { ProxyError, Reply, ReplyCode, replyName } from '../errors';
import { CommandName, decodeMethodSelection, decodeReply, decodeUserPassReply, encodeGreeting, encodeRequest, encodeUserPass, Method } from '../socks5/protocol';
import { gssapiAuthenticate, requireGssApi } from '../gssapi/client';
import { readMessage, resolveHere } from './handshake';
import type { HandshakeResult } from './driver';
import { hopLabel, UpstreamHop } from './hop';
import type { CancelSignal } from '../cancel';

const commandText: Record<CommandName, string> = { connect: 'CONNECT', bind: 'BIND', 'udp-associate': 'UDP ASSOCIATE' };

/**
 * Negotiates a method and authenticates; resolves with the stream to go on with (the socket, or after
 * GSSAPI with protection the stream that encapsulates it). Wrong credentials → UPSTREAM_AUTH_FAILED,
 * a GSSAPI failure → its GSSAPI_* code (X'01' both).
 */
export async function socks5Authenticate(socket: Socket, hop: UpstreamHop, signal: CancelSignal): Promise<Socket> {
  const label = hopLabel(hop);
  const creds = hop.username !== undefined && hop.password !== undefined ? { username: hop.username, password: hop.password } : undefined;
  // With ?gssapi the hop must authenticate (and, by Kerberos mutual authentication, prove it is the proxy named): no X'00'.
  if (hop.gssapi) requireGssApi(`upstream ${label}`);
  const methods: number[] = hop.gssapi ? [Method.GSSAPI] : [Method.NO_AUTH];
  if (creds) methods.push(Method.USERNAME_PASSWORD);
  socket.write(encodeGreeting(methods));
  const method = await readMessage(socket, decodeMethodSelection, signal, 'SOCKS5 method selection');
  if (method === Method.GSSAPI && hop.gssapi) return gssapiAuthenticate(socket, hop, hop.gssapi, signal);
  if (method === Method.NO_AUTH && !hop.gssapi) return socket;
  if (method === Method.USERNAME_PASSWORD && creds) {
    socket.write(encodeUserPass(creds));
    const ok = await readMessage(socket, decodeUserPassReply, signal, 'username/password status');
    if (!ok) throw new ProxyError('UPSTREAM_AUTH_FAILED', `upstream ${label} rejected the username/password for user "${creds.username}"`, Reply.GENERAL_FAILURE);
    return socket;
  }
  if (method === Method.NO_ACCEPTABLE) {
    const offered = hop.gssapi ? (creds ? 'GSSAPI nor username/password' : 'GSSAPI') : creds ? 'no-authentication nor username/password' : undefined;
    const why = offered === 'GSSAPI' ? 'does not accept GSSAPI' : offered ? `accepts neither ${offered}` : 'requires authentication (add user:password to the URL)';
    throw new ProxyError('UPSTREAM_AUTH_FAILED', `upstream ${label} ${why}`, Reply.GENERAL_FAILURE);
  }
  throw new ProxyError('UPSTREAM_FAILED', `upstream ${label} chose method 0x${method.toString(16).padStart(2, '0')}, which we did not offer`, Reply.GENERAL_FAILURE);
}

/** Reads a SOCKS5 reply; a non-zero code becomes an UPSTREAM_FAILED error carrying that code. */
export async function readSocks5Reply(socket: Duplex, hop: UpstreamHop, signal: CancelSignal, what: string): Promise<Endpoint> {
  const reply = await readMessage(socket, decodeReply, signal, `SOCKS5 reply to ${what}`);
  if (reply.reply !== Reply.SUCCEEDED) {
    const code = (reply.reply >= 0x01 && reply.reply <= 0x08 ? reply.reply : Reply.GENERAL_FAILURE) as ReplyCode;
    throw new ProxyError('UPSTREAM_FAILED', `upstream ${hopLabel(hop)} answered ${what} with 0x${reply.reply.toString(16).padStart(2, '0')} (${replyName(reply.reply)})`, code);
  }
  return reply.bound;
}

/**
 * Asks the upstream to run `command` for `destination`; resolves with BND.ADDR/BND.PORT of the first reply,
 * and with the stream to use when GSSAPI protection now encapsulates the socket.
 * socks5:// resolves names here first; socks5h:// passes them on.
 */
export async function socks5Handshake(socket: Socket, hop: UpstreamHop, command: CommandName, destination: Endpoint, signal: CancelSignal): Promise<Endpoint | HandshakeResult> {
  const target = hop.remoteDns ? destination : await resolveHere(destination);
  const stream = await socks5Authenticate(socket, hop, signal);
  if (stream !== socket && command === 'udp-associate') {
    stream.destroy();
    throw new ProxyError('BAD_COMMAND', `UDP through ${hopLabel(hop)} would need GSSAPI-protected datagrams, which are not supported (use gssapi-protection=none)`, Reply.COMMAND_NOT_SUPPORTED);
  }
  stream.write(encodeRequest({ command, destination: target }));
  const bound = await readSocks5Reply(stream, hop, signal, `${commandText[command]} ${formatEndpoint(destination)}`);
  return stream === socket ? bound : { bound, socket: stream };
}
