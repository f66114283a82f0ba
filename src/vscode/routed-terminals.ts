/**
 * "New Terminal Through…": a terminal with a route of its own. It gets credentials of its own (so the
 * relay knows its sessions: the Sessions view names and groups them) and its route replaces the default
 * route for its sessions; rules still decide first. The route lives as long as the terminal.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { proxyEnvironment, proxyUrl } from '../ui/env';
import { newTerminalCredentials, routeChoices, routeLabel, TerminalRoute, terminalName } from '../ui/terminal-routes';
import type { ProxyController } from './controller';
import { Disposables } from './disposable';
import type { TerminalEnvironment } from './terminal-env';
import type { RelaunchOffer } from './relaunch-offer';

export class RoutedTerminals extends Disposables {
  private readonly open = new Map<vscode.Terminal, string>();

  constructor(
    private readonly controller: ProxyController,
    private readonly environment: TerminalEnvironment,
    private readonly relaunch: RelaunchOffer,
  ) {
    super();
    this.register(
      vscode.window.onDidCloseTerminal((t) => {
        const username = this.open.get(t);
        if (username === undefined) return;
        this.open.delete(t);
        void controller.removeTerminalRoute(username);
      }),
    );
    this.onDispose(() => this.open.clear());
  }

  /** Asks for the route (unless given) and opens the terminal. */
  async create(action?: string): Promise<vscode.Terminal | undefined> {
    const c = this.controller;
    if (action === undefined) {
      const pick = await vscode.window.showQuickPick(
        routeChoices(c.settings, c.egress.available).map((r) => ({ ...r })),
        { title: 'SOCKS Relay: New Terminal Through…', placeHolder: 'Sessions from the new terminal go (after the rules) through…' },
      );
      if (!pick) return undefined;
      action = pick.action;
    }
    if (!c.running && !(await c.start())) return undefined;
    const listener = c.listener();
    if (!listener) return undefined;
    const name = terminalName(action, vscode.window.terminals.map((t) => t.name));
    const route: TerminalRoute = { ...newTerminalCredentials(), name, action };
    try {
      await c.addTerminalRoute(route);
    } catch (err) {
      void vscode.window.showErrorMessage(`SOCKS Relay: could not give the terminal its route: ${describeError(err)}`);
      return undefined;
    }
    const own = { host: listener.host, port: listener.port, credentials: { username: route.username, password: route.password } };
    const s = c.settings;
    const vars = proxyEnvironment(own, s.terminalVariables.length > 0 ? s.terminalVariables : ['ALL_PROXY'], s.noProxy, s.http);
    const via = action === 'block' ? 'nowhere unless a rule routes them' : `through ${routeLabel(action)}`;
    const terminal = await this.environment.openWithOwnValues(vars, `SOCKS Relay: this terminal's sessions go ${via} (rules first) as user \`${route.username}\``, () => {
      const t = vscode.window.createTerminal({
        name,
        env: vars,
        iconPath: new vscode.ThemeIcon('radio-tower'),
        message: `SOCKS Relay: this terminal's sessions go ${via} (rules first), via ${proxyUrl('socks5h', own, false)} as user ${route.username}.`,
      });
      this.open.set(t, route.username);
      this.relaunch.exempt(t);
      t.show();
      return t;
    });
    return terminal;
  }
}
