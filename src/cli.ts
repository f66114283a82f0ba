import { parseArgs } from 'node:util';
import { ProxyServer } from './core/server';
import { formatBytes, formatDuration } from './core/format';
import { Level, levels, makeLogger } from './cli-log';
import { formatEndpoint } from './core/address';
import { describeError } from './core/errors';
import { readFileSync } from 'node:fs';
import { buildRouter, cliRoutingConfig, RuleRouter } from './core/routing';
import { redactUrl } from './core/upstream/url';
import { DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULTS } from './core/defaults';
import cluster from 'node:cluster';
import { EgressEndpoint } from './core/egress/endpoint';
import { EGRESS_TOKEN_ENV, randomToken, validToken } from './core/egress/protocol';
import { runEgressAgent } from './egress-agent-cli';

/** CLI-only defaults; the engine's come from core/defaults.ts. */
const DEFAULT_LOG_LEVEL = 'info';
const DEFAULT_WORKERS = 1;

const USAGE = `Usage: socks-relay [options]

Runs the SOCKS Relay proxy headless: SOCKS5, SOCKS4/4a and HTTP proxy clients on one port.

Options:
  --host ADDR            address to listen on (default ${DEFAULTS.host}; use :: for all IPv6+IPv4)
  --port N               port to listen on (default ${DEFAULTS.port}; 0 picks a free one)
  --user NAME            require username/password authentication with this user
  --pass SECRET          the password (or set SOCKS_RELAY_PASS so it stays out of the process list)
  --gssapi-keytab FILE   also accept SOCKS5 GSSAPI (Kerberos, RFC 1961) clients, with the service key in this
                         keytab; the principal becomes the session's user. Upstreams take ?gssapi (see README)
  --max-sessions N       concurrent session limit (default ${DEFAULTS.maxSessions})
  --idle-timeout SEC     close sessions idle this long (default ${DEFAULT_IDLE_TIMEOUT_SECONDS})
  --log-level LEVEL      debug | info | warn | error (default ${DEFAULT_LOG_LEVEL})
  --no-socks4            refuse SOCKS4/4a clients (they cannot send a password)
  --no-http              refuse HTTP proxy clients (CONNECT and absolute-URI requests)
  --upstream URL         send traffic through this upstream (socks5://, socks5h://, socks4://, socks4a://,
                         http://, https://, direct); repeat it for a chain, in order. It is the default route.
  --rules FILE           routing rules and named upstreams as JSON (see README "Upstreams and routing rules");
                         re-read on SIGHUP
  --egress-listen HOST:PORT
                         open the egress tunnel's endpoint here (loopback; port 0 picks one) for the route
                         egress:// (this computer): an agent on your computer connects to it through a port
                         forward (socks-relay egress-agent). The secret comes from ${EGRESS_TOKEN_ENV}, or is
                         generated and printed with the agent's command. While a route goes through it the
                         listener requires a username and password (generated for the run unless --user).
  --workers N            serve from N processes (node:cluster, the kernel spreads connections; each process
                         has its own session limit and log of sessions) (default ${DEFAULT_WORKERS})
  -h, --help             show this help

Commands:
  socks-relay egress-agent --connect URL
                         the other end of the egress tunnel: run it on the computer whose network the
                         remote relay should use (see socks-relay egress-agent --help)
`;

