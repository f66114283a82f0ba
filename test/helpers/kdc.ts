/**
 * A real MIT Kerberos KDC (Debian's krb5-kdc) in a temporary directory, for the GSSAPI tests: its own
 * realm, a user with a password, service principals with keytabs, and `kinit` into a credentials cache
 * of the test's own. Nothing global changes: the KDC and every Kerberos library in this process and its
 * children read KRB5_CONFIG / KRB5_KDC_PROFILE / KRB5CCNAME set by `env` (or applied with `useKdc`).
 *
 * Service principals are named by host: `localhost` (127.0.0.1 in /etc/hosts on every machine) with DNS
 * canonicalisation and reverse lookups off, so `rcmd@localhost` is `rcmd/localhost@REALM` here.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Daemon, spawnDaemon, tempDir, waitForPort } from './daemons';
import { deadPort } from './servers';

export const REALM = 'SOCKS-RELAY.TEST';
export const USER = 'alice';
export const USER_PASSWORD = 'alice-kdc-password';

export interface Kdc {
  readonly dir: string;
  readonly port: number;
  /** KRB5_CONFIG and KRB5_KDC_PROFILE for this realm (no ccache). */
  readonly env: Record<string, string>;
  /** Adds a service principal with a random key and writes its keytab; returns the keytab path. */
  addService(principal: string): string;
  /** Adds a user principal with a password. */
  addUser(name: string, password: string): void;
  /** kinit as `user` into a fresh ccache file; returns its KRB5CCNAME value. `lifetime` like "10h" or "3s". */
  kinit(user?: string, password?: string, lifetime?: string): string;
  /** The KDC's log so far (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

export function haveKdc(): boolean {
  return ['krb5kdc', 'kdb5_util', 'kadmin.local', 'kinit'].every((c) => {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Starts a KDC on a free loopback port (TCP only). `clockskew` (seconds) is the realm's tolerance, kept
 * small so an expired ticket is refused within seconds instead of the default five minutes.
 */
