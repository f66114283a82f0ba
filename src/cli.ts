import { parseArgs } from 'node:util';
import { ProxyServer } from './core/server';
import { formatBytes, formatDuration } from './core/format';
import { Logger } from './core/log';
import { formatEndpoint } from './core/address';
import { describeError } from './core/errors';
import { readFileSync } from 'node:fs';
import { buildRouter, cliRoutingConfig, RuleRouter } from './core/routing';
import { redactUrl } from './core/upstream/url';
import { DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULTS } from './core/defaults';
import cluster from 'node:cluster';

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
  --max-sessions N       concurrent session limit (default ${DEFAULTS.maxSessions})
  --idle-timeout SEC     close sessions idle this long (default ${DEFAULT_IDLE_TIMEOUT_SECONDS})
  --log-level LEVEL      debug | info | warn | error (default ${DEFAULT_LOG_LEVEL})
  --no-socks4            refuse SOCKS4/4a clients (they cannot send a password)
  --no-http              refuse HTTP proxy clients (CONNECT and absolute-URI requests)
  --upstream URL         send traffic through this upstream (socks5://, socks5h://, socks4://, socks4a://,
                         http://, https://, direct); repeat it for a chain, in order. It is the default route.
  --rules FILE           routing rules and named upstreams as JSON (see README "Upstreams and routing rules");
                         re-read on SIGHUP
  --workers N            serve from N processes (node:cluster, the kernel spreads connections; each process
                         has its own session limit and log of sessions) (default ${DEFAULT_WORKERS})
  -h, --help             show this help
`;

const levels = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof levels)[number];

function makeLogger(min: Level): Logger {
  const at = levels.indexOf(min);
  const line = (level: Level) => (message: string) => {
    if (levels.indexOf(level) < at) return;
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);
  };
  return { debugEnabled: at === 0, debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

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
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        user: { type: 'string' },
        pass: { type: 'string' },
        'max-sessions': { type: 'string' },
        'idle-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        'no-socks4': { type: 'boolean' },
        'no-http': { type: 'boolean' },
        upstream: { type: 'string', multiple: true },
        rules: { type: 'string' },
        workers: { type: 'string' },
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
  const password = values.pass ?? process.env.SOCKS_RELAY_PASS;
  if ((values.user === undefined) !== (password === undefined)) fail('--user and --pass go together');
  const logger = makeLogger(level);
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
    return buildRouter(cliRoutingConfig(values.upstream ?? [], fileConfig), { connectTimeoutMs: DEFAULTS.connectTimeoutMs, logger });
  };
  // Without --upstream/--rules the server keeps its built-in direct router (route "direct").
  let router: RuleRouter | undefined;
  try {
    if (rulesFile !== undefined || values.upstream !== undefined) router = loadRouter();
  } catch (err) {
    fail(redactUrl(err instanceof Error ? err.message : String(err)));
  }
  const server = new ProxyServer(
    {
      host: values.host ?? DEFAULTS.host,
      port: intOption(values.port, 'port', DEFAULTS.port, 0, 65535),
      users: values.user !== undefined && password !== undefined ? [{ username: values.user, password }] : [],
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
    address = await server.listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'EADDRINUSE' ? `port ${values.port ?? DEFAULTS.port} is already in use; pick another with --port (0 picks a free one)` : describeError(err));
  }
  const where = formatEndpoint({ host: address.address, port: address.port });
  // With --workers every process listens on the same port; one line is enough.
  if (cluster.isPrimary || cluster.worker?.id === 1) process.stdout.write(`SOCKS Relay listening on ${where} (socks5://${where}${server.options.http ? `, http://${where}` : ''})${values.user ? ' with username/password authentication' : ''}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    // A second Ctrl-C forces the exit; a worker ignores it, since Ctrl-C reaches it both from the
    // terminal and from the primary forwarding it, and the first one already started a clean shutdown.
    if (stopping && cluster.isWorker) return;
    if (stopping) process.exit(1);
    stopping = true;
    logger.info(`${signal}: shutting down`);
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
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
