/** Servers and environment for driving real HTTP-proxy clients (curl, wget, git, undici) on loopback. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from './run';

/** The proxy variables every tool reads; tests set them explicitly on top of an environment without them. */
const PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'ftp_proxy'];

/** process.env without any proxy settings (either case), plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!PROXY_VARS.includes(k.toLowerCase())) env[k] = v;
  // git must not ask questions or read the user's config.
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_CONFIG_NOSYSTEM = '1';
  env.GIT_CONFIG_GLOBAL = '/dev/null';
  env.CURL_HOME = '/nonexistent';
  return { ...env, ...extra };
}

/** Deterministic bytes for body-integrity checks. */
export function pattern(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface OriginRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  bodyLength: number;
  bodySha: string;
}

export interface Origin {
  port: number;
  requests: OriginRequest[];
  /** Client connections the origin accepted. */
  connections: number;
  close(): Promise<void>;
}

/**
 * A test origin:
 *   /hello          → "hello"
 *   /echo           → the request body, streamed back chunked
 *   /big?n=N        → N pattern bytes, chunked (no Content-Length)
 *   /fixed?n=N      → N pattern bytes with Content-Length
 *   /hop            → a response carrying hop-by-hop headers that must not reach the client
 *   /never          → never answers
 *   anything else   → JSON describing the request (method, url, headers, body sha256)
 */
export async function startOrigin(handler?: http.RequestListener, tls?: { key: string; cert: string }): Promise<Origin> {
  const requests: OriginRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const listener: http.RequestListener = (req, res) => {
    if (handler) {
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, bodyLength: -1, bodySha: '' });
      handler(req, res);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://origin');
    const n = Number(url.searchParams.get('n') ?? '0');
    if (url.pathname === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (url.pathname === '/never') return;
    const hash = createHash('sha256');
    let bodyLength = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bodyLength += c.length;
    });
    req.on('end', () => {
      const info: OriginRequest = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, bodyLength, bodySha: hash.digest('hex') };
      requests.push(info);
      if (url.pathname === '/hello') {
        res.end('hello');
      } else if (url.pathname === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const data = pattern(n);
        let off = 0;
        const write = (): void => {
          while (off < data.length) {
            const chunk = data.subarray(off, off + 65536);
            off += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', write);
              return;
            }
          }
          res.end();
        };
        write();
      } else if (url.pathname === '/fixed') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        res.end(pattern(n));
      } else if (url.pathname === '/hop') {
        res.writeHead(200, [
          ['Connection', 'X-Resp-Hop'],
          ['X-Resp-Hop', '1'],
          ['Keep-Alive', 'timeout=7, max=3'],
          ['Proxy-Authenticate', 'Basic realm="origin"'],
          ['Trailer', 'X-T'],
          ['X-Resp-Keep', '1'],
          ['Content-Type', 'text/plain'],
        ].flat());
        res.end('hop');
      } else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(info));
      }
    });
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, listener) : http.createServer(listener);
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A header's values from a raw header list, case-insensitively. */
export function rawHeader(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]);
  return out;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `socks-relay-${prefix}-`));
}

/** A self-signed certificate for 127.0.0.1/localhost made with openssl; undefined when openssl is missing. */
export async function selfSignedCert(dir: string): Promise<{ key: string; cert: string } | undefined> {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  let r;
  try {
    r = await run(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { timeoutMs: 20_000 },
    );
  } catch {
    return undefined;
  }
  if (r.code !== 0) return undefined;
  return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
}

/**
 * A git smart-HTTP server: `git http-backend` run as CGI for each request, serving the bare
 * repositories under `root` at http://127.0.0.1:PORT/<name>.git.
 */
export async function startGitServer(root: string): Promise<Origin> {
  return startOrigin((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git');
    const env: NodeJS.ProcessEnv = {
      ...cleanEnv(),
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    };
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', () => clearTimeout(timer));
    child.on('error', () => res.destroy());
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let inBody = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (inBody) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const sep = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
      if (sep < 0) return;
      const sepLen = head[sep] === 0x0d ? 4 : 2;
      let status = 200;
      for (const line of head.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      inBody = true;
      res.write(head.subarray(sep + sepLen));
    });
    child.stdout.on('end', () => res.end());
  });
}

/** Makes a bare repository with a few commits and a sizeable file; returns its HEAD commit. */
export async function makeBareRepo(root: string, name: string): Promise<string> {
  const work = path.join(root, `${name}-work`);
  fs.mkdirSync(work);
  const git = async (args: string[], cwd = work): Promise<string> => {
    const r = await run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { env: cleanEnv(), timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`git ${args.join(' ')} in ${cwd}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await git(['-C', work, 'init', '-q']);
  fs.writeFileSync(path.join(work, 'README'), 'hello through the proxy\n');
  fs.writeFileSync(path.join(work, 'blob.bin'), pattern(300_000, 7));
  await git(['-C', work, 'add', '.']);
  await git(['-C', work, 'commit', '-q', '-m', 'first']);
  fs.writeFileSync(path.join(work, 'second.txt'), 'second\n');
  await git(['-C', work, 'add', '.']);
  await git(['-C', work, 'commit', '-q', '-m', 'second']);
  const head = await git(['-C', work, 'rev-parse', 'HEAD']);
  await git(['clone', '-q', '--bare', work, path.join(root, `${name}.git`)]);
  return head;
}
