import { createHash, timingSafeEqual } from 'node:crypto';

export interface UserCredentials {
  username: string;
  password: string;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Checks a username/password pair without leaking, through timing, how much of either matched:
 * both sides are hashed to equal length and compared with timingSafeEqual, and every user is checked.
 */
export function checkCredentials(users: readonly UserCredentials[], username: string, password: string): boolean {
  const u = digest(username);
  const p = digest(password);
  let ok = false;
  for (const user of users) {
    const userOk = timingSafeEqual(u, digest(user.username));
    const passOk = timingSafeEqual(p, digest(user.password));
    ok = (userOk && passOk) || ok;
  }
  return ok;
}

/** The options that decide who must authenticate. */
export interface AuthOptions {
  readonly users: readonly UserCredentials[];
  readonly allowNoAuth: boolean;
  /** GSSAPI is accepted (SOCKS5 only): a listener with it requires authentication like one with users. */
  readonly gssapi?: object;
}

/**
 * Who must authenticate, decided here for every front end: with users configured, credentials are checked
 * (SOCKS5 username/password, HTTP Basic); a client without them is let in only when there are no users
 * and no GSSAPI, or allowNoAuth is set (SOCKS4, which cannot carry a password, is that case).
 */
export function credentialsChecked(options: AuthOptions): boolean {
  return options.users.length > 0;
}

export function anonymousAllowed(options: AuthOptions): boolean {
  return (options.users.length === 0 && options.gssapi === undefined) || options.allowNoAuth;
}
