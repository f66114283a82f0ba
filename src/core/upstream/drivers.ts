/**
 * The hop drivers by URL scheme. URL parsing, chain building, health checks and the UI ask this registry
 * what a scheme is; adding an upstream kind is one driver module plus one registerHopDriver line below.
 */
import { ProxyError } from '../errors';
import type { HopDriver } from './driver';
import { httpConnectDriver } from './drivers/http-connect';
import { socks4Driver } from './drivers/socks4';
import { socks5Driver } from './drivers/socks5';
import { hopLabel, UpstreamHop } from './hop';

const byScheme = new Map<string, HopDriver>();
const names = new Set<string>();

/** Adds a driver for its schemes. A scheme or name that is taken (or "direct") is a programming error. */
export function registerHopDriver(driver: HopDriver): void {
  const schemes = Object.keys(driver.schemes);
  const clash = (why: string): ProxyError => new ProxyError('BAD_UPSTREAM_URL', `cannot register hop driver "${driver.name}": ${why}`);
  if ((driver.name as string) === 'direct' || names.has(driver.name)) throw clash('the name is reserved or taken');
  if (schemes.length === 0) throw clash('it serves no scheme');
  for (const scheme of schemes) {
    if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) throw clash(`"${scheme}" is not a lower-case URL scheme`);
    if (scheme === 'direct' || byScheme.has(scheme)) throw clash(`the scheme "${scheme}" is reserved or taken`);
  }
  names.add(driver.name);
  for (const scheme of schemes) byScheme.set(scheme, driver);
}

/** The driver for a (lower-case) scheme, if one is registered. */
export function driverFor(scheme: string): HopDriver | undefined {
  return byScheme.get(scheme);
}

/** The driver of a parsed hop; a hop whose scheme has none (built by hand) is rejected. */
export function hopDriver(hop: UpstreamHop): HopDriver {
  const driver = byScheme.get(hop.scheme);
  if (!driver) throw new ProxyError('BAD_UPSTREAM_URL', `no upstream driver for the scheme of ${hopLabel(hop)}`);
  return driver;
}

/** Every registered scheme, in registration order (for messages and prompts). */
export function upstreamSchemes(): string[] {
  return [...byScheme.keys()];
}

/** Titles of the drivers that can do UDP ASSOCIATE (for messages). */
export function udpDriverTitles(): string[] {
  return [...new Set([...byScheme.values()].filter((d) => d.openUdp !== undefined).map((d) => d.title))];
}

registerHopDriver(socks5Driver);
registerHopDriver(socks4Driver);
registerHopDriver(httpConnectDriver);
