/** One parsed upstream hop: plain data (no driver object), so it compares, logs and serialises as it is. */
import { formatEndpoint } from '../address';

export interface TlsSettings {
  /** false with ?insecure=1: the upstream's certificate is not verified. */
  rejectUnauthorized: boolean;
  /** PEM file with the CA to trust (?ca=/path), in addition to the system store. */
  caFile?: string;
  /** SNI and certificate name (?servername=…); defaults to the host when it is a name. */
  servername?: string;
}

/** GSSAPI (RFC 1961) towards this hop, with the credentials kinit left in the user's cache. */
export interface GssapiSettings {
  /** "rcmd" (becomes rcmd@host), "name@host", or a Kerberos principal "name/host[@REALM]". */
  service: string;
  /** The RFC 1961 level asked for: 0 none, 1 integrity, 2 confidentiality (the default, what Dante's client asks). */
  protection: 0 | 1 | 2;
}

/** RFC 1961 and Dante's default service name. */
export const DEFAULT_GSSAPI_SERVICE = 'rcmd';
/** Confidentiality: a Dante server grants what is asked and by default refuses no protection at all. */
export const DEFAULT_GSSAPI_PROTECTION = 2;

/**
 * The hop drivers' names, one key per driver. Each driver module adds its own key
 * (`declare module '../hop' { interface HopKinds { socks5: true } }`), so UpstreamHop.kind is a union of
 * literals that `spec.kind === 'direct'` narrows, and no closed list of kinds lives here.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging in each driver module
export interface HopKinds {}
export type HopKind = keyof HopKinds;

/** One proxy to pass through. */
export interface UpstreamHop {
  /** The name of the driver that speaks to it (socks5, socks4, http or a registered driver's); never "direct". */
  readonly kind: HopKind;
  /** The URL scheme, lower case; the registry maps it to the driver. */
  readonly scheme: string;
  /** Bare host: a name or an IP literal without brackets. */
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** True when destination names are sent to the upstream unresolved (socks5h, socks4a, http, https). */
  readonly remoteDns: boolean;
  /** Set for schemes that run over TLS (https://). */
  readonly tls?: TlsSettings;
  /** Set with ?gssapi: offer GSSAPI (and not "no authentication") to this SOCKS5 hop. */
  readonly gssapi?: GssapiSettings;
}

/** A label for logs and the UI: scheme, user (never the password), host and port. */
export function hopLabel(hop: UpstreamHop): string {
  const user = hop.username !== undefined ? `${encodeURIComponent(hop.username)}@` : '';
  return `${hop.scheme}://${user}${formatEndpoint({ host: hop.host, port: hop.port })}`;
}
