import * as vscode from 'vscode';
import { configTree } from '../ui/config-model';
import { editorProxyText } from '../ui/editor-proxy';
import { sessionTree } from '../ui/sessions-model';
import { SECTION } from '../ui/setting-keys';
import type { SessionGrouping } from '../ui/settings';
import type { ViewNode } from '../ui/view-node';
import type { ProxyController } from './controller';
import { Disposables } from './disposable';
import { NodeTreeProvider } from './tree';

const REFRESH_MS = 1000;

/** The Configuration view: listener, upstreams and rules, rebuilt whenever settings or state change. */
export class ConfigView extends Disposables {
  constructor(controller: ProxyController) {
    super();
    const provider = this.register(
      new NodeTreeProvider(() =>
        configTree({
          settings: controller.settings,
          state: controller.state,
          listening: controller.listeningText(),
          error: controller.error,
          ignored: controller.source.ignored,
          ...(controller.egress.available ? { egress: controller.egress.view } : {}),
          credentialsForced: controller.credentialsForced,
          ...(controller.gssapiStatus ? { gssapi: controller.gssapiStatus } : {}),
          ...(controller.sharing ? { sharing: controller.sharing } : {}),
          editorTraffic: { ...editorProxyText(controller.editorProxy.plan, controller.settings.editorTraffic), routed: controller.editorProxy.plan.apply },
        }),
      ),
    );
    this.register(vscode.window.createTreeView('socksRelay.config', { treeDataProvider: provider, showCollapseAll: false }));
    this.register(controller.onDidChange(() => provider.refresh()));
  }
}

/**
 * The Sessions view. Registry events only mark it dirty; a 1 s timer repaints while the view is visible
 * and something changed or sessions are live (their counters and ages move), so a busy proxy costs one
 * repaint a second, not one per event, and the tree does not flicker.
 */
export class SessionsView extends Disposables {
  private filter = '';
  private dirty = true;
  private readonly provider: NodeTreeProvider;
  private readonly view: vscode.TreeView<ViewNode>;

  constructor(private readonly controller: ProxyController) {
    super();
    this.provider = new NodeTreeProvider(() => {
      const source = controller.sessions;
      if (!controller.running && source.recentlyClosed().length === 0) return [];
      return sessionTree(source.snapshot(), source.recentlyClosed(), { filter: this.filter, grouping: this.grouping, now: Date.now(), terminals: controller.terminalNames() });
    });
    this.view = vscode.window.createTreeView('socksRelay.sessions', { treeDataProvider: this.provider, showCollapseAll: true });
    const timer = setInterval(() => {
      if (this.view.visible && (this.dirty || controller.sessions.size > 0)) this.repaint();
    }, REFRESH_MS);
    // Disposed in this order: the timer, the listeners, then the view and its provider.
    this.onDispose(() => clearInterval(timer));
    this.register(
      controller.onDidChangeSessions(() => {
        this.dirty = true;
      }),
    );
    this.register(controller.onDidChange(() => this.repaint()));
    this.register(this.view.onDidChangeVisibility((e) => e.visible && this.repaint()));
    // Any socksRelay.sessions.* key (grouping, how many closed ones to keep).
    this.register(vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration(`${SECTION}.sessions`) && this.repaint()));
    this.register(this.view);
    this.register(this.provider);
    this.updateMessage();
  }

  private get grouping(): SessionGrouping {
    return this.controller.settings.sessionGrouping;
  }

  setFilter(filter: string): void {
    this.filter = filter.trim();
    void vscode.commands.executeCommand('setContext', 'socksRelay.sessionsFiltered', this.filter !== '');
    this.repaint();
  }

  get currentFilter(): string {
    return this.filter;
  }

  repaint(): void {
    this.dirty = false;
    this.updateMessage();
    this.provider.refresh();
  }

  reveal(): void {
    void vscode.commands.executeCommand('socksRelay.sessions.focus');
  }

  private updateMessage(): void {
    const t = this.controller.sessions.totals();
    this.view.description = this.controller.running ? `${t.active} active` : undefined;
    this.view.message = this.filter ? `Filtered by "${this.filter}"` : undefined;
  }
}
