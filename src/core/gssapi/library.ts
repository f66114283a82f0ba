/**
 * The system's GSS-API library (RFC 2744 C bindings), called through koffi, a prebuilt N-API FFI.
 *
 * Why not the `kerberos` package: its server side has no gss_wrap/gss_unwrap (RFC 1961 section 4 needs
 * both on both sides) and it reports failures as text only, so errors could not carry codes. All the
 * cryptography stays in the system library (MIT krb5, Heimdal); this module only marshals buffers.
 *
 * Loaded lazily, once: when koffi or the library is missing, `gssapi()` answers why, and nothing else
 * changes (the method is simply not offered).
 */
import type * as Koffi from 'koffi';

/** Major status: GSS_S_COMPLETE, GSS_S_CONTINUE_NEEDED; routine errors sit in bits 16-23 (RFC 2744 section 3.9.1). */
export const GSS_S_COMPLETE = 0;
export const GSS_S_CONTINUE_NEEDED = 1;
export const GSS_C_MUTUAL_FLAG = 2;
export const GSS_C_REPLAY_FLAG = 4;
export const GSS_C_SEQUENCE_FLAG = 8;
export const GSS_C_CONF_FLAG = 16;
export const GSS_C_INTEG_FLAG = 32;
const GSS_C_ACCEPT = 2;
const GSS_C_GSS_CODE = 1;
const GSS_C_MECH_CODE = 2;

/** The routine-error part of a major status (0 when none). */
export function routineError(major: number): number {
  return (major >>> 16) & 0xff;
}

/** A failed GSS-API call: the call, its major and minor status and the library's own words for both. */
export class GssCallError extends Error {
  constructor(
    readonly call: string,
    readonly major: number,
    readonly minor: number,
    readonly text: string,
  ) {
    super(`${call}: ${text}`);
    this.name = 'GssCallError';
  }
}

type Handle = unknown;
interface BufferDesc {
  length: number | bigint;
  value: unknown;
}
type Out<T> = [T];

/** The calls this product makes, typed. */
interface Calls {
  import_name(minor: Out<number>, name: BufferDesc, type: unknown, out: Out<Handle>): number;
  release_name(minor: Out<number>, name: Out<Handle>): number;
  init_sec_context: Koffi.KoffiFunction;
  accept_sec_context: Koffi.KoffiFunction;
  acquire_cred_from?: (minor: Out<number>, name: Handle, time: number, mechs: null, usage: number, store: unknown, out: Out<Handle>, actual: null, rec: null) => number;
  release_cred(minor: Out<number>, cred: Out<Handle>): number;
  display_name(minor: Out<number>, name: Handle, out: BufferDesc, type: null): number;
  display_status(minor: Out<number>, status: number, type: number, mech: null, ctx: Out<number>, out: BufferDesc): number;
  wrap(minor: Out<number>, ctx: Handle, conf: number, qop: number, input: BufferDesc, confState: Out<number>, out: BufferDesc): number;
  unwrap(minor: Out<number>, ctx: Handle, input: BufferDesc, out: BufferDesc, confState: Out<number>, qop: Out<number>): number;
  wrap_size_limit(minor: Out<number>, ctx: Handle, conf: number, qop: number, outputSize: number, maxInput: Out<number>): number;
  delete_sec_context(minor: Out<number>, ctx: Out<Handle>, out: null): number;
  release_buffer(minor: Out<number>, buf: BufferDesc): number;
}

/** What a security context needs from the library (a seam for tests with a fake). */
export interface GssApi {
  /** Where the library was loaded from, for the log line. */
  readonly source: string;
  createInitiator(target: string, flags: number): GssInitiator;
  createAcceptor(keytab: string | undefined): GssAcceptor;
}

/** One step of context establishment: the token to send (possibly empty) and whether the context is complete. */
export interface GssStep {
  readonly token: Buffer;
  readonly complete: boolean;
}

export interface Protector {
  /** gss_wrap: `confidential` asks for encryption as well as integrity. */
  wrap(data: Buffer, confidential: boolean): Buffer;
  /** gss_unwrap: the message and whether it was encrypted. */
  unwrap(token: Buffer): { data: Buffer; confidential: boolean };
  /** gss_wrap_size_limit: the largest message whose wrapped token fits `tokenLimit` octets. */
  maxInput(confidential: boolean, tokenLimit: number): number;
  /** Frees the context (gss_delete_sec_context); safe to call twice. */
  dispose(): void;
}

