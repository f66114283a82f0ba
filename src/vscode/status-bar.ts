import * as vscode from 'vscode';
import { statusView } from '../ui/status';
import type { ProxyController } from './controller';
import { Disposables } from './disposable';

/** Session and traffic counters in the status bar, repainted once a second while running. */
export class StatusBar extends Disposables {
  private readonly item: vscode.StatusBarItem;
  private last = '';

  constructor(private readonly controller: ProxyController) {
    super();
    this.item = this.register(vscode.window.createStatusBarItem('socksRelay.status', vscode.StatusBarAlignment.Left, 100));
    this.item.name = 'SOCKS Relay';
    this.item.command = 'socksRelay.showActions';
    this.paint();
    this.item.show();
    this.register(controller.onDidChange(() => this.paint()));
    const timer = setInterval(() => controller.running && this.paint(), 1000);
    this.onDispose(() => clearInterval(timer));
  }

  private paint(): void {
    const controller = this.controller;
    const v = statusView({
      state: controller.state,
      totals: controller.running ? controller.sessions.totals() : undefined,
      listener: controller.listeningText(),
      upstream: controller.upstreamText(),
      error: controller.error,
      ignored: controller.source.ignored,
    });
    const key = `${v.text}|${v.tooltip}|${v.background ?? ''}`;
    if (key === this.last) return; // nothing changed: skip the IPC round trip
    this.last = key;
    const item = this.item;
    item.text = v.text;
    item.tooltip = new vscode.MarkdownString(v.tooltip, true);
    item.accessibilityInformation = { label: `SOCKS Relay ${controller.state}: ${v.text.replace(/\$\([^)]*\)\s*/g, '')}` };
    item.backgroundColor = v.background ? new vscode.ThemeColor(v.background === 'error' ? 'statusBarItem.errorBackground' : 'statusBarItem.warningBackground') : undefined;
  }
}
