import * as vscode from 'vscode';
import { statusView } from '../ui/status';
import type { ProxyController } from './controller';

/** Session and traffic counters in the status bar, repainted once a second while running. */
export function createStatusBar(controller: ProxyController): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('socksRelay.status', vscode.StatusBarAlignment.Left, 100);
  item.name = 'SOCKS Relay';
  item.command = 'socksRelay.showActions';
  let last = '';
  const paint = (): void => {
    const v = statusView({
      state: controller.state,
      totals: controller.running ? controller.registry.totals() : undefined,
      listener: controller.listeningText(),
      upstream: controller.upstreamText(),
      error: controller.error,
      ignored: controller.source.ignored,
    });
    const key = `${v.text}|${v.tooltip}|${v.background ?? ''}`;
    if (key === last) return; // nothing changed: skip the IPC round trip
    last = key;
    item.text = v.text;
    const md = new vscode.MarkdownString(v.tooltip, true);
    item.tooltip = md;
    item.accessibilityInformation = { label: `SOCKS Relay ${controller.state}: ${v.text.replace(/\$\([^)]*\)\s*/g, '')}` };
    item.backgroundColor = v.background ? new vscode.ThemeColor(v.background === 'error' ? 'statusBarItem.errorBackground' : 'statusBarItem.warningBackground') : undefined;
  };
  paint();
  item.show();
  const timer = setInterval(() => controller.running && paint(), 1000);
  return vscode.Disposable.from(item, controller.onDidChange(paint), { dispose: () => clearInterval(timer) });
}
