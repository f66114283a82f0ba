/**
 * Terminals keep the environment they started with: when the proxy starts or its address or credentials
 * change, the ones already open still point elsewhere (or nowhere). This offers to relaunch them, once
 * per change, naming how many; terminals with a route of their own, and ones the user said no for, are
 * left alone.
 */
import * as vscode from 'vscode';
import { proxyUrl } from '../ui/env';
import type { ProxyController } from './controller';
import { Disposables } from './disposable';

const OFF = 'off';

export class RelaunchOffer extends Disposables {
  /** What each open terminal was started with: the proxy URL it got, or "off". */
  private readonly startedWith = new Map<vscode.Terminal, string>();
  private current: string;
  /** Terminals with values of their own ("New Terminal Through…"). */
  private readonly own = new WeakSet<vscode.Terminal>();

  constructor(private readonly controller: ProxyController) {
    super();
    this.current = this.signature();
    for (const t of vscode.window.terminals) this.startedWith.set(t, this.current === OFF ? OFF : 'unknown');
    this.register(vscode.window.onDidOpenTerminal((t) => this.startedWith.set(t, this.current)));
    this.register(vscode.window.onDidCloseTerminal((t) => this.startedWith.delete(t)));
    this.register(controller.onDidChange(() => this.changed()));
  }

  /** A terminal that carries values of its own: never offered a relaunch. */
  exempt(terminal: vscode.Terminal): void {
    this.own.add(terminal);
  }

  private signature(): string {
    const l = this.controller.listener();
    return l && this.controller.settings.terminalEnabled ? proxyUrl('socks5h', l) : OFF;
  }

  private changed(): void {
    const next = this.signature();
    if (next === this.current) return;
    this.current = next;
    if (next === OFF) return; // stopping: nothing a relaunch would fix
    const stale = [...this.startedWith].filter(([t, sig]) => sig !== next && !this.own.has(t) && t.exitStatus === undefined).map(([t]) => t);
    if (stale.length === 0) return;
    const what = stale.length === 1 ? `Terminal "${stale[0].name}" was` : `${stale.length} terminals were`;
    void vscode.window.showInformationMessage(`SOCKS Relay: ${what} opened before the proxy's current address; relaunch to route ${stale.length === 1 ? 'it' : 'them'} through ${proxyUrl('socks5h', this.controller.listener() ?? { host: '', port: 0 }, false)}?`, 'Relaunch', 'Not Now').then(async (pick) => {
      if (pick !== 'Relaunch') {
        // Asked once for this change: they are not offered again until the address changes.
        for (const t of stale) if (this.startedWith.has(t)) this.startedWith.set(t, next);
        return;
      }
      for (const t of stale) {
        if (t.exitStatus !== undefined) continue;
        t.show(false);
        await vscode.commands.executeCommand('workbench.action.terminal.relaunch');
        this.startedWith.set(t, this.current);
      }
    });
  }
}
