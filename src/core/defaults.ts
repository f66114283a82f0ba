/**
 * The engine's defaults, in one place. The listener (core/context.ts), the CLI (its options and help
 * text) and the extension's settings (ui/setting-keys.ts, checked against package.json by a test) all
 * read them here, so the four can no longer drift apart. Times are in milliseconds; 0 disables one.
 */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 1080,
  allowNoAuth: false,
  socks4: true,
  http: true,
  handshakeTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 10 * 60_000,
  bindTimeoutMs: 60_000,
  udpIdleTimeoutMs: 2 * 60_000,
  maxSessions: 4096,
  maxUdpAssociations: 256,
} as const;

/** Idle timeout in whole seconds, the unit the CLI and the settings use. */
export const DEFAULT_IDLE_TIMEOUT_SECONDS = DEFAULTS.idleTimeoutMs / 1000;
