import * as vscode from 'vscode';
import { proxyEnvironment, proxyUrl } from '../ui/env';
import type { ProxyController } from './controller';

/**
 * Routes new integrated terminals through the proxy: while it runs, the extension's environment
 * variable collection sets ALL_PROXY, HTTP(S)_PROXY and NO_PROXY (and lower-case twins); when it
 * stops they are removed. Not persistent, so a window reloaded without the proxy gets no stale values.
 * Terminals already open when the values change get VS Code's own "relaunch" indicator.
 */
const APPLY: vscode.EnvironmentVariableMutatorOptions = { applyAtProcessCreation: true, applyAtShellIntegration: true };

export function createTerminalRouting(context: vscode.ExtensionContext, controller: ProxyController): vscode.Disposable {
  const collection = context.environmentVariableCollection;
  collection.persistent = false;
  const apply = (): void => {
    collection.clear();
    const listener = controller.listener();
    const s = controller.settings;
    if (!listener || !s.terminalEnabled) return;
    const vars = proxyEnvironment(listener, s.terminalVariables, s.noProxy, s.http);
    // Also applied by shell integration after the shell's rc files ran, so a .bashrc that exports its own
    // proxy does not silently win; at process creation too, for shells without shell integration.
    for (const [name, value] of Object.entries(vars)) collection.replace(name, value, APPLY);
    collection.description = new vscode.MarkdownString(`SOCKS Relay routes this terminal through \`${proxyUrl('socks5h', listener, false)}\` (${controller.upstreamText()})`);
  };
  apply();
  return controller.onDidChange(apply);
}

export function proxiedTerminalEnv(controller: ProxyController): Record<string, string> | undefined {
  const listener = controller.listener();
  if (!listener) return undefined;
  const s = controller.settings;
  return proxyEnvironment(listener, s.terminalVariables.length > 0 ? s.terminalVariables : ['ALL_PROXY'], s.noProxy, s.http);
}
