/**
 * The route "This computer (through VS Code)" in a remote or browser window: the egress tunnel's endpoint
 * on the remote host's loopback, forwarded to the user's computer by VS Code (asExternalUri), and the
 * hand-over to the companion extension there (a command: commands cross between extension hosts). Without
 * a companion (a browser window has no local extension host) the user gets the agent command to copy.
 *
 * The endpoint lives as long as the window's extension host, across proxy restarts: the forwarded address
 * and the secret stay the same, so an agent that lost the tunnel reconnects by itself.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { COMMANDS, COMPANION_ID, CONTRACT_VERSION, ConnectRequest, ConnectResult } from '../companion/contract';
import { EgressEndpoint, EgressState } from '../core/egress/endpoint';
import { randomToken } from '../core/egress/protocol';
import { DEFAULTS } from '../core/defaults';
import { describeError } from '../core/errors';
import { agentCommandLine, egressAvailable, EgressView, WindowKind } from '../ui/egress-model';
import { Disposables } from './disposable';
import { channelLogger } from './log';

export class EgressService extends Disposables {
  readonly available: boolean;
  private endpoint: EgressEndpoint | undefined;
  private opening: Promise<EgressEndpoint> | undefined;
  private readonly token = randomToken();
  private readonly id = randomBytes(9).toString('base64url');
  private externalUrl: string | undefined;
  private companion: 'asking' | 'absent' | 'failed' = 'asking';
  private companionDetail: string | undefined;
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    kind: WindowKind = { remoteName: vscode.env.remoteName, web: vscode.env.uiKind === vscode.UIKind.Web },
  ) {
    super();
    this.available = egressAvailable(kind);
    this.onDispose(() => {
      const endpoint = this.endpoint;
      this.endpoint = undefined;
      if (endpoint) {
        void vscode.commands.executeCommand(COMMANDS.disconnect, { id: this.id }).then(undefined, () => undefined);
        void endpoint.close();
      }
    });
  }

  /** The tunnel's state for the tree. */
  get view(): EgressView {
    const e = this.endpoint;
    if (!this.available) return { status: 'off', why: 'this window runs on your computer: the route is direct here' };
    if (!e) return { status: 'off' };
    const s: EgressState = e.state;
    if (s.status === 'connected') return { status: 'connected', streams: s.streams, ...(s.rttMs !== undefined ? { rttMs: s.rttMs } : {}), ...(s.agent !== undefined ? { agent: s.agent } : {}) };
    if (s.status === 'disconnected') return { status: 'disconnected', ...(s.reason !== undefined ? { reason: s.reason } : {}) };
    return { status: 'waiting', companion: this.companion, ...(this.companionDetail !== undefined ? { detail: this.companionDetail } : {}) };
  }

  /** The command that runs the agent on the user's computer, once the endpoint is forwarded. */
  agentCommand(): string | undefined {
    return this.externalUrl !== undefined ? agentCommandLine(this.externalUrl, this.token) : undefined;
  }

  /** The endpoint, opened and forwarded on first use; the companion is asked to connect. */
  open(): Promise<EgressEndpoint> {
    if (this.endpoint) return Promise.resolve(this.endpoint);
    this.opening ??= this.doOpen().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async doOpen(): Promise<EgressEndpoint> {
    const endpoint = new EgressEndpoint({ host: '127.0.0.1', port: 0, token: this.token, logger: channelLogger(this.log), connectTimeoutMs: DEFAULTS.connectTimeoutMs });
    const address = await endpoint.listen();
    if (this.isDisposed) {
      await endpoint.close();
      throw new Error('the window is closing');
    }
    this.endpoint = endpoint;
    endpoint.on('state', () => this.changed.fire());
    // VS Code forwards the port and answers with the address the user's computer reaches it at.
    const external = await vscode.env.asExternalUri(vscode.Uri.parse(`http://127.0.0.1:${address.port}/`));
    this.externalUrl = external.toString(true);
    this.log.info(`egress: endpoint on 127.0.0.1:${address.port}, forwarded as ${this.externalUrl}`);
    this.changed.fire();
    void this.askCompanion();
    return endpoint;
  }

  /** Asks the companion on the user's computer to run the agent; the tree says what came of it. */
  async askCompanion(): Promise<void> {
    const url = this.externalUrl;
    if (url === undefined) return;
    this.companion = 'asking';
    this.companionDetail = undefined;
    this.changed.fire();
    // Extensions of the other extension host are listed too; the companion runs in the UI one.
    if (!vscode.extensions.getExtension(COMPANION_ID)) {
      this.companion = 'absent';
      this.log.info(`egress: no companion extension (${COMPANION_ID}) on your computer; the agent command is under "This computer" in the Upstreams view`);
      this.changed.fire();
      this.offerAgentCommand('No companion extension answers on your computer (a browser window has none).');
      return;
    }
    const request: ConnectRequest = { version: CONTRACT_VERSION, id: this.id, url, token: this.token, window: vscode.env.remoteName ?? vscode.env.appName };
    try {
      const result = await vscode.commands.executeCommand<ConnectResult | undefined>(COMMANDS.connect, request);
      if (result?.ok === true) {
        this.log.info('egress: the companion on your computer is connecting');
        return;
      }
      this.companion = 'failed';
      this.companionDetail = result ? result.message : 'no answer';
      this.log.warn(`egress: the companion did not connect: ${this.companionDetail}`);
    } catch (err) {
      this.companion = 'failed';
      this.companionDetail = describeError(err);
      this.log.warn(`egress: the companion could not be asked: ${this.companionDetail}`);
    }
    this.changed.fire();
    this.offerAgentCommand(`The companion on your computer did not connect (${this.companionDetail ?? 'no answer'}).`);
  }

  private offered = false;

  /** Once per window: the way out when no companion carries the route. */
  private offerAgentCommand(why: string): void {
    if (this.offered) return;
    this.offered = true;
    void vscode.window
      .showInformationMessage(`SOCKS Relay: "This computer" needs the egress agent on your computer. ${why}`, 'Copy Agent Command')
      .then((pick) => (pick ? this.copyAgentCommand() : undefined));
  }

  /** Copies the agent command (it holds the secret: shown to the user, never logged). */
  async copyAgentCommand(): Promise<void> {
    if (!this.available) {
      void vscode.window.showInformationMessage('SOCKS Relay: this window runs on your computer; "This computer" is the direct route here.');
      return;
    }
    try {
      await this.open();
    } catch (err) {
      void vscode.window.showErrorMessage(`SOCKS Relay: the egress endpoint could not be opened: ${describeError(err)}`);
      return;
    }
    const command = this.agentCommand();
    if (command === undefined) return;
    await vscode.env.clipboard.writeText(command);
    void vscode.window.showInformationMessage('SOCKS Relay: agent command copied. Run it on your computer (socks-relay CLI).');
  }
}
