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
import { describeRoute, SharingInfo } from '../ui/config-model';
import { SECTION, SETTING_KEYS } from '../ui/setting-keys';
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
import type { ControlCommand, RelayState } from '../core/shared/protocol';
import type { Role } from '../core/shared/membership';
import { MirrorSessions, SessionSource } from '../ui/mirror-sessions';
import { SharedRelay, SharedRelayHost } from './shared-relay';
import { EditorProxy } from './editor-proxy';
import { UserRouteRouter } from '../core/user-routes';
import { isEgressRoute } from '../core/egress/dialer';
import type { TerminalRoute } from '../ui/terminal-routes';

/**
 * Owns the engine for the window: starts and stops the ProxyServer, feeds it settings and secrets,
 * and tells the views when anything changes. One registry lives as long as the extension so the
 * recently-closed list survives restarts.
 */
export class ProxyController extends Disposables implements SharedRelayHost {
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
  /** One relay per user and machine: this window owns it or is attached to the window that does. */
  readonly shared: SharedRelay;
  /** Set while attached: the owner's relay as it last told us. */
  private memberRelay: RelayState | undefined;
  private readonly mirror: MirrorSessions;
  private readonly sessionsChanged = this.register(new vscode.EventEmitter<void>());
  /** Sessions changed (this window's registry, or a batch from the owning window). */
  readonly onDidChangeSessions = this.sessionsChanged.event;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    readonly secrets: Secrets,
    workspaceState: vscode.Memento,
    globalState: vscode.Memento,
  ) {
    super();
    this.source = this.register(new SettingsSource(log, workspaceState));
    this.egress = this.register(new EgressService(log));
    this.register(this.egress.onDidChange(() => this.changed.fire()));
    this.registry = new SessionRegistry(this.settings.keepClosedSessions);
    this.mirror = new MirrorSessions(this.settings.keepClosedSessions);
    const fireSessions = (): void => this.sessionsChanged.fire();
    for (const e of ['open', 'change', 'close', 'cleared'] as const) this.registry.on(e, fireSessions);
    this.onDispose(() => {
      for (const e of ['open', 'change', 'close', 'cleared'] as const) this.registry.off(e, fireSessions);
    });
    this.shared = this.register(new SharedRelay(this, log, windowLabel()));
    this.editorProxy = this.register(new EditorProxy(this, globalState, log));
    this.register(this.shared.onDidChangeRole((role) => this.adoptRole(role)));
    this.register(this.shared.onDidChangeMembers(() => this.changed.fire()));
    this.register(
      this.shared.onDidChangeRelay((relay) => {
        this.memberRelay = relay;
        this.changed.fire();
      }),
    );
    this.register(
      this.shared.onDidReceiveSessions((batch) => {
        this.mirror.apply(batch);
        this.sessionsChanged.fire();
      }),
    );
    this.registry.on('close', (s) => {
      this.log.debug(`#${s.id} ${s.client} ${s.protocol} ${s.command ?? 'handshake'} ${s.destination ?? ''} via ${s.route ?? '-'}: ${s.outcome} (↑${formatBytes(s.bytesUp)} ↓${formatBytes(s.bytesDown)})`);
      const name = credentialFixTarget(s.info(), this.settings.upstreams.map((u) => u.name));
      if (name !== undefined) this.offerCredentialFix(name, s.outcome ?? '');
    });
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration(SECTION)) return;
        // This window's own view is current again: values another window sent give way to it.
        this.source.forgetUserValues();
        if (this.memberRelay) void this.tellOwnerUserSettings();
        void this.settingsChanged();
      }),
    );
    // The palette's when-clauses follow the relay this window shows (its own, or the shared one).
    let runningContext: boolean | undefined;
    this.register(
      this.changed.event(() => {
        if (this.running === runningContext) return;
        runningContext = this.running;
        void vscode.commands.executeCommand('setContext', 'socksRelay.running', runningContext);
      }),
    );
    // Trust granted, or the folder's settings file edited.
    this.register(this.source.onDidChange(() => void this.settingsChanged()));
  }

  get state(): ProxyState {
    return this.memberRelay?.state ?? this.stateValue;
  }
  get error(): string | undefined {
    return this.memberRelay ? this.memberRelay.error : this.errorValue;
  }
  /** What the Sessions view and the status bar count: this window's sessions, or the owning window's. */
  get sessions(): SessionSource {
    return this.memberRelay ? this.mirror : this.registry;
  }
  /** This window's part in the shared relay, for the tree (undefined when it runs one of its own). */
  get sharing(): SharingInfo | undefined {
    const role = this.shared.role;
    if (!role) return undefined;
    return role.kind === 'owner' ? { role: 'owner', others: this.shared.members } : { role: 'member', owner: this.memberRelay?.owner ?? role.relay.owner };
  }

  /** Attached to a relay another window owns. */
  get attached(): boolean {
    return this.memberRelay !== undefined;
  }
  /** Joins the user's shared relay (before anything starts), then puts back an http.proxy a crash left. */
  async init(): Promise<void> {
    await this.shared.join();
    await this.editorProxy.recover();
  }

  /** socksRelay.editorTraffic (http.proxy while the relay runs). */
  readonly editorProxy: EditorProxy;

  refresh(): void {
    this.changed.fire();
  }
  get settings(): ExtensionSettings {
    return this.source.settings;
  }
  get running(): boolean {
    return this.state === 'running';
  }

  /** Asks again about a trusted folder's widening values that are not in effect, then applies the answer. */
  async reviewFolderSettings(): Promise<void> {
    if (await this.source.review()) await this.settingsChanged();
    else void vscode.window.showInformationMessage('SOCKS Relay: this folder sets nothing that waits for your OK.');
  }

  /** Running with per-run credentials although auth is "none": a route goes through this computer. */
  /** The engine's word on GSSAPI (offered, or why not) while this window runs the listener. */
  get gssapiStatus(): { readonly offered: boolean; readonly detail: string } | undefined {
    return this.running ? this.server?.gssapiStatus : undefined;
  }

  get credentialsForced(): boolean {
    return this.running && this.settings.auth === 'none' && this.runCredentials !== undefined;
  }

  /** Where clients connect, with the credentials they need (undefined while stopped). */
  listener(): ListenerInfo | undefined {
    const m = this.memberRelay;
    if (m) return m.running && m.host !== undefined && m.port !== undefined ? { host: m.host, port: m.port, credentials: m.credentials } : undefined;
    const a = this.server?.address();
    if (!a || !this.running) return undefined;
    return { host: a.address, port: a.port, credentials: this.runCredentials };
  }

  listeningText(): string | undefined {
    const m = this.memberRelay;
    if (m) return m.host !== undefined && m.port !== undefined ? formatEndpoint({ host: m.host, port: m.port }) : undefined;
    const a = this.server?.address();
    return a ? formatEndpoint({ host: a.address, port: a.port }) : undefined;
  }

  upstreamText(): string {
    return this.memberRelay?.route ?? describeRoute(this.settings);
  }

  /** The relay as the attached windows see it. */
  relayState(): RelayState {
    const a = this.server?.address();
    return {
      running: this.stateValue === 'running',
      state: this.stateValue,
      ...(this.errorValue !== undefined ? { error: this.errorValue } : {}),
      ...(a ? { host: a.address, port: a.port } : {}),
      ...(this.runCredentials ? { credentials: this.runCredentials } : {}),
      route: describeRoute(this.settings),
      owner: windowLabel(),
      ownerPid: process.pid,
      terminals: [...this.terminalRoutes.values()],
    };
  }

  /** A command from an attached window, run on the relay this window owns. */
  async run(command: ControlCommand): Promise<void> {
    switch (command.name) {
      case 'start':
        if (!(await this.start())) throw new Error(this.errorValue ?? 'the relay did not start');
        return;
      case 'stop':
        return this.stop();
      case 'restart':
        await this.restart();
        return;
      case 'terminate':
        this.registry.terminate(command.session);
        return;
      case 'clearClosed':
        this.registry.clearClosed();
        return;
      case 'addTerminal':
        this.terminalRoutes.set(command.terminal.username, command.terminal);
        await this.applyTerminalRoutes();
        return;
      case 'userSettings':
        // The owner's view of the (shared) user settings may lag behind the window where they were edited.
        this.source.applyUserValues(command.set, command.unset);
        return;
      case 'removeTerminal':
        if (this.terminalRoutes.delete(command.username)) await this.applyTerminalRoutes();
        return;
    }
  }

  private adoptRole(role: Role): void {
    if (role.kind === 'member') {
      this.memberRelay = role.relay;
      this.mirror.clear();
      this.mirror.apply(role.sessions);
      this.changed.fire();
      this.sessionsChanged.fire();
      return;
    }
    const inherited = role.inherited;
    this.memberRelay = undefined;
    this.mirror.clear();
    this.changed.fire();
    this.sessionsChanged.fire();
    // The window that owned the relay went away: carry it on where it listened, with its credentials.
    if (inherited?.running && inherited.port !== undefined) void this.takeOver(inherited);
  }

  private async takeOver(inherited: RelayState): Promise<void> {
    const t0 = Date.now();
    // The old owner's listener may need a moment to close (its window is shutting down): retry briefly.
    for (let attempt = 0; attempt < 20 && !this.isDisposed; attempt++) {
      if (await this.start(inherited)) {
        this.log.info(`shared relay: took the relay over on ${this.listeningText() ?? '?'} in ${Date.now() - t0} ms`);
        return;
      }
      if (this.lastStartCode !== 'EADDRINUSE') return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Toggle, Stop, Start from any window act on the shared relay. */
  private async onOwner(command: ControlCommand): Promise<boolean> {
    try {
      await this.shared.command(command);
      return true;
    } catch (err) {
      void vscode.window.showErrorMessage(`SOCKS Relay: the window that runs the relay could not ${command.name}: ${describeError(err)}`);
      return false;
    }
  }

  /** Attached: the user settings as this window sees them go to the owner, which applies them once. */
  private async tellOwnerUserSettings(): Promise<void> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const set: Record<string, unknown> = {};
    const unset: string[] = [];
    for (const key of SETTING_KEYS) {
      const v = cfg.inspect(key)?.globalValue;
      if (v === undefined) unset.push(key);
      else set[key] = v;
    }
    await this.shared.command({ name: 'userSettings', set, unset }).catch((err: unknown) => this.log.warn(`shared relay: settings not passed on: ${describeError(err)}`));
  }

  clearClosed(): void {
    if (this.memberRelay) {
      this.mirror.clearClosed();
      this.sessionsChanged.fire();
      void this.onOwner({ name: 'clearClosed' });
    } else this.registry.clearClosed();
  }

  async start(inherit?: RelayState): Promise<boolean> {
    if (this.memberRelay) return this.memberRelay.running || this.onOwner({ name: 'start' });
    // One start at a time: a second click while the confirmation is open must not open a second server.
    this.startPromise ??= this.doStart(inherit).finally(() => (this.startPromise = undefined));
    return this.startPromise;
  }

  private lastStartCode: string | undefined;

  private async doStart(inherit?: RelayState): Promise<boolean> {
    if (this.server) return true;
    this.lastStartCode = undefined;
    if (await this.source.confirm()) this.changed.fire();
    const s = this.settings;
    this.setState('starting');
    try {
      for (const t of inherit?.terminals ?? []) this.terminalRoutes.set(t.username, t);
      const router = await this.router(s);
      const users = await this.users(s, router.usesEgress, inherit?.credentials);
      this.baseUsers = users;
      const server = new ProxyServer(
        {
          host: inherit?.host ?? s.host,
          port: inherit?.port ?? s.port,
          users: [...users, ...this.terminalUsers()],
          // Routed terminals authenticate (that is how the relay knows them); everyone else as the settings say.
          allowNoAuth: this.anonymousAllowed,
          ...(s.gssapiKeytab !== '' ? { gssapi: { keytab: s.gssapiKeytab } } : {}),
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
      this.lastStartCode = (err as NodeJS.ErrnoException).code;
      const message = describeError(err);
      this.log.error(`could not start: ${message}`);
      this.setState('error', message);
      // A takeover retries quietly while the old owner's port is still closing.
      if (!(inherit && this.lastStartCode === 'EADDRINUSE')) void this.explainStartFailure(err);
      return false;
    }
  }

  async stop(): Promise<void> {
    if (this.memberRelay) {
      await this.onOwner({ name: 'stop' });
      return;
    }
    const server = this.server;
    this.server = undefined;
    this.serverSettings = undefined;
    this.runCredentials = undefined;
    if (server) await server.close();
    this.setState('stopped');
  }

  async restart(): Promise<boolean> {
    if (this.memberRelay) return this.onOwner({ name: 'restart' });
    await this.stop();
    return this.start();
  }

  async toggle(): Promise<void> {
    if (this.running) await this.stop();
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
    if (this.memberRelay) {
      void this.onOwner({ name: 'terminate', session: id });
      return this.mirror.snapshot().some((s) => s.id === id);
    }
    return this.registry.terminate(id);
  }

  /**
   * The window is closing: stop the listener without telling the attached windows "stopped", so that the
   * one taking over knows the relay was running and carries it on.
   */
  async shutdown(): Promise<void> {
    this.handingOver = true;
    await this.editorProxy.release();
    await this.stop();
  }

  override dispose(): void {
    void this.shutdown();
    super.dispose();
  }

  private handingOver = false;

  private setState(state: ProxyState, error?: string): void {
    this.stateValue = state;
    this.errorValue = error;
    this.changed.fire();
    if (!this.handingOver) this.shared.publish();
  }

  /** The router for these settings; the route "This computer" opens the egress endpoint where it exists. */
  private async router(s: ExtensionSettings): Promise<Router & { readonly usesEgress: boolean }> {
    let egress: EgressEndpoint | 'direct' | undefined;
    const terminals = [...this.terminalRoutes.values()];
    if (!this.egress.available) egress = 'direct';
    else if (routeUsesEgress(s) || terminals.some((t) => isEgressRoute(t.action))) egress = await this.egress.open();
    const base = await buildRouter(s, this.secrets, channelLogger(this.log), egress);
    if (terminals.length === 0) return base;
    return new UserRouteRouter(base, new Map(terminals.map((t) => [t.username, { label: `terminal "${t.name}"`, action: t.action }])));
  }

  /** Terminals with routes of their own: this window's (owner), or the owning window's as it told us. */
  private readonly terminalRoutes = new Map<string, TerminalRoute>();

  /** The user names of routed terminals and their names, for the Sessions view. */
  terminalNames(): ReadonlyMap<string, string> {
    const list = this.memberRelay ? (this.memberRelay.terminals ?? []) : [...this.terminalRoutes.values()];
    return new Map(list.map((t) => [t.username, t.name]));
  }

  /**
   * Gives a new terminal its own credentials and route (rules still first). On the relay this window
   * runs, or, attached, on the owning window's. Resolves with what the terminal's variables need.
   */
  async addTerminalRoute(route: TerminalRoute): Promise<void> {
    if (this.memberRelay) {
      await this.shared.command({ name: 'addTerminal', terminal: route });
      return;
    }
    this.terminalRoutes.set(route.username, route);
    await this.applyTerminalRoutes();
  }

  async removeTerminalRoute(username: string): Promise<void> {
    if (this.memberRelay) {
      await this.shared.command({ name: 'removeTerminal', username }).catch(() => undefined);
      return;
    }
    if (this.terminalRoutes.delete(username)) await this.applyTerminalRoutes();
  }

  /** The running server takes the terminals' users and routes at once (new connections). */
  private async applyTerminalRoutes(): Promise<void> {
    const server = this.server;
    if (server) {
      server.configure({ users: [...this.baseUsers, ...this.terminalUsers()], allowNoAuth: this.anonymousAllowed });
      await this.reloadRouting();
    }
    this.changed.fire();
    this.shared.publish();
  }

  private terminalUsers(): UserCredentials[] {
    return [...this.terminalRoutes.values()].map((t) => ({ username: t.username, password: t.password }));
  }

  /** The users the server was started with (listener and per-run credentials), without the terminals'. */
  private baseUsers: UserCredentials[] = [];
  /** Clients without credentials are let in when the listener itself asks for none (auth "none", no route through this computer). */
  private get anonymousAllowed(): boolean {
    return this.baseUsers.length === 0;
  }

  /** `egress`: a route goes through this computer, so other users of the host must not get in unasked. */
  /** `inherited`: the credentials of the relay this window takes over (its terminals keep working). */
  private async users(s: ExtensionSettings, egress: boolean, inherited?: UserCredentials): Promise<UserCredentials[]> {
    this.runCredentials = undefined;
    if (inherited) {
      this.runCredentials = inherited;
      const password = s.auth === 'password' ? await this.secrets.listenerPassword() : undefined;
      return password ? [{ username: s.username, password }, inherited] : [inherited];
    }
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
  /** Applies the settings as they are now (after a write whose change VS Code may not report). */
  applySettings(): Promise<void> {
    return this.settingsChanged();
  }

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

/** Names this window to the other windows (logs, "shared with"). */
function windowLabel(): string {
  return `${vscode.workspace.name ?? 'no folder'}${vscode.env.remoteName ? ` (${vscode.env.remoteName})` : ''}`;
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
