/** `socks-relay egress-agent`: the egress tunnel's agent, headless, for when no desktop VS Code runs it. */
import { parseArgs } from 'node:util';
import { Level, levels, makeLogger } from './cli-log';
import { DEFAULTS } from './core/defaults';
import { EgressAgent } from './core/egress/agent';
import { agentUrls, EGRESS_TOKEN_ENV, validToken } from './core/egress/protocol';
import { describeError } from './core/errors';

const USAGE = `Usage: socks-relay egress-agent --connect URL

Lets a SOCKS Relay on a remote host send the sessions of its route "this computer" (egress://) out from
this computer's network. Run it where your network is (your laptop); URL is the relay's egress endpoint
as this computer reaches it through a port forward:
  http://127.0.0.1:PORT/            a forwarded port (VS Code port forwarding, ssh -L PORT:127.0.0.1:PORT)
  https://HOST/proxy/PORT/          code-server's or a Codespace's forwarded-port address

The secret comes from ${EGRESS_TOKEN_ENV} (the relay shows the command with it); it is never sent, only
proved. The agent reconnects by itself when the tunnel drops; stop it with Ctrl-C.

Options:
  --connect URL          the endpoint's forwarded base address (required)
  --log-level LEVEL      debug | info | warn | error (default info)
  -h, --help             show this help
`;

function fail(message: string): never {
  process.stderr.write(`socks-relay egress-agent: ${message}\n\n${USAGE}`);
  process.exit(2);
}

export async function runEgressAgent(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { connect: { type: 'string' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    fail(describeError(err));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const level = (values['log-level'] ?? 'info') as Level;
  if (!levels.includes(level)) fail(`--log-level must be one of ${levels.join(', ')}`);
  if (values.connect === undefined) fail('--connect URL is required');
  try {
    agentUrls(values.connect);
  } catch (err) {
    fail(`--connect: ${describeError(err)}`);
  }
  const token = process.env[EGRESS_TOKEN_ENV];
  if (token === undefined) fail(`set ${EGRESS_TOKEN_ENV} to the secret the relay shows`);
  if (!validToken(token)) fail(`${EGRESS_TOKEN_ENV} is not a secret the relay made (16+ characters of A-Z, a-z, 0-9, "-", "_")`);
  const logger = makeLogger(level);
  const agent = new EgressAgent({ url: values.connect, token, logger, connectTimeoutMs: DEFAULTS.connectTimeoutMs });
  let last = '';
  agent.on('state', (s) => {
    // One line per change of state (not per retry of the same failure).
    const line = `${s.status}${s.reason !== undefined ? `: ${s.reason}` : ''}`;
    if (line === last) return;
    last = line;
    if (s.status === 'connected') process.stdout.write(`egress agent connected to ${agent.target}\n`);
    else if (s.status === 'refused') logger.error(`egress agent: ${s.reason ?? 'refused'}`);
  });
  agent.start();
  const stop = (signal: string): void => {
    logger.info(`${signal}: stopping the egress agent`);
    agent.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The agent's timers are unref'd: keep the process for as long as it should run.
  setInterval(() => undefined, 1 << 30);
  await new Promise<never>(() => undefined);
}