export interface GssInitiator extends Protector {
  /** gss_init_sec_context with the peer's last token (none for the first call). Runs on a worker thread: it may ask the KDC. */
  step(input?: Buffer): Promise<GssStep>;
}

export interface GssAcceptor extends Protector {
  /** gss_accept_sec_context with the client's token. */
  step(input: Buffer): Promise<GssStep>;
  /** The authenticated initiator, e.g. alice@EXAMPLE.COM, once complete. */
  readonly principal: string | undefined;
}

function candidates(): string[] {
  const override = process.env.SOCKS_RELAY_GSSAPI_LIBRARY;
  if (override) return [override];
  switch (process.platform) {
    case 'darwin':
      return ['/usr/lib/libgssapi_krb5.dylib', '/System/Library/Frameworks/GSS.framework/GSS', '/opt/homebrew/opt/krb5/lib/libgssapi_krb5.dylib', '/usr/local/opt/krb5/lib/libgssapi_krb5.dylib'];
    case 'win32':
      return ['gssapi64.dll'];
    default:
      return ['libgssapi_krb5.so.2', 'libgssapi.so.3'];
  }
}

const HOSTBASED_SERVICE = Buffer.from('2a864886f71201020104', 'hex'); // 1.2.840.113554.1.2.1.4
const KRB5_PRINCIPAL_NAME = Buffer.from('2a864886f71201020201', 'hex'); // 1.2.840.113554.1.2.2.1
const KRB5_MECH = Buffer.from('2a864886f712010202', 'hex'); // 1.2.840.113554.1.2.2

class KoffiGss implements GssApi {
  private readonly oids: { hostbased: unknown; principal: unknown };
  readonly krb5Mech: unknown;
  private readonly kv: Koffi.IKoffiCType;

  constructor(
    private readonly koffi: typeof Koffi,
    readonly f: Calls,
    readonly source: string,
  ) {
    this.kv = defineTypes(koffi).kv;
    // The library keeps pointers to OIDs it is given, so they live in native memory for the process's lifetime.
    const oid = (bytes: Buffer): unknown => {
      const mem = koffi.alloc('uint8', bytes.length);
      koffi.encode(mem, koffi.array('uint8', bytes.length), [...bytes]);
      return { length: bytes.length, elements: mem };
    };
    this.oids = { hostbased: oid(HOSTBASED_SERVICE), principal: oid(KRB5_PRINCIPAL_NAME) };
    this.krb5Mech = oid(KRB5_MECH);
  }

  /** Copies a buffer the library allocated and releases it. */
  take(desc: BufferDesc): Buffer {
    const length = Number(desc.length);
    if (!desc.value) return Buffer.alloc(0);
    const copy = length === 0 ? Buffer.alloc(0) : Buffer.from(new Uint8Array(this.koffi.view(desc.value, length)));
    this.f.release_buffer([0], desc);
    return copy;
  }

  /** The library's messages for both statuses (gss_display_status loops until its context is 0). */
  describe(major: number, minor: number): string {
    const parts: string[] = [];
    const collect = (code: number, type: number): void => {
      const ctx: Out<number> = [0];
      for (let i = 0; i < 8; i++) {
        const out = {} as BufferDesc;
        if (this.f.display_status([0], code, type, null, ctx, out) !== GSS_S_COMPLETE) return;
        const text = this.take(out).toString('utf8');
        if (text !== '') parts.push(text);
        if (ctx[0] === 0) return;
      }
    };
    if (routineError(major) !== 0) collect(major, GSS_C_GSS_CODE);
    if (minor !== 0) collect(minor, GSS_C_MECH_CODE);
    return parts.join(': ') || `major 0x${major.toString(16)}, minor ${minor}`;
  }

  check(call: string, major: number, minor: number): void {
    if (routineError(major) !== 0) throw new GssCallError(call, major, minor, this.describe(major, minor));
  }

  importName(target: string): Handle {
    // "service@host" is a host-based service name (RFC 2743 section 4.1); anything with "/" a Kerberos principal.
    const type = target.includes('/') ? this.oids.principal : this.oids.hostbased;
    const bytes = Buffer.from(target, 'utf8');
    const minor: Out<number> = [0];
    const out: Out<Handle> = [null];
    this.check(`gss_import_name(${target})`, this.f.import_name(minor, { length: bytes.length, value: bytes }, type, out), minor[0]);
    return out[0];
  }

