import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ProxyController } from './controller';
import { Secrets } from './secrets';
import { StatusBar } from './status-bar';
import { TerminalEnvironment } from './terminal-env';
import { ConfigView, SessionsView } from './views';
import { RoutedTerminals } from './routed-terminals';
import { RelaunchOffer } from './relaunch-offer';

let controller: ProxyController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('SOCKS Relay', { log: true });
  controller = new ProxyController(log, new Secrets(context.secrets), context.workspaceState, context.globalState);
  const sessions = new SessionsView(controller);
  context.subscriptions.push(
    log,
    controller,
    sessions,
    new ConfigView(controller),
    new StatusBar(controller),
  );
  const environment = new TerminalEnvironment(context, controller);
  const relaunch = new RelaunchOffer(controller);
  const terminals = new RoutedTerminals(controller, environment, relaunch);
  context.subscriptions.push(environment, relaunch);
  context.subscriptions.push(terminals);
  registerCommands(context, controller, sessions, log, terminals);
  await vscode.commands.executeCommand('setContext', 'socksRelay.running', false);
  await vscode.commands.executeCommand('setContext', 'socksRelay.egressAvailable', controller.egress.available);
  await controller.source.init();
  // Joins the user's one relay: attach to the window that runs it, or own it.
  await controller.init();
  // Not awaited: a folder value that widens exposure asks first, and activation must not wait on a dialog.
  if (controller.settings.autoStart) void controller.start();
}

export async function deactivate(): Promise<void> {
  await controller?.shutdown();
  controller = undefined;
}
