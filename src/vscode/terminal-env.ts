import * as vscode from 'vscode';
import { proxyEnvironment, proxyUrl } from '../ui/env';
import type { ProxyController } from './controller';
import { Disposables } from './disposable';

/**
 * Routes new integrated terminals through the proxy: while it runs, the extension's environment
 * variable collection sets ALL_PROXY, HTTP(S)_PROXY and NO_PROXY (and lower-case twins); when it
 * stops they are removed. Not persistent, so a window reloaded without the proxy gets no stale values.
 * Terminals already open when the values change get VS Code's own "relaunch" indicator.
 */
const APPLY: vscode.EnvironmentVariableMutatorOptions = { applyAtProcessCreation: true, applyAtShellIntegration: true };

/** How long a terminal with values of its own may take to start its shell integration. */
const OWN_VALUES_MS = 4_000;

export class TerminalEnvironment extends Disposables {
  private readonly collection: vscode.GlobalEnvironmentVariableCollection;
  /** While set, a terminal with values of its own is starting: they are the collection's for that moment. */
  private borrowed: { vars: Record<string, string>; description: string } | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    context: vscode.ExtensionContext,
    private readonly controller: ProxyController,
  ) {
    super();
    this.collection = context.environmentVariableCollection;
    this.collection.persistent = false;
    this.apply();
    this.register(controller.onDidChange(() => this.apply()));
  }

  private apply(): void {
    const collection = this.collection;
    collection.clear();
    if (this.borrowed) {
      for (const [name, value] of Object.entries(this.borrowed.vars)) collection.replace(name, value, APPLY);
      collection.description = new vscode.MarkdownString(this.borrowed.description);
      return;
    }
    const listener = this.controller.listener();
    const s = this.controller.settings;
    if (!listener || !s.terminalEnabled) return;
    const vars = proxyEnvironment(listener, s.terminalVariables, s.noProxy, s.http);
    // Also applied by shell integration after the shell's rc files ran, so a .bashrc that exports its own
    // proxy does not silently win; at process creation too, for shells without shell integration.
    for (const [name, value] of Object.entries(vars)) collection.replace(name, value, APPLY);
    collection.description = new vscode.MarkdownString(`SOCKS Relay routes this terminal through \`${proxyUrl('socks5h', listener, false)}\` (${this.controller.upstreamText()})`);
  }

  /**
   * Opens a terminal whose variables differ from every other's (its own credentials). VS Code applies one
   * collection to all terminals, after the terminal's own environment and again after the rc files: so
   * for the moment this terminal starts, its values are the collection's, and the window's come back once
   * its shell integration has applied them (or after a few seconds, for shells without it). One at a time.
   */
  openWithOwnValues(vars: Record<string, string>, description: string, create: () => vscode.Terminal): Promise<vscode.Terminal> {
    const run = this.queue.then(async () => {
      this.borrowed = { vars, description };
      this.apply();
      const terminal = create();
      try {
        await shellIntegrationOf(terminal, OWN_VALUES_MS);
      } finally {
        this.borrowed = undefined;
        this.apply();
      }
      return terminal;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Resolves once `terminal` has shell integration, it closes, or `ms` pass. */
function shellIntegrationOf(terminal: vscode.Terminal, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const subscriptions: vscode.Disposable[] = [];
    const done = (): void => {
      clearTimeout(timer);
      for (const d of subscriptions) d.dispose();
      resolve();
    };
    const timer = setTimeout(done, ms);
    // onDidChangeTerminalShellIntegration is VS Code 1.93+; older hosts wait the timeout.
    const onShell = (vscode.window as { onDidChangeTerminalShellIntegration?: vscode.Event<{ terminal: vscode.Terminal }> }).onDidChangeTerminalShellIntegration;
    if (onShell) subscriptions.push(onShell((e) => e.terminal === terminal && done()));
    subscriptions.push(vscode.window.onDidCloseTerminal((t) => t === terminal && done()));
    if ((terminal as { shellIntegration?: unknown }).shellIntegration) done();
  });
}

export function proxiedTerminalEnv(controller: ProxyController): Record<string, string> | undefined {
  const listener = controller.listener();
  if (!listener) return undefined;
  const s = controller.settings;
  return proxyEnvironment(listener, s.terminalVariables.length > 0 ? s.terminalVariables : ['ALL_PROXY'], s.noProxy, s.http);
}
