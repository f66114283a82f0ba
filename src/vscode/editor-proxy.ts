/**
 * socksRelay.editorTraffic: while the relay runs, `http.proxy` (user settings; it takes effect without a
 * reload) points at the relay's HTTP side, so VS Code's and extensions' requests follow the rules and
 * show in the Sessions view. The previous value (including "unset") is kept in global state and put back
 * on stop, on deactivation, and at the next activation after a crash. A value the user changed meanwhile
 * is theirs: it is left alone.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { editorProxyPlan, EditorProxyPlan } from '../ui/editor-proxy';
import type { ListenerInfo } from '../ui/env';
import type { ExtensionSettings } from '../ui/settings';
import { Disposables } from './disposable';

const KEY = 'socksRelay.editorProxy';

/** What it needs of the controller (an interface: the controller owns this, no import circle). */
export interface EditorProxyHost {
  readonly settings: ExtensionSettings;
  readonly running: boolean;
  readonly attached: boolean;
  listener(): ListenerInfo | undefined;
  readonly onDidChange: vscode.Event<void>;
  /** Repaints the views (the plan changed). */
  refresh(): void;
}

interface Applied {
  /** What we wrote. */
  readonly url: string;
  /** What the user settings had before: undefined = unset. */
  readonly previous: unknown;
}

export class EditorProxy extends Disposables {
  private chain: Promise<void> = Promise.resolve();
  private lastPlan: EditorProxyPlan = { apply: false, why: undefined };

  constructor(
    private readonly controller: EditorProxyHost,
    private readonly state: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    this.register(controller.onDidChange(() => this.sync()));
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('socksRelay.editorTraffic') || e.affectsConfiguration('http.useLocalProxyConfiguration')) this.sync();
      }),
    );
  }

  get plan(): EditorProxyPlan {
    return this.lastPlan;
  }

  /** After a crash: a value we wrote is still there while no relay of ours runs. Only the owning window decides. */
  recover(): Promise<void> {
    return this.queue(async () => {
      if (this.state.get<Applied>(KEY) && !this.controller.running && !this.controller.attached) await this.restore('left behind by a window that did not stop cleanly');
    });
  }

  /** Puts the user's value back (stop, deactivation). */
  release(): Promise<void> {
    return this.queue(() => this.restore('the proxy stopped'));
  }

  private sync(): void {
    void this.queue(async () => {
      const c = this.controller;
      const plan = editorProxyPlan({
        enabled: c.settings.editorTraffic,
        // The window that runs the relay writes the (shared) user setting; attached windows only show it.
        listener: c.attached ? undefined : c.listener(),
        remoteName: vscode.env.remoteName,
        web: vscode.env.uiKind === vscode.UIKind.Web,
        useLocalProxyConfiguration: vscode.workspace.getConfiguration('http').get<boolean>('useLocalProxyConfiguration', true),
      });
      const changed = JSON.stringify(plan) !== JSON.stringify(this.lastPlan);
      this.lastPlan = plan;
      if (c.attached) return;
      if (plan.apply) await this.write(plan.url);
      else await this.restore(plan.why ?? 'turned off');
      if (changed && !plan.apply && plan.why !== undefined && c.settings.editorTraffic && c.running) this.log.warn(`editor traffic not routed: ${plan.why}`);
      if (changed) c.refresh();
    });
  }

  private async write(url: string): Promise<void> {
    const config = vscode.workspace.getConfiguration('http');
    const current = config.inspect<string>('proxy')?.globalValue;
    const applied = this.state.get<Applied>(KEY);
    if (applied && current === url) return;
    // The first write keeps the user's value; a later one (a new port) keeps that same original.
    const previous = applied && current === applied.url ? applied.previous : current;
    await this.state.update(KEY, { url, previous } satisfies Applied);
    await config.update('proxy', url, vscode.ConfigurationTarget.Global);
    this.log.info(`editor traffic: http.proxy set to ${url} (was ${previous === undefined ? 'unset' : JSON.stringify(previous)})`);
  }

  private async restore(why: string): Promise<void> {
    const applied = this.state.get<Applied>(KEY);
    if (!applied) return;
    const config = vscode.workspace.getConfiguration('http');
    const current = config.inspect<string>('proxy')?.globalValue;
    if (current === applied.url) {
      await config.update('proxy', applied.previous, vscode.ConfigurationTarget.Global);
      this.log.info(`editor traffic: http.proxy put back to ${applied.previous === undefined ? 'unset' : JSON.stringify(applied.previous)} (${why})`);
    } else {
      this.log.info('editor traffic: http.proxy was changed by you meanwhile; left as it is');
    }
    await this.state.update(KEY, undefined);
  }

  private queue(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((err: unknown) => this.log.error(`editor traffic: ${describeError(err)}`));
    return this.chain;
  }
}
