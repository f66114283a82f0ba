/**
 * One relay per user and machine: which role this window has. The first window to claim the control
 * socket owns the relay; the others are members of it. When the owner goes away, the members race to
 * claim again (after a little jitter): one becomes the owner and is told the state the old owner last
 * had (port, credentials, running), so it can carry the relay on; the rest attach to it.
 */
import { EventEmitter } from 'node:events';
import { claim } from './lock';
import { MemberChannel } from './member';
import { OwnerChannel } from './owner';
import type { RelayState, SessionBatch } from './protocol';
import { ControlPaths, preparePrivateDir, readOrCreateToken } from './runtime-dir';

export type Role =
  | { readonly kind: 'owner'; readonly channel: OwnerChannel; /** The old owner's last state, after a takeover. */ readonly inherited?: RelayState }
  | { readonly kind: 'member'; readonly channel: MemberChannel; readonly relay: RelayState; readonly sessions: SessionBatch };

export interface MembershipEvents {
  role: [Role];
  /** The channel could not be used (denied, unreachable): the window runs a relay of its own. */
  failed: [Error];
}

export class Membership extends EventEmitter<MembershipEvents> {
  private current: Role | undefined;
  private disposed = false;
  private token: string | undefined;

  constructor(
    private readonly paths: ControlPaths,
    private readonly window: string,
    private readonly snapshot: () => { relay: RelayState; sessions: SessionBatch },
  ) {
    super();
  }

  get role(): Role | undefined {
    return this.current;
  }

  /** Claims the owner's role or attaches to the owner. */
  async join(inherited?: RelayState): Promise<Role> {
    await preparePrivateDir(this.paths.dir);
    this.token ??= await readOrCreateToken(this.paths.token);
    const token = this.token;
    const claimed = await claim(this.paths);
    if (this.disposed) {
      if (claimed.role === 'owner') claimed.server.close();
      else claimed.socket.destroy();
      throw new Error('disposed');
    }
    let role: Role;
    if (claimed.role === 'owner') {
      role = { kind: 'owner', channel: new OwnerChannel(claimed.server, token, this.snapshot), ...(inherited ? { inherited } : {}) };
    } else {
      const joined = await MemberChannel.join(claimed.socket, token, this.window);
      role = { kind: 'member', channel: joined.channel, relay: joined.relay, sessions: joined.sessions };
      joined.channel.once('lost', () => void this.rejoin(joined.channel.relay ?? joined.relay));
    }
    this.current = role;
    this.emit('role', role);
    return role;
  }

  private async rejoin(last: RelayState): Promise<void> {
    if (this.disposed) return;
    // Jitter, so that members do not all claim in the same millisecond.
    await new Promise((r) => setTimeout(r, Math.random() * 250));
    try {
      await this.join(last);
    } catch (err) {
      if (!this.disposed) this.emit('failed', err instanceof Error ? err : new Error(String(err)));
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const role = this.current;
    this.current = undefined;
    if (role?.kind === 'owner') await role.channel.close();
    else role?.channel.close();
  }
}
