/**
 * The client half of RFC 1961 after an upstream chose method X'01': context establishment with the
 * user's Kerberos credentials cache (what kinit produced; nothing is stored here), then the
 * protection-level subnegotiation, asking for the level the URL names (section 5 encapsulation after it).
 */
import type { Socket } from 'node:net';
import type { CancelSignal } from '../cancel';
import { ProxyError, Reply } from '../errors';
import { readMessage } from '../upstream/handshake';
import { GssapiSettings, hopLabel, UpstreamHop } from '../upstream/hop';
import { GssEncapsulatedStream } from './encapsulated-stream';
import { gssProxyError } from './errors';
import { gssapi, GSS_C_CONF_FLAG, GSS_C_INTEG_FLAG, GSS_C_MUTUAL_FLAG, GSS_C_REPLAY_FLAG, GSS_C_SEQUENCE_FLAG, GssApi, GssInitiator } from './library';
import { encodeGssAbort, encodeGssMessage, expectGssMessage, MessageType, Protection, PROTECTION_WORDS, protectionName } from './messages';

/** RFC 1961 section 3.1: mutual authentication, replay and sequence detection; integrity and confidentiality so a level can be agreed. */
const FLAGS = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG;

/** The GSS-API target for a hop: "service@host" unless the setting already names a host or a full principal. */
export function gssTarget(service: string, host: string): string {
  return service.includes('@') || service.includes('/') ? service : `${service}@${host}`;
}

/** The library, or GSSAPI_UNAVAILABLE saying why (checked before anything is sent). */
export function requireGssApi(who: string): GssApi {
  const load = gssapi();
  if (!load.ok) throw new ProxyError('GSSAPI_UNAVAILABLE', `GSSAPI for ${who} is not available on this machine: ${load.reason}`, Reply.GENERAL_FAILURE);
  return load.api;
}

/**
 * Runs the exchange on `socket` (method X'01' already chosen) and resolves with the stream the rest of
 * the handshake and the relayed data go through: `socket` itself without per-message protection, else
 * an encapsulating stream over it. Failures are typed GSSAPI_* errors (reply X'01').
 */
export async function gssapiAuthenticate(socket: Socket, hop: UpstreamHop, settings: GssapiSettings, signal: CancelSignal): Promise<Socket> {
  const label = `upstream ${hopLabel(hop)}`;
  const api = requireGssApi(label);
  const target = gssTarget(settings.service, hop.host);
  const asked = settings.protection;
  let initiator: GssInitiator | undefined;
  let keep = false;
  let peerAborted = false;
  try {
    initiator = api.createInitiator(target, FLAGS);
    let input: Buffer | undefined;
    for (let round = 0; ; round++) {
      if (round > 16) throw new ProxyError('GSSAPI_FAILED', `${label} did not complete the GSS-API context in 16 rounds`);
      const step = await initiator.step(input);
      if (signal.aborted) throw signal.reason;
      if (step.token.length > 0) socket.write(encodeGssMessage(MessageType.AUTHENTICATION, step.token));
      if (step.complete) break;
      let reply;
      try {
        reply = await readMessage(socket, expectGssMessage('authentication'), signal, 'GSS-API token');
      } catch (err) {
        // Dante closes without the abort message when it cannot accept the ticket.
        if (err instanceof ProxyError && err.code === 'UPSTREAM_FAILED' && !signal.aborted) {
          peerAborted = true;
          throw new ProxyError('GSSAPI_REJECTED', `${label} closed the connection instead of accepting our Kerberos ticket for ${target} (a service name or key the server does not have?)`, Reply.GENERAL_FAILURE, { cause: err });
        }
        throw err;
      }
      peerAborted = reply.type === 'abort';
      if (reply.type === 'abort') throw new ProxyError('GSSAPI_REJECTED', `${label} refused the Kerberos authentication for service ${target} (RFC 1961 abort)`);
      input = reply.token;
    }
    // Section 4: the level octet goes wrapped for integrity only (conf_req FALSE), both ways.
    socket.write(encodeGssMessage(MessageType.PROTECTION, initiator.wrap(Buffer.from([asked]), false)));
    let answer;
    try {
      answer = await readMessage(socket, expectGssMessage('protection'), signal, 'GSS-API protection level');
    } catch (err) {
      // Dante closes without a word when the level is not in its gssapi.enctype list.
      if (err instanceof ProxyError && err.code === 'UPSTREAM_FAILED' && !signal.aborted) {
        throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} closed the connection instead of answering our request for ${protectionName(asked)}; it may allow other levels (set gssapi-protection in the URL)`, Reply.GENERAL_FAILURE, { cause: err });
      }
      throw err;
    }
    peerAborted = answer.type === 'abort';
    if (answer.type === 'abort') throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} refused ${protectionName(asked)} (RFC 1961 abort)`);
    const octets = initiator.unwrap(answer.token).data;
    if (octets.length !== 1) throw new ProxyError('GSSAPI_FAILED', `${label} sent a protection level of ${octets.length} octets`);
    const level = octets[0];
    if (level === Protection.SELECTIVE || level > Protection.SELECTIVE) {
      throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} insists on ${protectionName(level)} (level ${level}), which is not supported`);
    }
    // The server may answer a lower level (section 4); below what the URL asks for is refused rather than silently accepted.
    if (level < asked) {
      throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} offered only ${protectionName(level)} (level ${level}) where ${protectionName(asked)} was asked for; set gssapi-protection=${PROTECTION_WORDS[level]} to accept it`);
    }
    if (level === Protection.NONE) return socket;
    keep = true;
    // The stream owns the context from here and deletes it when the connection ends (section 6).
    return new GssEncapsulatedStream(socket, initiator, level === Protection.CONFIDENTIALITY, label) as unknown as Socket;
  } catch (err) {
    // Section 3.4: a client whose GSS-API call failed tells the server with the abort message before closing.
    if (!peerAborted && !socket.destroyed) socket.write(encodeGssAbort());
    throw gssProxyError(err, `${label} (service ${target})`);
  } finally {
    if (!keep) initiator?.dispose();
  }
}
