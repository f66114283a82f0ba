/** Failover: try each member in order until one connects. */
import type { Socket } from 'node:net';
import type { Endpoint } from '../address';
import type { BindHandle, BindOptions, Dialer, DialOptions, UdpPath, UdpReceiver } from '../dialer';
import { describeError, ProxyError, Reply, replyForError } from '../errors';
import { Logger, silentLogger } from '../log';
import type { CancelSignal } from '../cancel';

export class FailoverDialer implements Dialer {
  readonly label: string;

  constructor(
    readonly name: string,
    readonly members: readonly Dialer[],
    private readonly logger: Logger = silentLogger,
  ) {
    if (members.length === 0) throw new ProxyError('BAD_RULE', `failover group "${name}" has no members`);
    this.label = `${name} (failover: ${members.map((m) => m.label).join(' | ')})`;
  }

  dial(destination: Endpoint, options: DialOptions): Promise<Socket> {
    return this.attempt('connect', options.signal, (m) => m.dial(destination, options));
  }

  bind(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
    return this.attempt('BIND', options.signal, (m) => m.bind?.(destination, options));
  }

  openUdp(receive: UdpReceiver, options: DialOptions): Promise<UdpPath> {
    return this.attempt('UDP', options.signal, (m) => m.openUdp?.(receive, options));
  }

  private async attempt<T>(what: string, signal: CancelSignal, run: (member: Dialer) => Promise<T> | undefined): Promise<T> {
    const failures: { member: Dialer; error: unknown }[] = [];
    for (const member of this.members) {
      if (signal.aborted) break;
      const pending = run(member);
      if (pending === undefined) continue; // this member cannot do it (BIND/UDP unsupported)
      try {
        const result = await pending;
        if (failures.length > 0) this.logger.info(`${this.name}: ${what} through ${member.label} after ${failures.length} failed member(s)`);
        return result;
      } catch (err) {
        if (signal.aborted) throw err;
        failures.push({ member, error: err });
        this.logger.warn(`${this.name}: ${what} through ${member.label} failed: ${describeError(err)}`);
      }
    }
    const last = failures[failures.length - 1];
    if (!last) {
      throw signal.aborted ? new ProxyError('DIAL_FAILED', 'aborted') : new ProxyError('BAD_COMMAND', `no member of ${this.name} supports ${what}`, Reply.COMMAND_NOT_SUPPORTED);
    }
    const summary = failures.map((f) => `${f.member.label}: ${describeError(f.error)}`).join('; ');
    const code = last.error instanceof ProxyError ? last.error.code : 'UPSTREAM_FAILED';
    throw new ProxyError(code, `every member of ${this.name} failed: ${summary}`, replyForError(last.error), { cause: last.error });
  }
}
