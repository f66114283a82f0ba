/**
 * The client half of RFC 1961 after an upstream chose method X'01': context establishment with the
 * user's Kerberos credentials cache (what kinit produced; nothing is stored here), then the
 * protection-level subnegotiation, asking for no per-message protection.
 */
import type { Socket } from 'node:net';
import type { CancelSignal } from '../cancel';
import { ProxyError, Reply } from '../errors';
import { readMessage } from '../upstream/handshake';
import { hopLabel, UpstreamHop } from '../upstream/hop';
import { gssProxyError } from './errors';
import { gssapi, GSS_C_CONF_FLAG, GSS_C_INTEG_FLAG, GSS_C_MUTUAL_FLAG, GSS_C_REPLAY_FLAG, GSS_C_SEQUENCE_FLAG, GssApi, GssInitiator } from './library';
import { encodeGssAbort, encodeGssMessage, expectGssMessage, MessageType, Protection, protectionName } from './messages';

export const DEFAULT_SERVICE = 'rcmd';

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

/** Runs the exchange on `socket` (method X'01' already chosen). Failures are typed GSSAPI_* errors (reply X'01'). */
export async function gssapiAuthenticate(socket: Socket, hop: UpstreamHop, service: string, signal: CancelSignal): Promise<void> {
  const label = `upstream ${hopLabel(hop)}`;
  const api = requireGssApi(label);
  const target = gssTarget(service, hop.host);
  let initiator: GssInitiator | undefined;
  let peerAborted = false;
  try {
    initiator = api.createInitiator(target, FLAGS);
    let input: Buffer | undefined;
    for (let round = 0; ; round++) {
      if (round > 16) throw new ProxyError('GSSAPI_FAILED', `${label} did not complete the GSS-API context in 16 rounds`);
      const step = await initiator.step(input);
      if (signal.aborted) throw signal.reason;
      if (step.token.length > 0) {
        socket.write(encodeGssMessage(MessageType.AUTHENTICATION, step.token));
      }
      if (step.complete) break;
      const reply = await readMessage(socket, expectGssMessage('authentication'), signal, 'GSS-API token');
      peerAborted = reply.type === 'abort';
      if (reply.type === 'abort') throw new ProxyError('GSSAPI_REJECTED', `${label} refused the Kerberos authentication for service ${target} (RFC 1961 abort)`);
      input = reply.token;
    }
    // Section 4: the level octet goes wrapped for integrity only (conf_req FALSE), both ways.
    socket.write(encodeGssMessage(MessageType.PROTECTION, initiator.wrap(Buffer.from([Protection.NONE]), false)));
    const answer = await readMessage(socket, expectGssMessage('protection'), signal, 'GSS-API protection level');
    peerAborted = answer.type === 'abort';
    if (answer.type === 'abort') throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} refused ${protectionName(Protection.NONE)} (RFC 1961 abort)`);
    const level = initiator.unwrap(answer.token).data;
    if (level.length !== 1) throw new ProxyError('GSSAPI_FAILED', `${label} sent a protection level of ${level.length} octets`);
    if (level[0] !== Protection.NONE) {
      throw new ProxyError('GSSAPI_PROTECTION_REFUSED', `${label} insists on ${protectionName(level[0])} (level ${level[0]}); only ${protectionName(Protection.NONE)} is supported`);
    }
  } catch (err) {
    // Section 3.4: a client whose GSS-API call failed tells the server with the abort message before closing.
    if (!peerAborted && !socket.destroyed) socket.write(encodeGssAbort());
    throw gssProxyError(err, `${label} (service ${target})`);
  } finally {
    // No per-message protection: the context has done its work (section 6 ties its end to the connection's).
    initiator?.dispose();
  }
}
