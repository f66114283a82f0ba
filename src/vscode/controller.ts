import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as vscode from 'vscode';
import { formatEndpoint } from '../core/address';
import { describeError } from '../core/errors';
import { formatBytes } from '../core/format';
import { SessionRegistry } from '../core/registry';
import { ProxyServer } from '../core/server';
import type { UserCredentials } from '../core/auth';
import type { Router } from '../core/dialer';
import type { ListenerInfo } from '../ui/env';
import { describeRoute } from '../ui/config-model';
import { SECTION } from '../ui/setting-keys';
import { ExtensionSettings, listenerChanged } from '../ui/settings';
import { credentialFixTarget, ProxyState } from '../ui/status';
import { updateSetting } from './configuration';
import { Disposables } from './disposable';
import { channelLogger } from './log';
import { buildRouter } from './routing';
import { Secrets } from './secrets';
import { SettingsSource } from './settings-source';
import { EgressService } from './egress';
import { routeUsesEgress } from '../ui/egress-model';
import type { EgressEndpoint } from '../core/egress/endpoint';

/**
 * Owns the engine for the window: starts and stops the ProxyServer, feeds it settings and secrets,
 * and tells the views when anything changes. One registry lives as long as the extension so the
 * recently-closed list survives restarts.
 */
export class ProxyController extends Disposables {
  readonly registry: SessionRegistry;
  private server: ProxyServer | undefined;
  private stateValue: ProxyState = 'stopped';
  private errorValue: string | undefined;
  /** Where settings come from (trust and per-folder consent applied); see settings-source.ts. */
  readonly source: SettingsSource;
  private startPromise: Promise<boolean> | undefined;
  private changeChain: Promise<void> = Promise.resolve();
  /** The settings the running server was started with. */
  private serverSettings: ExtensionSettings | undefined;
  private runCredentials: UserCredentials | undefined;
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;
  private readonly warnedAuth = new Set<string>();
  /** The route "This computer" (remote and browser windows); see egress.ts. */
  readonly egress: EgressService;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    readonly secrets: Secrets,
    workspaceState: vscode.Memento,
  ) {
    super();
    this.source = this.register(new SettingsSource(log, workspaceState));
    this.egress = this.register(new EgressService(log));
    this.register(this.egress.onDidChange(() => this.changed.fire()));
    this.registry = new SessionRegistry(this.settings.keepClosedSessions);
    this.registry.on('close', (s) => {
      this.log.debug(`#${s.id} ${s.client} ${s.protocol} ${s.command ?? 'handshake'} ${s.destination ?? ''} via ${s.route ?? '-'}: ${s.outcome} (↑${formatBytes(s.bytesUp)} ↓${formatBytes(s.bytesDown)})`);
      const name = credentialFixTarget(s.info(), this.settings.upstreams.map((u) => u.name));
      if (name !== undefined) this.offerCredentialFix(name, s.outcome ?? '');
    });
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SECTION)) void this.settingsChanged();
      }),
    );
    // Trust granted, or the folder's settings file edited.
    this.register(this.source.onDidChange(() => void this.settingsChanged()));
  }

  get state(): ProxyState {
    return this.stateValue;
  }
  get error(): string | undefined {
    return this.errorValue;
  }
  get settings(): ExtensionSettings {
    return this.source.settings;
  }
  get running(): boolean {
    return this.stateValue === 'running';
  }

  /** Asks again about a trusted folder's widening values that are not in effect, then applies the answer. */
  async reviewFolderSettings(): Promise<void> {
    if (await this.source.review()) await this.settingsChanged();
    else void vscode.window.showInformationMessage('SOCKS Relay: this folder sets nothing that waits for your OK.');
  }

  /** Running with per-run credentials although auth is "none": a route goes through this computer. */
  get credentialsForced(): boolean {
    return this.running && this.settings.auth === 'none' && this.runCredentials !== undefined;
  }

  /** Where clients connect, with the credentials they need (undefined while stopped). */
  listener(): ListenerInfo | undefined {
    const a = this.server?.address();
    if (!a || !this.running) return undefined;
    return { host: a.address, port: a.port, credentials: this.runCredentials };
  }

  listeningText(): string | undefined {
    const a = this.server?.address();
    return a ? formatEndpoint({ host: a.address, port: a.port }) : undefined;
  }

  upstreamText(): string {
    return describeRoute(this.settings);
  }

  async start(): Promise<boolean> {
    // One start at a time: a second click while the confirmation is open must not open a second server.
    this.startPromise ??= this.doStart().finally(() => (this.startPromise = undefined));
    return this.startPromise;
  }

  private async doStart(): Promise<boolean> {
    if (this.server) return true;
    if (await this.source.confirm()) this.changed.fire();
    const s = this.settings;
    this.setState('starting');
    try {
      const router = await this.router(s);
      const users = await this.users(s, router.usesEgress);
      const server = new ProxyServer(
        {
          host: s.host,
          port: s.port,
          users,
          socks4: s.socks4,
          http: s.http,
          maxSessions: s.maxSessions,
          idleTimeoutMs: s.idleTimeoutSeconds * 1000,
        },
        channelLogger(this.log),
        router,
        this.registry,
      );
      server.on('error', (err) => this.setState('error', describeError(err)));
      await server.listen();
      this.server = server;
      this.serverSettings = s;
      this.setState('running');
      return true;
    } catch (err) {
      this.server = undefined;
      this.runCredentials = undefined;
      const message = describeError(err);
      this.log.error(`could not start: ${message}`);
      this.setState('error', message);
      void this.explainStartFailure(err);
      return false;
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.serverSettings = undefined;
    this.runCredentials = undefined;
    if (server) await server.close();
    this.setState('stopped');
  }

  async restart(): Promise<boolean> {
    await this.stop();
    return this.start();
  }

  async toggle(): Promise<void> {
    if (this.server) await this.stop();
    else await this.start();
  }

  /** Rebuilds routing from settings and secrets; open sessions keep the route they started with. */
  async reloadRouting(): Promise<void> {
    if (!this.server) return;
    try {
      const router = await this.router(this.settings);
      if (router.usesEgress && this.runCredentials === undefined) {
        // The listener takes no credentials now: it must, before anything goes through this computer.
        this.log.info('a route now goes through this computer: restarting the listener with per-run credentials');
        await this.restart();
        return;
      }
      this.server.setRouter(router);
      this.log.info(`routing updated: default route ${this.upstreamText()}, ${this.settings.rules.length} rule(s)`);
    } catch (err) {
      this.log.error(`routing not updated: ${describeError(err)}`);
      void vscode.window.showErrorMessage(`SOCKS Relay: the routing settings are invalid: ${describeError(err)}`, 'Open Settings').then((pick) => {
        if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
      });
    }
  }

  terminate(id: number): boolean {
    return this.registry.terminate(id);
  }

  override dispose(): void {
    void this.stop();
    super.dispose();
  }

  private setState(state: ProxyState, error?: string): void {
    this.stateValue = state;
    this.errorValue = error;
    void vscode.commands.executeCommand('setContext', 'socksRelay.running', state === 'running');
    this.changed.fire();
  }

  /** The router for these settings; the route "This computer" opens the egress endpoint where it exists. */
  private async router(s: ExtensionSettings): Promise<Router & { readonly usesEgress: boolean }> {
    let egress: EgressEndpoint | 'direct' | undefined;
    if (!this.egress.available) egress = 'direct';
    else if (routeUsesEgress(s)) egress = await this.egress.open();
    return buildRouter(s, this.secrets, channelLogger(this.log), egress);
  }

  /** `egress`: a route goes through this computer, so other users of the host must not get in unasked. */
  private async users(s: ExtensionSettings, egress: boolean): Promise<UserCredentials[]> {
    this.runCredentials = undefined;
    if (s.auth === 'none' && egress) this.log.info('authentication: per-run credentials, required while a route goes through this computer');
    else if (s.auth === 'none') return [];
    // Terminals get fresh credentials each run, so nobody else on the machine can borrow the proxy.
    const generated = { username: 'relay', password: randomBytes(18).toString('base64url') };
    this.runCredentials = generated;
    if (s.auth !== 'password') return [generated];
    const password = await this.secrets.listenerPassword();
    if (!password) throw new Error('authentication is set to "password" but no password is stored; run "SOCKS Relay: Edit Listener" to set one');
    return [{ username: s.username, password }, generated];
  }

  /** Serialised: trust being granted fires both a configuration change and onDidGrantWorkspaceTrust. */
  private settingsChanged(): Promise<void> {
    this.changeChain = this.changeChain.then(() => this.applySettingsChange()).catch((err: unknown) => this.log.error(`settings not applied: ${describeError(err)}`));
    return this.changeChain;
  }

  private async applySettingsChange(): Promise<void> {
    this.source.refresh();
    this.changed.fire();
    if (!this.server) return;
    if (await this.source.confirm()) this.changed.fire();
    const server = this.server;
    const before = this.serverSettings;
    if (!server || !before) return; // stopped while the question was open
    const after = this.settings;
    if (listenerChanged(before, after)) {
      this.log.info('listener settings changed; restarting');
      await this.restart();
    } else {
      server.configure({ maxSessions: after.maxSessions, idleTimeoutMs: after.idleTimeoutSeconds * 1000 });
      await this.reloadRouting();
    }
  }

  private async explainStartFailure(err: unknown): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code;
    const s = this.settings;
    if (code === 'EADDRINUSE') {
      const pick = await vscode.window.showErrorMessage(`SOCKS Relay: port ${s.port} on ${s.host} is already in use by another program.`, 'Use a Free Port', 'Edit Listener', 'Show Log');
      if (pick === 'Use a Free Port') {
        const port = await freePort(s.host);
        await updateSetting('listen.port', port, this.source.target('listen.port'));
        // The configuration listener restarts only a running proxy; this one is stopped.
        this.source.refresh();
        await this.start();
      } else if (pick === 'Edit Listener') void vscode.commands.executeCommand('socksRelay.editListener');
      else if (pick === 'Show Log') this.log.show();
      return;
    }
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
      const pick = await vscode.window.showErrorMessage(`SOCKS Relay: cannot listen on ${s.host}:${s.port} (${code}). Choose an address this machine has, and a port above 1023.`, 'Edit Listener');
      if (pick) void vscode.commands.executeCommand('socksRelay.editListener');
      return;
    }
    const pick = await vscode.window.showErrorMessage(`SOCKS Relay could not start: ${describeError(err)}`, 'Edit Listener', 'Show Log');
    if (pick === 'Edit Listener') void vscode.commands.executeCommand('socksRelay.editListener');
    else if (pick === 'Show Log') this.log.show();
  }

  private offerCredentialFix(name: string, outcome: string): void {
    if (this.warnedAuth.has(name)) return;
    this.warnedAuth.add(name);
    void vscode.window.showWarningMessage(`SOCKS Relay: upstream "${name}" rejected the credentials (${outcome}).`, 'Edit Credentials').then((pick) => {
      if (pick) void vscode.commands.executeCommand('socksRelay.upstream.edit', name);
    });
  }
}

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