  releaseName(name: Handle): void {
    if (name) this.f.release_name([0], [name]);
  }

  displayName(name: Handle): string {
    const out = {} as BufferDesc;
    const minor: Out<number> = [0];
    this.check('gss_display_name', this.f.display_name(minor, name, out, null), minor[0]);
    return this.take(out).toString('utf8');
  }

  wrap(ctx: Handle, data: Buffer, confidential: boolean): Buffer {
    const minor: Out<number> = [0];
    const out = {} as BufferDesc;
    this.check('gss_wrap', this.f.wrap(minor, ctx, confidential ? 1 : 0, 0, { length: data.length, value: data }, [0], out), minor[0]);
    return this.take(out);
  }

  unwrap(ctx: Handle, token: Buffer): { data: Buffer; confidential: boolean } {
    const minor: Out<number> = [0];
    const out = {} as BufferDesc;
    const conf: Out<number> = [0];
    this.check('gss_unwrap', this.f.unwrap(minor, ctx, { length: token.length, value: token }, out, conf, [0]), minor[0]);
    return { data: this.take(out), confidential: conf[0] !== 0 };
  }

  maxInput(ctx: Handle, confidential: boolean, tokenLimit: number): number {
    const minor: Out<number> = [0];
    const max: Out<number> = [0];
    this.check('gss_wrap_size_limit', this.f.wrap_size_limit(minor, ctx, confidential ? 1 : 0, 0, tokenLimit, max), minor[0]);
    return max[0];
  }

  deleteContext(ctx: Out<Handle>): void {
    if (ctx[0]) this.f.delete_sec_context([0], ctx, null);
    ctx[0] = null;
  }

  /** Runs an establishment call on koffi's worker thread (it may block on the KDC or the keytab file). */
  callAsync(fn: Koffi.KoffiFunction, args: unknown[]): Promise<number> {
    return new Promise((resolve, reject) => {
      fn.async(...args, (err: unknown, major: number) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(major)));
    });
  }

  createInitiator(target: string, flags: number): GssInitiator {
    return new KoffiInitiator(this, target, flags);
  }

  createAcceptor(keytab: string | undefined): GssAcceptor {
    return new KoffiAcceptor(this, this.acquireAcceptorCred(keytab));
  }

  /** Acceptor credentials from `keytab` (gss_acquire_cred_from); null: the library's default keytab at accept time. */
  private acquireAcceptorCred(keytab: string | undefined): Handle {
    if (keytab === undefined) return null;
    const acquire = this.f.acquire_cred_from;
    if (!acquire) throw new GssCallError('gss_acquire_cred_from', 0, 0, `${this.source} cannot take a keytab path (it has no gss_acquire_cred_from); set KRB5_KTNAME instead`);
    const elements = this.koffi.alloc(this.kv, 1);
    try {
      this.koffi.encode(elements, this.kv, { key: 'keytab', value: keytab });
      const minor: Out<number> = [0];
      const cred: Out<Handle> = [null];
      this.check(`gss_acquire_cred_from(keytab ${keytab})`, acquire(minor, null, 0, null, GSS_C_ACCEPT, { count: 1, elements }, cred, null, null), minor[0]);
      return cred[0];
    } finally {
      this.koffi.free(elements);
    }
  }

  releaseCred(cred: Handle): void {
    if (cred) this.f.release_cred([0], [cred]);
  }
}

/**
 * What both ends of a context share: the handle, the protection calls, and disposal that waits for a call
 * on koffi's worker thread to return (freeing handles it uses would be a use-after-free).
 */
abstract class KoffiContext {
  protected readonly ctx: Out<Handle> = [null];
  protected inFlight = false;
  protected disposed = false;

  constructor(protected readonly gss: KoffiGss) {}

  /** Runs an establishment call; after it, a context disposed meanwhile is released and the step fails. */
  protected async establish(fn: Koffi.KoffiFunction, args: unknown[], out: BufferDesc, also?: () => void): Promise<{ major: number; sent: Buffer }> {
    if (this.disposed) throw new Error('the context was disposed');
    this.inFlight = true;
    let major: number;
    try {
      major = await this.gss.callAsync(fn, args);
    } finally {
      this.inFlight = false;
    }
    const sent = this.gss.take(out);
    if (this.disposed) {
      also?.();
      this.release();
      throw new Error('the context was disposed');
    }
    return { major, sent };
  }

