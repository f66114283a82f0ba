/**
 * How a session ended and which way it went, as data: the UI and the log lines render from these, so
 * nothing downstream has to read an error's message to learn its code, its hop or its upstream.
 */
import { ProxyError, Reply } from './errors';

export type OutcomeKind = 'ok' | 'refused' | 'failed' | 'closed';

/** A hop of a chain upstream, 0 for the first; `label` is its redacted URL. */
export interface FailedHop {
  readonly index: number;
  readonly label: string;
}

/** Where along a route a failure happened: the chain hop, and the failover member whose failure was the last. */
export interface FailurePlace {
  readonly hop?: FailedHop;
  readonly member?: string;
}

/** What the pipeline knows about a failure before a front end renders it: its kind, code and place. */
export interface FailureCause extends FailurePlace {
  readonly kind: 'refused' | 'failed';
  /** A ProxyErrorCode, or the system's code (ECONNREFUSED, …). */
  readonly code: string;
}

export interface SessionOutcome extends FailurePlace {
  readonly kind: OutcomeKind;
  /** 'OK', 'CLOSED' (ended without a typed failure), a ProxyErrorCode or a system error code. */
  readonly code: string;
  /** The reply the client got (SOCKS5/SOCKS4 code or HTTP status), when one was sent. */
  readonly reply?: number;
  /** The rendered text, as the log line and SessionInfo.outcome show it. */
  readonly message: string;
}

export const OK_OUTCOME: SessionOutcome = { kind: 'ok', code: 'OK', message: 'ok' };

// Places ride beside the error rather than in its message or its class: system errors (ECONNRESET from a
// hop's socket) are passed on as they are, and a failover rethrows a new error for the same place.
const places = new WeakMap<object, FailurePlace>();

/** Records where `err` happened; a place already recorded (deeper in the route) wins, field by field. */
export function markFailure(err: unknown, place: FailurePlace): void {
  if (typeof err !== 'object' || err === null) return;
  const known = places.get(err);
  places.set(err, { hop: known?.hop ?? place.hop, member: known?.member ?? place.member });
}

export function failurePlace(err: unknown): FailurePlace | undefined {
  return typeof err === 'object' && err !== null ? places.get(err) : undefined;
}

/** The code of any thrown value: ProxyError's, else the system's errno code, else `fallback`. */
export function errorCode(err: unknown, fallback = 'DIAL_FAILED'): string {
  if (err instanceof ProxyError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : fallback;
}

/** A failure's cause from what was thrown. */
export function failureOf(err: unknown, kind: FailureCause['kind'] = 'failed'): FailureCause {
  const place = failurePlace(err);
  return { kind, code: errorCode(err), ...(place?.hop ? { hop: place.hop } : {}), ...(place?.member !== undefined ? { member: place.member } : {}) };
}

/** Replies that mean "could not reach the next address": from a middle hop of a chain, the next hop is the one that failed. */
const reachReplies: ReadonlySet<number> = new Set([Reply.CONNECTION_REFUSED, Reply.HOST_UNREACHABLE, Reply.NETWORK_UNREACHABLE, Reply.TTL_EXPIRED]);

export function meansUnreachable(err: unknown): boolean {
  return err instanceof ProxyError && err.code === 'UPSTREAM_FAILED' && reachReplies.has(err.reply);
}
