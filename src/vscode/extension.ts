import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { ProxyController } from './controller';
import { Secrets } from './secrets';
import { createStatusBar } from './status-bar';
import { createTerminalRouting } from './terminal-env';
import { createConfigView, SessionsView } from './views';

let controller: ProxyController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('SOCKS Relay', { log: true });
  controller = new ProxyController(log, new Secrets(context.secrets));
  const sessions = new SessionsView(controller);
  context.subscriptions.push(
    log,
    controller,
    sessions,
    createConfigView(controller),
    createStatusBar(controller),
    createTerminalRouting(context, controller),
  );
  registerCommands(context, controller, sessions, log);
  await vscode.commands.executeCommand('setContext', 'socksRelay.running', false);
  if (controller.settings.autoStart) await controller.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
