/**
 * GSS-API failures as typed errors: the major status's routine error and the Kerberos minor code decide
 * the code (never the library's message text, which differs between MIT, Heimdal and versions).
 */
import { ProxyError, ProxyErrorCode, Reply } from '../errors';
import { GssCallError, routineError } from './library';

/** Routine errors (RFC 2744 section 3.9.1, shifted down by 16). */
const GSS_S_BAD_NAME = 2;
const GSS_S_NO_CRED = 7;
const GSS_S_CREDENTIALS_EXPIRED = 11;
const GSS_S_CONTEXT_EXPIRED = 12;

/** MIT krb5 com_err codes (krb5_err.et, k5e1_err.et; Heimdal uses the same numbers for these). */
export const Krb5 = {
  KDC_ERR_C_PRINCIPAL_UNKNOWN: -1765328378,
  KDC_ERR_S_PRINCIPAL_UNKNOWN: -1765328377,
  AP_ERR_TKT_EXPIRED: -1765328352,
  AP_ERR_NOT_US: -1765328349,
  AP_ERR_SKEW: -1765328347,
  AP_ERR_MODIFIED: -1765328343,
  AP_ERR_BADKEYVER: -1765328340,
  AP_ERR_NOKEY: -1765328339,
  CC_NOTFOUND: -1765328243,
  KDC_UNREACH: -1765328228,
  KT_NOTFOUND: -1765328203,
  FCC_NOFILE: -1765328189,
  KT_END: -1765328202,
} as const;

export type GssErrorCode = Extract<
  ProxyErrorCode,
  'GSSAPI_NO_CREDENTIALS' | 'GSSAPI_TICKET_EXPIRED' | 'GSSAPI_UNKNOWN_SERVICE' | 'GSSAPI_CLOCK_SKEW' | 'GSSAPI_KDC_UNREACHABLE' | 'GSSAPI_BAD_KEYTAB' | 'GSSAPI_FAILED'
>;

/** The code for a failed call, from its statuses. */
export function gssErrorCode(err: GssCallError): GssErrorCode {
  const minor = err.minor | 0; // OM_uint32 carrying a signed krb5_error_code
  const routine = routineError(err.major);
  switch (minor) {
    case Krb5.FCC_NOFILE:
    case Krb5.CC_NOTFOUND:
      return 'GSSAPI_NO_CREDENTIALS';
    case Krb5.AP_ERR_TKT_EXPIRED:
      return 'GSSAPI_TICKET_EXPIRED';
    case Krb5.KDC_ERR_S_PRINCIPAL_UNKNOWN:
      return 'GSSAPI_UNKNOWN_SERVICE';
    case Krb5.AP_ERR_SKEW:
      return 'GSSAPI_CLOCK_SKEW';
    case Krb5.KDC_UNREACH:
      return 'GSSAPI_KDC_UNREACHABLE';
    case Krb5.KT_NOTFOUND:
    case Krb5.KT_END:
    case Krb5.AP_ERR_NOT_US:
    case Krb5.AP_ERR_MODIFIED:
    case Krb5.AP_ERR_BADKEYVER:
    case Krb5.AP_ERR_NOKEY:
      return 'GSSAPI_BAD_KEYTAB';
    default:
      break;
  }
  if (routine === GSS_S_CREDENTIALS_EXPIRED || routine === GSS_S_CONTEXT_EXPIRED) return 'GSSAPI_TICKET_EXPIRED';
  if (routine === GSS_S_NO_CRED) return 'GSSAPI_NO_CREDENTIALS';
  if (routine === GSS_S_BAD_NAME) return 'GSSAPI_UNKNOWN_SERVICE';
  return 'GSSAPI_FAILED';
}

const advice: Record<GssErrorCode, string> = {
  GSSAPI_NO_CREDENTIALS: 'no Kerberos ticket: run kinit',
  GSSAPI_TICKET_EXPIRED: 'the Kerberos ticket has expired: run kinit again',
  GSSAPI_UNKNOWN_SERVICE: 'the KDC does not know the service principal: check the service name',
  GSSAPI_CLOCK_SKEW: "this computer's clock differs too much from the KDC's or the server's",
  GSSAPI_KDC_UNREACHABLE: 'no Kerberos KDC could be reached',
  GSSAPI_BAD_KEYTAB: 'the keytab is missing or unreadable, or has no key for the service the ticket is for',
  GSSAPI_FAILED: 'GSS-API failed',
};

/**
 * A GSS-API failure as a ProxyError with its code: `who` says where ("upstream socks5h://proxy:1080",
 * "client #4"), the library's own text follows the advice.
 */
export function gssProxyError(err: unknown, who: string): ProxyError {
  if (err instanceof ProxyError) return err;
  if (err instanceof GssCallError) {
    const code = gssErrorCode(err);
    return new ProxyError(code, `GSSAPI with ${who}: ${advice[code]} (${err.message})`, Reply.GENERAL_FAILURE, { cause: err });
  }
  return new ProxyError('GSSAPI_FAILED', `GSSAPI with ${who}: ${(err as Error)?.message ?? String(err)}`, Reply.GENERAL_FAILURE, { cause: err });
}
