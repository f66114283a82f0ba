import { parseArgs } from 'node:util';
import { ProxyServer } from './core/server';
import { formatBytes, formatDuration } from './core/format';
import { Logger } from './core/log';
import { formatEndpoint } from './core/address';
import { describeError } from './core/errors';

const USAGE = `Usage: socks-relay [options]

Runs the SOCKS Relay proxy headless (SOCKS5 on the given port).

Options:
  --host ADDR            address to listen on (default 127.0.0.1; use :: for all IPv6+IPv4)
  --port N               port to listen on (default 1080; 0 picks a free one)
  --user NAME            require username/password authentication with this user
  --pass SECRET          the password (or set SOCKS_RELAY_PASS so it stays out of the process list)
  --max-sessions N       concurrent session limit (default 4096)
  --idle-timeout SEC     close sessions idle this long (default 600)
  --log-level LEVEL      debug | info | warn | error (default info)
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
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
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
  const level = (values['log-level'] ?? 'info') as Level;
  if (!levels.includes(level)) fail(`--log-level must be one of ${levels.join(', ')}`);
  const password = values.pass ?? process.env.SOCKS_RELAY_PASS;
  if ((values.user === undefined) !== (password === undefined)) fail('--user and --pass go together');
  const logger = makeLogger(level);
  const server = new ProxyServer(
    {
      host: values.host ?? '127.0.0.1',
      port: intOption(values.port, 'port', 1080, 0, 65535),
      users: values.user !== undefined && password !== undefined ? [{ username: values.user, password }] : [],
      maxSessions: intOption(values['max-sessions'], 'max-sessions', 4096, 1),
      idleTimeoutMs: intOption(values['idle-timeout'], 'idle-timeout', 600, 0) * 1000,
    },
    logger,
  );
  server.registry.on('close', (s) => {
    const what = `${s.command ?? 'handshake'} ${s.destination ?? ''}`.trim();
    logger.info(`#${s.id} ${s.client} ${what} via ${s.route ?? '-'}: ${s.outcome} (↑${formatBytes(s.bytesUp)} ↓${formatBytes(s.bytesDown)}, ${formatDuration(Date.now() - s.startedAt)})`);
  });
  let address;
  try {
    address = await server.listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'EADDRINUSE' ? `port ${values.port ?? 1080} is already in use; pick another with --port (0 picks a free one)` : describeError(err));
  }
  const where = formatEndpoint({ host: address.address, port: address.port });
  process.stdout.write(`SOCKS Relay listening on ${where} (socks5://${where})${values.user ? ' with username/password authentication' : ''}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info(`${signal}: shutting down`);
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
