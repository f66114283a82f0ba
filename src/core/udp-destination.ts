/**
 * Which UDP destinations a relay can send to. RFC 1928 section 7: the relay "will drop datagrams it cannot
 * or will not relay"; a datagram is client input, so nothing in it may reach dgram.send unchecked (a port of
 * 0 makes dgram.send throw, and a throw there would end the process).
 */
import { isIP } from 'node:net';
import { Endpoint, formatEndpoint } from './address';

// A DNS label (RFC 1123 letters, digits and inner hyphens; underscore as in service names), 1..63 bytes.
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** True for a name getaddrinfo can be asked about: ASCII labels, at most 253 bytes without the final dot. */
export function isHostName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  for (const label of bare.split('.')) if (!LABEL.test(label)) return false;
  return true;
}

/** Why a datagram cannot be sent to `destination`, or undefined when it can be tried. */
export function undeliverable(destination: Endpoint): string | undefined {
  const { port, host } = destination;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `destination port ${port}`;
  switch (destination.type) {
    case 'ipv4':
      return host === '0.0.0.0' ? 'unspecified destination address' : undefined;
    case 'ipv6':
      return host === '::' ? 'unspecified destination address' : undefined;
    case 'domain':
      // An address literal sent as a name (some clients do) is fine: the lookup returns it as is.
      return isHostName(host) || isIP(host) !== 0 ? undefined : 'not a valid host name';
  }
}

/** `host:port` for a log line, with control and non-ASCII characters escaped (the name is client input). */
export function printableEndpoint(ep: Endpoint): string {
  return formatEndpoint(ep).replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