  wrap(data: Buffer, confidential: boolean): Buffer {
    return this.gss.wrap(this.ctx[0], data, confidential);
  }

  unwrap(token: Buffer): { data: Buffer; confidential: boolean } {
    return this.gss.unwrap(this.ctx[0], token);
  }

  maxInput(confidential: boolean, tokenLimit: number): number {
    return this.gss.maxInput(this.ctx[0], confidential, tokenLimit);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.inFlight) this.release();
  }

  protected abstract release(): void;
}

class KoffiInitiator extends KoffiContext implements GssInitiator {
  private readonly name: Handle;
  private done = false;

  constructor(
    gss: KoffiGss,
    private readonly target: string,
    private readonly requested: number,
  ) {
    super(gss);
    this.name = gss.importName(target);
  }

  async step(input?: Buffer): Promise<GssStep> {
    if (this.done) throw new Error('the context is already established');
    const minor: Out<number> = [0];
    const out = {} as BufferDesc;
    const token = input ? { length: input.length, value: input } : { length: 0, value: null };
    const { major, sent } = await this.establish(this.gss.f.init_sec_context, [minor, null, this.ctx, this.name, this.gss.krb5Mech, this.requested, 0, null, token, null, out, [0], [0]], out);
    this.gss.check(`gss_init_sec_context(${this.target})`, major, minor[0]);
    this.done = major === GSS_S_COMPLETE;
    return { token: sent, complete: this.done };
  }

  protected release(): void {
    this.gss.deleteContext(this.ctx);
    this.gss.releaseName(this.name);
  }
}

class KoffiAcceptor extends KoffiContext implements GssAcceptor {
  private who: string | undefined;

  constructor(
    gss: KoffiGss,
    private cred: Handle,
  ) {
    super(gss);
  }

  get principal(): string | undefined {
    return this.who;
  }

  async step(input: Buffer): Promise<GssStep> {
    const minor: Out<number> = [0];
    const out = {} as BufferDesc;
    const source: Out<Handle> = [null];
    const args = [minor, this.ctx, this.cred, { length: input.length, value: input }, null, source, null, out, [0], [0], null];
    const { major, sent } = await this.establish(this.gss.f.accept_sec_context, args, out, () => this.gss.releaseName(source[0]));
    try {
      this.gss.check('gss_accept_sec_context', major, minor[0]);
      if (major === GSS_S_COMPLETE && source[0]) this.who = this.gss.displayName(source[0]);
    } finally {
      this.gss.releaseName(source[0]);
    }
    return { token: sent, complete: major === GSS_S_COMPLETE };
  }

  protected release(): void {
    this.gss.deleteContext(this.ctx);
    this.gss.releaseCred(this.cred);
    this.cred = null;
  }
}

let types: { kv: Koffi.IKoffiCType } | undefined;

/** koffi's type names are global to the process: declared once. */
function defineTypes(koffi: typeof Koffi): { kv: Koffi.IKoffiCType } {
  if (types) return types;
  koffi.struct('gss_buffer_desc', { length: 'size_t', value: 'void *' });
  koffi.struct('gss_OID_desc', { length: 'uint32', elements: 'void *' });
  koffi.struct('gss_key_value_set_desc', { count: 'uint32', elements: 'void *' });
  koffi.pointer('gss_name_t', koffi.opaque());
  koffi.pointer('gss_ctx_id_t', koffi.opaque());
  koffi.pointer('gss_cred_id_t', koffi.opaque());
  types = { kv: koffi.struct('gss_key_value_element_desc', { key: 'const char *', value: 'const char *' }) };
  return types;
}