function fail(message: string): never {
  process.stderr.write(`socks-relay: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function intOption(value: string | undefined, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'egress-agent') {
    await runEgressAgent(process.argv.slice(3));
    return;
  }
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        user: { type: 'string' },
        pass: { type: 'string' },
        'gssapi-keytab': { type: 'string' },
        'max-sessions': { type: 'string' },
        'idle-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        'no-socks4': { type: 'boolean' },
        'no-http': { type: 'boolean' },
        upstream: { type: 'string', multiple: true },
        rules: { type: 'string' },
        workers: { type: 'string' },
        'egress-listen': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(describeError(err));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const workers = intOption(values.workers, 'workers', DEFAULT_WORKERS, 1, 64);
  if (workers > 1 && cluster.isPrimary) {
    runWorkers(workers);
    return;
  }
  const level = (values['log-level'] ?? DEFAULT_LOG_LEVEL) as Level;
  if (!levels.includes(level)) fail(`--log-level must be one of ${levels.join(', ')}`);
  let password = values.pass ?? process.env.SOCKS_RELAY_PASS;
  let user = values.user;
  if ((user === undefined) !== (password === undefined)) fail('--user and --pass go together');
  const logger = makeLogger(level);
  let egress: EgressEndpoint | undefined;
  let egressToken: string | undefined;
  if (values['egress-listen'] !== undefined) {
    if (workers > 1) fail('--egress-listen serves one agent: it cannot be combined with --workers');
    const where = parseHostPort(values['egress-listen']);
    if (!where) fail('--egress-listen must be HOST:PORT, e.g. 127.0.0.1:0');
    const fromEnv = process.env[EGRESS_TOKEN_ENV];
    if (fromEnv !== undefined && !validToken(fromEnv)) fail(`${EGRESS_TOKEN_ENV} must be at least 16 characters of A-Z, a-z, 0-9, "-" and "_"`);
    egressToken = fromEnv ?? randomToken();
    egress = new EgressEndpoint({ host: where.host, port: where.port, token: egressToken, logger, connectTimeoutMs: DEFAULTS.connectTimeoutMs });
  }
  const rulesFile = values.rules;
  const loadRouter = (): RuleRouter => {
    let fileConfig: unknown;
    if (rulesFile !== undefined) {
      try {
        fileConfig = JSON.parse(readFileSync(rulesFile, 'utf8'));
      } catch (err) {
        throw new Error(`--rules ${rulesFile}: ${redactUrl(describeError(err))}`, { cause: err });
      }
    }
    return buildRouter(cliRoutingConfig(values.upstream ?? [], fileConfig), { connectTimeoutMs: DEFAULTS.connectTimeoutMs, logger, ...(egress ? { egress } : {}) });
  };
  // Without --upstream/--rules the server keeps its built-in direct router (route "direct").
  let router: RuleRouter | undefined;
  try {
    if (rulesFile !== undefined || values.upstream !== undefined) router = loadRouter();
  } catch (err) {
    fail(redactUrl(err instanceof Error ? err.message : String(err)));
  }
  // Other users of a shared remote host must not reach this computer's network through the relay.
  let generated = false;
  if (router?.usesEgress && user === undefined) {
    user = 'relay';
    password = randomToken(18);
    generated = true;
  }
  const server = new ProxyServer(
    {
      host: values.host ?? DEFAULTS.host,
      port: intOption(values.port, 'port', DEFAULTS.port, 0, 65535),
      users: user !== undefined && password !== undefined ? [{ username: user, password }] : [],
      ...(values['gssapi-keytab'] !== undefined ? { gssapi: { keytab: values['gssapi-keytab'] } } : {}),
      maxSessions: intOption(values['max-sessions'], 'max-sessions', DEFAULTS.maxSessions, 1),
      idleTimeoutMs: intOption(values['idle-timeout'], 'idle-timeout', DEFAULT_IDLE_TIMEOUT_SECONDS, 0) * 1000,
      socks4: !values['no-socks4'],
      http: !values['no-http'],
    },
    logger,
    router,
  );
  if (router) logger.info(`routing: ${router.summary()}`);
  if (rulesFile !== undefined) {
    // Live reload: new sessions use the new rules, open ones keep their route.
    process.on('SIGHUP', () => {
      try {
        const next = loadRouter();
        if (next.usesEgress && user === undefined) throw new Error('the new rules route through egress://, which needs the listener to require credentials: restart with them');
        server.setRouter(next);
        logger.info(`SIGHUP: reloaded ${rulesFile}: ${next.summary()}`);
      } catch (err) {
        logger.error(`SIGHUP: kept the previous rules: ${redactUrl(err instanceof Error ? err.message : String(err))}`);
      }
    });
  }
  server.registry.on('close', (s) => {
    const what = `${s.command ?? 'handshake'} ${s.destination ?? ''}`.trim();
    logger.info(`#${s.id} ${s.client} ${what} via ${s.route ?? '-'}: ${s.outcome} (↑${formatBytes(s.bytesUp)} ↓${formatBytes(s.bytesDown)}, ${formatDuration(Date.now() - s.startedAt)})`);
  });
  let address;
  try {
    if (egress) await egress.listen();
    address = await server.listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'EADDRINUSE' ? `port ${values.port ?? DEFAULTS.port} is already in use; pick another with --port (0 picks a free one)` : describeError(err));
  }
  const where = formatEndpoint({ host: address.address, port: address.port });
  // With --workers every process listens on the same port; one line is enough.
  if (cluster.isPrimary || cluster.worker?.id === 1) process.stdout.write(`SOCKS Relay listening on ${where} (socks5://${where}${server.options.http ? `, http://${where}` : ''})${user !== undefined ? ' with username/password authentication' : ''}\n`);
  if (generated && user !== undefined && password !== undefined) {
    // On stdout (for the user to copy), never in the log.
    const auth = `${user}:${password}@${where}`;
    process.stdout.write(`Credentials generated for this run (routes go through this computer): ALL_PROXY=socks5h://${auth} HTTPS_PROXY=http://${auth}\n`);
  }
  const egressAddress = egress?.address();
  if (egress && egressAddress) {
    const at = formatEndpoint({ host: egressAddress.address, port: egressAddress.port });
    const secret = process.env[EGRESS_TOKEN_ENV] !== undefined ? `"$${EGRESS_TOKEN_ENV}"` : egressToken;
    process.stdout.write(`Egress endpoint on ${at}. Forward that port to your computer and run there:\n  ${EGRESS_TOKEN_ENV}=${secret} socks-relay egress-agent --connect http://FORWARDED-ADDRESS/\n  (for a forward to the same port: --connect http://${at}/)\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    // A second Ctrl-C forces the exit; a worker ignores it, since Ctrl-C reaches it both from the
    // terminal and from the primary forwarding it, and the first one already started a clean shutdown.
    if (stopping && cluster.isWorker) return;
    if (stopping) process.exit(1);
    stopping = true;
    logger.info(`${signal}: shutting down`);
    void Promise.all([server.close(), egress?.close()]).then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** HOST:PORT, [v6]:PORT; the port may be 0. */
function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** --workers N: forks N copies of this CLI sharing the listening socket; the kernel hands out the connections. */
function runWorkers(n: number): void {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let exitCode = 0;
  let stopping = false;
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('exit', (_worker, code, signal) => {
    if (!stopping) {
      // One worker failed (e.g. the port is taken): stop the others and report its exit code.
      stopping = true;
      exitCode = code ?? (signal ? 1 : 0);
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (sig !== 'SIGHUP') stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
    });
  }
}

void main();