export async function startKdc(options: { clockskew?: number } = {}): Promise<Kdc> {
  const dir = tempDir('kdc');
  // Dante's server switches to its unprivileged user around some Kerberos calls: the keytabs (0600) must be reachable.
  fs.chmodSync(dir, 0o755);
  const port = await deadPort();
  const krb5conf = path.join(dir, 'krb5.conf');
  const kdcconf = path.join(dir, 'kdc.conf');
  fs.writeFileSync(
    krb5conf,
    [
      '[libdefaults]',
      `  default_realm = ${REALM}`,
      '  dns_lookup_realm = false',
      '  dns_lookup_kdc = false',
      '  dns_canonicalize_hostname = false',
      '  rdns = false',
      '  udp_preference_limit = 1',
      `  clockskew = ${options.clockskew ?? 300}`,
      '  forwardable = false',
      '[realms]',
      `  ${REALM} = {`,
      `    kdc = 127.0.0.1:${port}`,
      '  }',
      '[domain_realm]',
      `  localhost = ${REALM}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    kdcconf,
    [
      '[kdcdefaults]',
      '  kdc_listen = ""',
      `  kdc_tcp_listen = 127.0.0.1:${port}`,
      '[realms]',
      `  ${REALM} = {`,
      `    database_name = ${path.join(dir, 'principal')}`,
      `    key_stash_file = ${path.join(dir, 'stash')}`,
      `    acl_file = ${path.join(dir, 'kadm5.acl')}`,
      '    max_life = 10h',
      '    max_renewable_life = 0',
      '    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal',
      '  }',
      '[logging]',
      `  kdc = FILE:${path.join(dir, 'kdc.log')}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'kadm5.acl'), '');
  const env = { KRB5_CONFIG: krb5conf, KRB5_KDC_PROFILE: kdcconf };
  const run = (cmd: string, args: string[], input?: string): string =>
    execFileSync(cmd, args, { env: { ...process.env, ...env }, input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  run('kdb5_util', ['create', '-s', '-r', REALM, '-P', 'socks-relay-master-key']);
  const kadmin = (query: string): string => run('kadmin.local', ['-r', REALM, '-q', query]);

  const child: ChildProcess = spawn('krb5kdc', ['-n', '-r', REALM, '-P', path.join(dir, 'kdc.pid')], {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = (): string => {
    let file = '';
    try {
      file = fs.readFileSync(path.join(dir, 'kdc.log'), 'utf8');
    } catch {
      // not written yet
    }
    return `${out}\n${file.slice(-20_000)}`;
  };
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone
      }
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, 8_000, child);
  } catch (err) {
    const why = `${(err as Error).message}\n${log()}`;
    await close();
    throw new Error(`krb5kdc did not start: ${why}`, { cause: err });
  }

  let caches = 0;
  const kdc: Kdc = {
    dir,
    port,
    env,
    addService(principal) {
      const keytab = path.join(dir, `${principal.replace(/[^a-z0-9]+/gi, '_')}.keytab`);
      kadmin(`addprinc -randkey ${principal}`);
      kadmin(`ktadd -k ${keytab} ${principal}`);
      return keytab;
    },
    addUser(name, password) {
      kadmin(`addprinc -pw ${password} ${name}`);
    },
    kinit(user = USER, password = USER_PASSWORD, lifetime = '10h') {
      const cache = `FILE:${path.join(dir, `ccache-${user}-${++caches}`)}`;
      execFileSync('kinit', ['-l', lifetime, user], {
        env: { ...process.env, ...env, KRB5CCNAME: cache },
        input: `${password}\n`,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      return cache;
    },
    log,
    close,
  };
  kdc.addUser(USER, USER_PASSWORD);
  return kdc;
}

/** Points this process's Kerberos library at the KDC (and a ccache); returns a function that restores the environment. */
export function useKdc(kdc: Kdc, ccache?: string): () => void {
  const keys = ['KRB5_CONFIG', 'KRB5_KDC_PROFILE', 'KRB5CCNAME'] as const;
  const saved = keys.map((k) => process.env[k]);
  Object.assign(process.env, kdc.env);
  if (ccache !== undefined) process.env.KRB5CCNAME = ccache;
  else delete process.env.KRB5CCNAME;
  return () => {
    keys.forEach((k, i) => {
      const v = saved[i];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    });
  };
}

/** Dante built with GSS-API (scripts/build-dante-gssapi.sh, cached after the first build): its install prefix. */
export function danteGssapiPrefix(): string {
  const script = path.join(__dirname, '..', '..', '..', 'scripts', 'build-dante-gssapi.sh');
  return execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 }).trim().split('\n').at(-1) ?? '';
}

export type DanteEnctype = 'clear' | 'integrity' | 'confidentiality' | 'any';

/** Dante's sockd on 127.0.0.1 requiring GSSAPI with `keytab` (service rcmd/localhost); enctype as Dante's default when undefined. */
export async function startDanteGssapi(prefix: string, kdc: Kdc, keytab: string, enctype?: DanteEnctype, service = 'rcmd/localhost'): Promise<Daemon> {
  const dir = tempDir('sockd-gssapi');
  const port = await deadPort();
  const rule = [`  gssapi.keytab: FILE:${keytab}`, `  gssapi.servicename: ${service}`, ...(enctype ? [`  gssapi.enctype: ${enctype}`] : []), '  log: connect disconnect error'];
  const conf = [
    'logoutput: stderr',
    `internal: 127.0.0.1 port = ${port}`,
    'external: 127.0.0.1',
    'clientmethod: none',
    'socksmethod: gssapi',
    'user.privileged: root',
    'user.unprivileged: nobody',
    'timeout.negotiate: 10',
    // The negotiation uses the client rule's keytab and service name.
    'client pass {',
    '  from: 0/0 to: 0/0',
    ...rule,
    '}',
    'socks pass {',
    '  from: 0/0 to: 0/0',
    '  command: connect bind',
    '  socksmethod: gssapi',
    ...rule,
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sockd.conf'), conf);
  const daemon = await spawnDaemon(path.join(prefix, 'sbin', 'sockd'), ['-f', path.join(dir, 'sockd.conf'), '-p', path.join(dir, 'sockd.pid'), '-N', '1'], port, dir, { ...process.env, ...kdc.env });
  return daemon;
}

/**
 * Environment that makes `socksify <command>` (Dante's client library, preloaded) send the command's TCP
 * connections through the SOCKS5 server on `port` with GSSAPI, service rcmd (rcmd@localhost for 127.0.0.1).
 */
export function socksifyEnv(prefix: string, kdc: Kdc, port: number, ccache: string | undefined, enctype?: Exclude<DanteEnctype, 'any'>): NodeJS.ProcessEnv {
  const dir = tempDir('socksify');
  const conf = path.join(dir, 'socks.conf');
  fs.writeFileSync(
    conf,
    [
      'logoutput: stderr',
      'route {',
      `  from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = ${port}`,
      '  proxyprotocol: socks_v5',
      '  method: gssapi',
      '  gssapi.servicename: rcmd',
      ...(enctype ? [`  gssapi.enctype: ${enctype}`] : []),
      '}',
      '',
    ].join('\n'),
  );
  return {
    ...process.env,
    ...kdc.env,
    KRB5CCNAME: ccache ?? `FILE:${path.join(dir, 'no-such-ccache')}`,
    SOCKS_CONF: conf,
    SOCKS_LIBRARY: path.join(prefix, 'lib', 'libdsocks.so'),
    // Otherwise the library adds a direct route for the loopback network and nothing goes through the proxy.
    SOCKS_AUTOADD_LANROUTES: 'no',
    ALL_PROXY: '',
    all_proxy: '',
    http_proxy: '',
    HTTP_PROXY: '',
    NO_PROXY: '',
    no_proxy: '',
  };
}