function bind(koffi: typeof Koffi, path: string): KoffiGss {
  const lib = koffi.load(path);
  defineTypes(koffi);
  const fn = (decl: string): Koffi.KoffiFunction => lib.func(decl);
  let acquireFrom: Calls['acquire_cred_from'];
  try {
    acquireFrom = fn('uint32 gss_acquire_cred_from(_Out_ uint32 *minor, gss_name_t name, uint32 time, void *mechs, int usage, gss_key_value_set_desc *store, _Out_ gss_cred_id_t *cred, void *actual, void *rec)') as unknown as Calls['acquire_cred_from'];
  } catch {
    acquireFrom = undefined; // Heimdal and Apple's GSS.framework: no credential store extension
  }
  const calls: Calls = {
    import_name: fn('uint32 gss_import_name(_Out_ uint32 *minor, gss_buffer_desc *name, gss_OID_desc *type, _Out_ gss_name_t *out)') as unknown as Calls['import_name'],
    release_name: fn('uint32 gss_release_name(_Out_ uint32 *minor, _Inout_ gss_name_t *name)') as unknown as Calls['release_name'],
    init_sec_context: fn(
      'uint32 gss_init_sec_context(_Out_ uint32 *minor, gss_cred_id_t cred, _Inout_ gss_ctx_id_t *ctx, gss_name_t target, gss_OID_desc *mech, uint32 flags, uint32 time, void *bindings, gss_buffer_desc *input, void *actualMech, _Out_ gss_buffer_desc *output, _Out_ uint32 *retFlags, _Out_ uint32 *timeRec)',
    ),
    accept_sec_context: fn(
      'uint32 gss_accept_sec_context(_Out_ uint32 *minor, _Inout_ gss_ctx_id_t *ctx, gss_cred_id_t cred, gss_buffer_desc *input, void *bindings, _Out_ gss_name_t *source, void *mech, _Out_ gss_buffer_desc *output, _Out_ uint32 *retFlags, _Out_ uint32 *timeRec, void *delegated)',
    ),
    acquire_cred_from: acquireFrom,
    release_cred: fn('uint32 gss_release_cred(_Out_ uint32 *minor, _Inout_ gss_cred_id_t *cred)') as unknown as Calls['release_cred'],
    display_name: fn('uint32 gss_display_name(_Out_ uint32 *minor, gss_name_t name, _Out_ gss_buffer_desc *out, void *type)') as unknown as Calls['display_name'],
    display_status: fn('uint32 gss_display_status(_Out_ uint32 *minor, uint32 status, int type, void *mech, _Inout_ uint32 *ctx, _Out_ gss_buffer_desc *out)') as unknown as Calls['display_status'],
    wrap: fn('uint32 gss_wrap(_Out_ uint32 *minor, gss_ctx_id_t ctx, int conf, uint32 qop, gss_buffer_desc *input, _Out_ int *confState, _Out_ gss_buffer_desc *out)') as unknown as Calls['wrap'],
    unwrap: fn('uint32 gss_unwrap(_Out_ uint32 *minor, gss_ctx_id_t ctx, gss_buffer_desc *input, _Out_ gss_buffer_desc *out, _Out_ int *confState, _Out_ uint32 *qop)') as unknown as Calls['unwrap'],
    wrap_size_limit: fn('uint32 gss_wrap_size_limit(_Out_ uint32 *minor, gss_ctx_id_t ctx, int conf, uint32 qop, uint32 outputSize, _Out_ uint32 *maxInput)') as unknown as Calls['wrap_size_limit'],
    delete_sec_context: fn('uint32 gss_delete_sec_context(_Out_ uint32 *minor, _Inout_ gss_ctx_id_t *ctx, void *out)') as unknown as Calls['delete_sec_context'],
    release_buffer: fn('uint32 gss_release_buffer(_Out_ uint32 *minor, gss_buffer_desc *buf)') as unknown as Calls['release_buffer'],
  };
  return new KoffiGss(koffi, calls, path);
}

export type GssLoad = { readonly ok: true; readonly api: GssApi } | { readonly ok: false; readonly reason: string };

let loaded: GssLoad | undefined;

/** The GSS-API library, loaded on first use; `{ ok: false, reason }` when this machine has none. */
export function gssapi(): GssLoad {
  if (loaded) return loaded;
  let koffi: typeof Koffi;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native dependency, loaded only when GSSAPI is used
    koffi = require('koffi') as typeof Koffi;
  } catch (err) {
    loaded = { ok: false, reason: `the koffi module did not load (${(err as Error).message.split('\n')[0]})` };
    return loaded;
  }
  const tried: string[] = [];
  for (const path of candidates()) {
    try {
      loaded = { ok: true, api: bind(koffi, path) };
      return loaded;
    } catch (err) {
      tried.push(`${path}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  loaded = { ok: false, reason: `no GSS-API library found (${tried.join('; ')})` };
  return loaded;
}

/** Replaces the library (tests): undefined goes back to loading the real one. */
export function setGssApiForTests(load: GssLoad | undefined): void {
  loaded = load;
}
