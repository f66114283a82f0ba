/** "Test upstream": connect through an upstream (or chain) to a target and report the latency or the exact failure. */
import { endpoint, Endpoint, formatEndpoint } from './address';
import type { Dialer } from './dialer';
import { describeError, ProxyError, Reply, replyForError, replyName } from './errors';
import { ChainDialer } from './upstream/chain';
import { DirectDialer } from './direct';
import { parseChain, redactUrl } from './upstream/url';
import type { CancelSignal } from './cancel';

export interface HealthResult {
  ok: boolean;
  /** The route tested (never with a password). */
  route: string;
  target: string;
  /** Time until the tunnel was open (or until it failed). */
  latencyMs: number;
  /** On failure: the reason, the error code and the SOCKS reply a client would have got. */
  error?: string;
  code?: string;
  reply?: number;
  replyText?: string;
}

export interface HealthOptions {
  timeoutMs?: number;
  signal?: CancelSignal;
}

/** Parses "host:port" / "[v6]:port" into an endpoint. */
export function parseTarget(text: string): Endpoint {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ProxyError('BAD_ADDRESS', `target "${text}" is not host:port`);
  return endpoint(m[1], port);
}

/**
 * Connects through `upstream` (a URL, a list of URLs forming a chain, or a Dialer) to `target` and closes again.
 * Never throws: a bad URL or any failure is reported in the result.
 */
export async function checkUpstream(upstream: string | readonly string[] | Dialer, target: Endpoint | string, options: HealthOptions = {}): Promise<HealthResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const started = performance.now();
  let route = typeof upstream === 'string' ? redactUrl(upstream) : Array.isArray(upstream) ? upstream.map(redactUrl).join(' → ') : (upstream as Dialer).label;
  let targetText = typeof target === 'string' ? target : formatEndpoint(target);
  const failed = (err: unknown): HealthResult => {
    const reply = replyForError(err);
    return {
      ok: false,
      route,
      target: targetText,
      latencyMs: Math.round(performance.now() - started),
      error: describeError(err),
      code: err instanceof ProxyError ? err.code : ((err as NodeJS.ErrnoException).code ?? 'UPSTREAM_FAILED'),
      reply,
      replyText: replyName(reply),
    };
  };
  let dialer: Dialer;
  let dest: Endpoint;
  try {
    dest = typeof target === 'string' ? parseTarget(target) : target;
    targetText = formatEndpoint(dest);
    if (typeof upstream === 'string' || Array.isArray(upstream)) {
      const hops = parseChain(typeof upstream === 'string' ? [upstream] : (upstream as readonly string[]));
      dialer = hops.length === 0 ? new DirectDialer(timeoutMs) : new ChainDialer(hops, { connectTimeoutMs: timeoutMs });
    } else {
      dialer = upstream as Dialer;
    }
    route = dialer.label;
  } catch (err) {
    return failed(err);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const onAbort = (): void => ctl.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const socket = await dialer.dial(dest, { signal: ctl.signal });
    socket.destroy();
    return { ok: true, route, target: targetText, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    if (ctl.signal.aborted && !(err instanceof ProxyError && err.code !== 'DIAL_FAILED')) {
      return failed(new ProxyError('CONNECT_TIMEOUT', `no connection within ${timeoutMs} ms`, Reply.TTL_EXPIRED));
    }
    return failed(err);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
