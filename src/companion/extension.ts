/**
 * SOCKS Relay: Egress, the companion that runs on the user's computer (extensionKind "ui"). A SOCKS Relay
 * in a remote window asks it, by command, to run the egress agent: the remote's sessions on the route
 * "This computer" then leave from here. It asks the user before a remote window may use this network.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { EgressAgent } from '../core/egress/agent';
import { CompanionAgents, Consent } from './agents';
import { COMMANDS } from './contract';

const REMEMBERED = 'socksRelayEgress.allowedWindows';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('SOCKS Relay Egress', { log: true });
  const logger = { debug: (m: string) => log.debug(m), info: (m: string) => log.info(m), warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) };
  const remembered = (): string[] => context.globalState.get<string[]>(REMEMBERED, []);
  const agents = new CompanionAgents({
    ask: async (window): Promise<Consent> => {
      const once = 'Allow';
      const always = 'Always Allow for This Remote';
      const pick = await vscode.window.showWarningMessage(
        `Let the remote window "${window}" send network traffic out from this computer?`,
        { modal: true, detail: 'SOCKS Relay in that window will route the sessions you send to "This computer" through here: they reach what this computer reaches (its VPN, intranet and internet).' },
        once,
        always,
      );
      return pick === always ? 'always' : pick === once ? 'once' : undefined;
    },
    isRemembered: (window) => remembered().includes(window),
    remember: async (window) => {
      await context.globalState.update(REMEMBERED, [...new Set([...remembered(), window])]);
    },
    createAgent: (url, token) => new EgressAgent({ url, token, logger, userAgent: `SOCKS Relay companion (${os.hostname()})` }),
    log: (m) => log.info(m),
  });
  context.subscriptions.push(
    log,
    { dispose: () => agents.dispose() },
    vscode.commands.registerCommand(COMMANDS.connect, (arg: unknown) => agents.connect(arg)),
    vscode.commands.registerCommand(COMMANDS.disconnect, (arg: unknown) => agents.disconnect(arg)),
    vscode.commands.registerCommand(COMMANDS.status, () => agents.status()),
  );
}

export function deactivate(): void {
  // The agents stop with the subscriptions.
}
