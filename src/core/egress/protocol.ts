/**
 * The egress tunnel's wire contract, shared by the endpoint (on the remote host, next to the relay) and
 * the agent (on the user's computer). Pure: names, paths and the proofs, no I/O.
 *
 * 1. The agent asks the endpoint for a single-use challenge: GET <base>/socks-relay/egress/v1/challenge.
 * 2. It upgrades GET <base>/socks-relay/egress/v1, to `socks-relay-h2` (HTTP/2 directly on the connection)
 *    or, where only WebSocket gets through, to a WebSocket with subprotocol `socks-relay-egress.1`,
 *    sending the challenge, a nonce of its own and HMAC(secret, "agent", challenge, nonce). A wrong or
 *    missing proof gets 401; a challenge is good once, so a captured upgrade cannot be replayed.
 * 3. The 101 answer carries HMAC(secret, "endpoint", nonce, challenge): the agent serves nothing to an
 *    endpoint that cannot show it knows the secret too (a program that took over the forwarded port).
 * 4. Over the WebSocket the endpoint is the HTTP/2 client and the agent the server: one CONNECT stream
 *    per session (RFC 9113 §8.5), `:authority` = the destination; the agent dials it from its own network
 *    and answers 200 with the bound address, or an error status with the SOCKS reply code.
 * The secret itself never crosses the wire.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatEndpoint } from '../address';
import { parseConnectTarget } from '../http/parse';

export const EGRESS_PATH = 'socks-relay/egress/v1';
export const CHALLENGE_PATH = `${EGRESS_PATH}/challenge`;
export const EGRESS_SUBPROTOCOL = 'socks-relay-egress.1';
/**
 * The upgrade token for HTTP/2 straight on the upgraded connection (no WebSocket): tried first, where the
 * forward passes TCP through (VS Code's port forwarding, ssh -L); forwarders that carry only WebSocket
 * (code-server's /proxy/PORT/) refuse it, and the agent then upgrades to a WebSocket instead.
 */
export const RAW_UPGRADE = 'socks-relay-h2';
/** Where the agent and the headless relay read the per-run secret. */
export const EGRESS_TOKEN_ENV = 'SOCKS_RELAY_EGRESS_TOKEN';

export const HEADER = {
  challenge: 'x-socks-relay-challenge',
  nonce: 'x-socks-relay-nonce',
  proof: 'x-socks-relay-proof',
  /** On a CONNECT answer: the SOCKS reply code (RFC 1928 §6) of the agent's dial. */
  reply: 'x-socks-relay-reply',
  /** On a CONNECT answer: the agent's local address of the dialled connection (BND.ADDR/PORT). */
  bound: 'x-socks-relay-bound',
  /** On a failed CONNECT answer: why, in words (no secrets: the agent's own dial error). */
  error: 'x-socks-relay-error',
} as const;

/** A fresh random value for secrets, challenges and nonces (base64url, 32 bytes). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A secret worth using: at least 16 characters of the base64url alphabet (what randomToken makes). */
export function validToken(token: string | undefined): token is string {
  return token !== undefined && /^[A-Za-z0-9_-]{16,512}$/.test(token);
}

function mac(secret: string, ...parts: string[]): string {
  return createHmac('sha256', secret).update(parts.join('\n')).digest('base64url');
}

export function agentProof(secret: string, challenge: string, nonce: string): string {
  return mac(secret, 'agent', challenge, nonce);
}

export function endpointProof(secret: string, nonce: string, challenge: string): string {
  return mac(secret, 'endpoint', nonce, challenge);
}

/** Compares a received proof with the expected one in constant time. */
export function proofMatches(expected: string, received: string | undefined): boolean {
  if (received === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(received);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The agent's URLs from the base address the user has (`http://127.0.0.1:PORT/`, code-server's
 * `http://HOST/proxy/PORT/`, or `https://…`): the challenge over HTTP(S), the tunnel over ws(s).
 */
export function agentUrls(base: string): { challenge: URL; tunnel: URL } {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`"${base}" is not a URL (expected e.g. http://127.0.0.1:PORT/)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`"${base}" must be an http:// or https:// address`);
  if (url.username !== '' || url.password !== '') throw new TypeError('the address must not contain credentials: the secret comes from ' + EGRESS_TOKEN_ENV);
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  const challenge = new URL(CHALLENGE_PATH, url);
  const tunnel = new URL(EGRESS_PATH, url);
  tunnel.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return { challenge, tunnel };
}

/**
 * A CONNECT stream's `:authority` is the authority-form of HTTP/1.1 CONNECT (RFC 9113 §8.5): written and
 * read by the same functions as the HTTP proxy's CONNECT target.
 */
export function authorityOf(host: string, port: number): string {
  return formatEndpoint({ host, port });
}

/** Parses a CONNECT :authority (`host:port`, `[v6]:port`); undefined when it is not one. */
export function parseAuthority(authority: string | undefined): { host: string; port: number } | undefined {
  return authority === undefined ? undefined : parseConnectTarget(authority);
}
