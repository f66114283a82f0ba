/**
 * Real upstream proxies from Debian (dante, microsocks, tinyproxy) and a small TLS CONNECT proxy, started on
 * free loopback ports with their config in a temp dir and killed (whole process group) after the test.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { deadPort } from './servers';

export interface Daemon {
  port: number;
  /** What the daemon printed so far (for failure messages). */
  output(): string;
  close(): Promise<void>;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `socks-relay-${prefix}-`));
}

/** Polls until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 5_000, child?: ChildProcess): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function spawnDaemon(command: string, args: string[], port: number, cwd: string, env?: NodeJS.ProcessEnv): Promise<Daemon> {
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.on('error', (err) => (out += `spawn error: ${err.message}`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    kill('SIGKILL'); // any forked children left in the group
  };
  try {
    await waitForPort(port, 8_000, child);
  } catch (err) {
    await close();
    throw new Error(`${command} did not start: ${(err as Error).message}\n${out}`, { cause: err });
  }
  return { port, output: () => out, close };
}

/** Makes sure a system account with this password exists (dante's username method checks the system's users). Needs root. */
export function ensureSystemUser(name: string, password: string): void {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'ignore' });
  }
  execFileSync('chpasswd', [], { input: `${name}:${password}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export function have(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** danted on 127.0.0.1, method none or username (system users); CONNECT, BIND and UDP allowed. Speaks SOCKS4 too when method is none. */
export async function startDante(method: 'none' | 'username'): Promise<Daemon> {
  const dir = tempDir('dante');
  const port = await deadPort();
  const conf = [
    'logoutput: stderr',
    `internal: 127.0.0.1 port = ${port}`,
    'external: 127.0.0.1',
    `socksmethod: ${method}`,
    'clientmethod: none',
    'user.privileged: root',
    'user.unprivileged: nobody',
    'timeout.negotiate: 10',
    'client pass { from: 0/0 to: 0/0 }',
    'socks pass { from: 0/0 to: 0/0 command: bind connect udpassociate bindreply udpreply }',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'danted.conf'), conf);
  return spawnDaemon('danted', ['-f', path.join(dir, 'danted.conf'), '-p', path.join(dir, 'danted.pid'), '-N', '1', '-d', '0'], port, dir);
}

export async function startMicrosocks(auth?: { user: string; pass: string }): Promise<Daemon> {
  const port = await deadPort();
  const args = ['-i', '127.0.0.1', '-p', String(port), ...(auth ? ['-u', auth.user, '-P', auth.pass] : [])];
  return spawnDaemon('microsocks', args, port, os.tmpdir());
}

/** tinyproxy with BasicAuth; CONNECT allowed to any port (no ConnectPort lines). */
export async function startTinyproxy(auth: { user: string; pass: string }): Promise<Daemon> {
  const dir = tempDir('tinyproxy');
  const port = await deadPort();
  const conf = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    'MaxClients 50',
    'Allow 127.0.0.1',
    `BasicAuth ${auth.user} ${auth.pass}`,
    'LogLevel Info',
    `PidFile "${path.join(dir, 'tinyproxy.pid')}"`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'tinyproxy.conf'), conf);
  return spawnDaemon('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], port, dir);
}

/** A self-signed certificate for 127.0.0.1 / localhost, made with openssl. */
export function selfSignedCert(): { key: string; cert: string; certFile: string } {
  const dir = tempDir('cert');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8'), certFile };
}

/** An HTTPS proxy: TLS-terminating, answers CONNECT with Basic auth, then pipes. Debian's tinyproxy has no TLS. */
export async function startTlsConnectProxy(auth: { user: string; pass: string }): Promise<Daemon & { certFile: string; connects: string[] }> {
  const { key, cert, certFile } = selfSignedCert();
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.statusCode = 405;
    res.end();
  });
  const secure = tls.createServer({ key, cert }, (s) => server.emit('connection', s));
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const expected = `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`;
    if (req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const m = /^(.*):(\d+)$/.exec(req.url ?? '');
    if (!m) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    connects.push(req.url ?? '');
    const host = m[1].replace(/^\[|\]$/g, '');
    const upstream = net.connect({ host, port: Number(m[2]) });
    sockets.add(upstream);
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
  });
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', () => r()));
  const port = (secure.address() as net.AddressInfo).port;
  return {
    port,
    certFile,
    connects,
    output: () => connects.join('\n'),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => secure.close(() => r()));
    },
  };
}
