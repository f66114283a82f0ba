/**
 * The server half of RFC 1961 after this listener chose method X'01': gss_accept_sec_context with the
 * configured keytab until the context is complete (section 3), then the protection-level subnegotiation
 * (section 4): the level the client asks for is granted (selective protection, level 3, as
 * confidentiality); with integrity or confidentiality the caller encapsulates the rest (section 5).
 */
import { ProxyError } from '../errors';
import { gssProxyError } from './errors';
import type { GssAcceptor, GssApi, Protector } from './library';
import { encodeGssMessage, GssMessage, MessageType, Protection, ProtectionLevel, protectionName } from './messages';

export interface GssServerResult {
  /** Bytes to send back (a token, or the protection answer); empty when there is nothing to send. */
  readonly reply: Buffer;
  /** Set once authentication is complete: the client's principal, e.g. alice@EXAMPLE.COM. */
  readonly principal?: string;
  /** Set when the subnegotiation is done too: what the client asked for and what it was granted. */
  readonly requested?: number;
  readonly agreed?: ProtectionLevel;
}

const EMPTY = Buffer.alloc(0);
const MAX_ROUNDS = 16;

export class GssServerHandshake {
  private readonly acceptor: GssAcceptor;
  private phase: 'context' | 'protection' | 'done' = 'context';
  private rounds = 0;
  private kept = false;

  /** Throws a typed GSSAPI_* error when the keytab cannot be used (so the method is not chosen). */
  constructor(api: GssApi, keytab: string | undefined, private readonly who: string) {
    try {
      this.acceptor = api.createAcceptor(keytab);
    } catch (err) {
      throw gssProxyError(err, `${who} (keytab ${keytab ?? 'default'})`);
    }
  }

  get principal(): string | undefined {
    return this.acceptor.principal;
  }

  /**
   * One client message. Resolves with what to send; rejects with a typed error after which the caller
   * sends the abort message and closes (section 3.4).
   */
  async handle(msg: GssMessage): Promise<GssServerResult> {
    if (msg.type === 'abort') throw new ProxyError('GSSAPI_REJECTED', `${this.who} aborted the GSSAPI exchange`);
    if (this.phase === 'context') {
      if (msg.type !== 'authentication') throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a GSS-API ${msg.type} message before the context was established`);
      if (++this.rounds > MAX_ROUNDS) throw new ProxyError('GSSAPI_FAILED', `${this.who} did not complete the GSS-API context in ${MAX_ROUNDS} rounds`);
      let step;
      try {
        step = await this.acceptor.step(msg.token);
      } catch (err) {
        throw gssProxyError(err, this.who);
      }
      const reply = step.token.length > 0 ? encodeGssMessage(MessageType.AUTHENTICATION, step.token) : EMPTY;
      if (!step.complete) return { reply };
      this.phase = 'protection';
      return { reply, principal: this.acceptor.principal ?? 'unknown principal' };
    }
    if (this.phase === 'protection') {
      if (msg.type !== 'protection') throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a GSS-API ${msg.type} message where the protection level was expected`);
      let level: Buffer;
      try {
        level = this.acceptor.unwrap(msg.token).data;
      } catch (err) {
        throw gssProxyError(err, this.who);
      }
      if (level.length !== 1) throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a protection level of ${level.length} octets`);
      const requested = level[0];
      const agreed = (requested >= Protection.CONFIDENTIALITY ? Protection.CONFIDENTIALITY : requested) as ProtectionLevel;
      let answer: Buffer;
      try {
        answer = this.acceptor.wrap(Buffer.from([agreed]), false);
      } catch (err) {
        throw gssProxyError(err, this.who);
      }
      this.phase = 'done';
      return { reply: encodeGssMessage(MessageType.PROTECTION, answer), principal: this.principal, requested, agreed };
    }
    throw new ProxyError('PROTOCOL_ERROR', `${this.who} sent a GSS-API ${msg.type} message after the subnegotiation`);
  }

  /** The context, for the stream that encapsulates the session (it then owns it and deletes it at the end). */
  takeProtector(): Protector {
    this.kept = true;
    return this.acceptor;
  }

  /** Frees the context unless an encapsulating stream took it. */
  dispose(): void {
    if (!this.kept) this.acceptor.dispose();
  }
}

/** For the log line: what the client asked for against what it got. */
export function describeLevels(requested: number, agreed: number): string {
  return requested === agreed ? protectionName(agreed) : `${protectionName(requested)} asked for; granted ${protectionName(agreed)}`;
}
