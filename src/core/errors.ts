/** SOCKS5 reply codes (RFC 1928 section 6). */
export const Reply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

const replyNames: Record<number, string> = {
  0x00: 'succeeded',
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
};

export function replyName(code: number): string {
  return replyNames[code] ?? `unassigned reply 0x${code.toString(16).padStart(2, '0')}`;
}

/** Machine-readable error codes used across the engine. */
export type ProxyErrorCode =
  | 'BAD_VERSION'
  | 'BAD_COMMAND'
  | 'BAD_ADDRESS_TYPE'
  | 'BAD_ADDRESS'
  | 'BAD_AUTH_VERSION'
  | 'AUTH_FAILED'
  | 'NO_ACCEPTABLE_METHOD'
  | 'HANDSHAKE_TIMEOUT'
  | 'CONNECT_TIMEOUT'
  | 'BIND_TIMEOUT'
  | 'IDLE_TIMEOUT'
  | 'TOO_MANY_SESSIONS'
  | 'TOO_MANY_ASSOCIATIONS'
  | 'BLOCKED'
  | 'DIAL_FAILED'
  | 'UPSTREAM_FAILED'
  | 'UPSTREAM_AUTH_FAILED'
  | 'BAD_UPSTREAM_URL'
  | 'BAD_RULE'
  | 'PROTOCOL_ERROR'
  /** The egress route (this computer, through the tunnel) has no agent connected, or the agent failed. */
  | 'EGRESS_UNAVAILABLE'
  /** GSSAPI (RFC 1961): no library on this machine, or one of the Kerberos failures a user can act on. */
  | 'GSSAPI_UNAVAILABLE'
  | 'GSSAPI_NO_CREDENTIALS'
  | 'GSSAPI_TICKET_EXPIRED'
  | 'GSSAPI_UNKNOWN_SERVICE'
  | 'GSSAPI_CLOCK_SKEW'
  | 'GSSAPI_KDC_UNREACHABLE'
  | 'GSSAPI_BAD_KEYTAB'
  /** The peer refused the protection level we can offer (only "no per-message protection" is implemented). */
  | 'GSSAPI_PROTECTION_REFUSED'
  /** The peer sent the RFC 1961 abort message. */
  | 'GSSAPI_REJECTED'
  | 'GSSAPI_FAILED';

/** An error with a stable code and the SOCKS reply it maps to. */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly reply: ReplyCode;
  constructor(code: ProxyErrorCode, message: string, reply: ReplyCode = Reply.GENERAL_FAILURE, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyError';
    this.code = code;
    this.reply = reply;
  }
}

/** Maps a failure (ours or a Node system error) to the reply the client should see. */
export function replyForError(err: unknown): ReplyCode {
  if (err instanceof ProxyError) return err.reply;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return Reply.CONNECTION_REFUSED;
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return Reply.NETWORK_UNREACHABLE;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
    case 'EADDRNOTAVAIL':
      return Reply.HOST_UNREACHABLE;
    case 'ETIMEDOUT':
      return Reply.TTL_EXPIRED;
    default:
      return Reply.GENERAL_FAILURE;
  }
}

/** A short description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
