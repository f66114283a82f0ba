/**
 * This window's place in the user's one shared relay (src/core/shared): the owner runs the listener and
 * publishes its state and sessions to the attached windows; a member shows and uses the owner's relay and
 * sends it the user's commands. A member takes over when the owner's window goes away.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import type { Session, SessionInfo, SessionRegistry } from '../core/registry';
import { Membership, Role } from '../core/shared/membership';
import type { ControlCommand, RelayState, SessionBatch } from '../core/shared/protocol';
import { controlPaths } from '../core/shared/runtime-dir';
import { Disposables } from './disposable';

/** At most this many live sessions per batch (the view shows no more than that anyway). */
const MAX_LIVE_IN_BATCH = 500;
const BATCH_MS = 500;

export interface SharedRelayHost {
  readonly registry: SessionRegistry;
  relayState(): RelayState;
  /** A member asked for this; runs on the relay this window owns. */
  run(command: ControlCommand): Promise<void>;
}

export class SharedRelay extends Disposables {
  private readonly membership: Membership;
  private timer: NodeJS.Timeout | undefined;
  private dirty = true;
  private closedSince: SessionInfo[] = [];
  private resetNext = true;
  private readonly roleChanged = this.register(new vscode.EventEmitter<Role>());
  /** Fired with every new role: the first one, and each takeover or re-attach. */
  readonly onDidChangeRole = this.roleChanged.event;
  private readonly stateChanged = this.register(new vscode.EventEmitter<RelayState>());
  /** A member's view of the owner's relay changed. */
  readonly onDidChangeRelay = this.stateChanged.event;
  private readonly sessionsChanged = this.register(new vscode.EventEmitter<SessionBatch>());
  readonly onDidReceiveSessions = this.sessionsChanged.event;
  private readonly membersChanged = this.register(new vscode.EventEmitter<number>());
  readonly onDidChangeMembers = this.membersChanged.event;

  constructor(
    private readonly host: SharedRelayHost,
    private readonly log: vscode.LogOutputChannel,
    window: string,
  ) {
    super();
    this.membership = new Membership(controlPaths(), window, () => ({ relay: host.relayState(), sessions: this.batch(true) }));
    this.membership.on('role', (role) => this.adopt(role));
    this.membership.on('failed', (err) => this.log.warn(`shared relay: cannot reach the other windows (${describeError(err)}); this window runs its own relay`));
    const reg = host.registry;
    const mark = (): void => {
      this.dirty = true;
    };
    const closed = (s: Session): void => {
      this.dirty = true;
      if (this.closedSince.length < 1000) this.closedSince.push(s.info());
    };
    const cleared = (): void => {
      this.dirty = true;
      this.closedSince = [];
      this.resetNext = true;
    };
    reg.on('open', mark);
    reg.on('change', mark);
    reg.on('close', closed);
    reg.on('cleared', cleared);
    this.onDispose(() => (reg.off('open', mark), reg.off('change', mark), reg.off('close', closed), reg.off('cleared', cleared)));
    this.onDispose(() => {
      if (this.timer) clearInterval(this.timer);
      void this.membership.dispose();
    });
  }

  get role(): Role | undefined {
    return this.membership.role;
  }

  /** Owner: how many other windows are attached. */
  get members(): number {
    const role = this.membership.role;
    return role?.kind === 'owner' ? role.channel.size : 0;
  }

  get isMember(): boolean {
    return this.membership.role?.kind === 'member';
  }

  /** Claims the relay or attaches to the window that has it. */
  async join(): Promise<Role | undefined> {
    try {
      return await this.membership.join();
    } catch (err) {
      this.log.warn(`shared relay: ${describeError(err)}; this window runs its own relay`);
      return undefined;
    }
  }

  /** Owner: tells the members the relay's new state. */
  publish(): void {
    const role = this.membership.role;
    if (role?.kind === 'owner') role.channel.broadcast({ t: 'state', relay: this.host.relayState() });
  }

  /** Member: runs a command on the owner's relay. */
  async command(command: ControlCommand): Promise<void> {
    const role = this.membership.role;
    if (role?.kind !== 'member') throw new Error('this window owns the relay');
    await role.channel.command(command);
  }

  private adopt(role: Role): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (role.kind === 'owner') {
      this.log.info(`shared relay: this window owns the relay${role.inherited ? ' (taken over from a window that went away)' : ''}`);
      role.channel.on('command', (command, done) => {
        this.host.run(command).then(
          () => done(),
          (err: unknown) => done({ code: (err as { code?: string }).code ?? 'FAILED', message: describeError(err) }),
        );
      });
      role.channel.on('members', (n) => {
        this.log.info(`shared relay: ${n} other window(s) attached`);
        this.membersChanged.fire(n);
        this.resetNext = true;
        this.dirty = true;
      });
      this.resetNext = true;
      this.timer = setInterval(() => this.flush(role), BATCH_MS);
      this.timer.unref();
    } else {
      this.log.info(`shared relay: attached to the relay of another window (${role.relay.owner}, pid ${role.relay.ownerPid})`);
      role.channel.on('state', (relay) => this.stateChanged.fire(relay));
      role.channel.on('sessions', (batch) => this.sessionsChanged.fire(batch));
      role.channel.on('lost', (why) => this.log.info(`shared relay: ${why}; taking over or re-attaching`));
    }
    this.roleChanged.fire(role);
  }

  /** Owner: one batch per interval while something changed or sessions are live (their counters move). */
  private flush(role: Extract<Role, { kind: 'owner' }>): void {
    if (role.channel.size === 0) return;
    if (!this.dirty && this.host.registry.size === 0) return;
    role.channel.broadcast({ t: 'sessions', batch: this.batch(this.resetNext) });
    this.dirty = false;
  }

  private batch(reset: boolean): SessionBatch {
    const reg = this.host.registry;
    const live = reg.snapshot().slice(-MAX_LIVE_IN_BATCH);
    const closed = reset ? [...reg.recentlyClosed()] : this.closedSince;
    this.closedSince = [];
    this.resetNext = false;
    return { live, closed, totals: reg.totals(), reset };
  }
}
