/** Failover: try each member in order until one connects. */
import type { Endpoint } from '../address';
import type { BindHandle, BindOptions, Dialer, DialOptions, OutboundStream, UdpOptions, UdpPath, UdpReceiver } from '../dialer';
import { describeError, ProxyError, Reply, replyForError } from '../errors';
import { Logger, silentLogger } from '../log';
import { failurePlace, markFailure } from '../outcome';

export class FailoverDialer implements Dialer {
  readonly label: string;

  /** How a session's route names each member: the configured upstream name, or the member's label. */
  private readonly memberNames: readonly string[];

  constructor(
    readonly name: string,
    readonly members: readonly Dialer[],
    private readonly logger: Logger = silentLogger,
    memberNames?: readonly string[],
  ) {
    if (members.length === 0) throw new ProxyError('BAD_RULE', `failover group "${name}" has no members`);
    this.label = `${name} (failover: ${members.map((m) => m.label).join(' | ')})`;
    this.memberNames = memberNames ?? members.map((m) => m.label);
  }

  dial(destination: Endpoint, options: DialOptions): Promise<OutboundStream> {
    return this.attempt('connect', options, (m) => m.dial(destination, options));
  }

  bind(destination: Endpoint, options: BindOptions): Promise<BindHandle> {
    return this.attempt('BIND', options, (m) => m.bind?.(destination, options));
  }

  openUdp(receive: UdpReceiver, options: UdpOptions): Promise<UdpPath> {
    return this.attempt('UDP', options, (m) => m.openUdp?.(receive, options));
  }

  private async attempt<T>(what: string, options: DialOptions, run: (member: Dialer) => Promise<T> | undefined): Promise<T> {
    const { signal } = options;
    const failures: { member: Dialer; name: string; error: unknown }[] = [];
    for (const [i, member] of this.members.entries()) {
      if (signal.aborted) break;
      const pending = run(member);
      if (pending === undefined) continue; // this member cannot do it (BIND/UDP unsupported)
      try {
        const result = await pending;
        if (failures.length > 0) this.logger.info(`${this.name}: ${what} through ${member.label} after ${failures.length} failed member(s)`);
        options.route?.via(this.memberNames[i]);
        return result;
      } catch (err) {
        if (signal.aborted) throw err;
        failures.push({ member, name: this.memberNames[i], error: err });
        this.logger.warn(`${this.name}: ${what} through ${member.label} failed: ${describeError(err)}`);
      }
    }
    const last = failures[failures.length - 1];
    if (!last) {
      throw signal.aborted ? new ProxyError('DIAL_FAILED', 'aborted') : new ProxyError('BAD_COMMAND', `no member of ${this.name} supports ${what}`, Reply.COMMAND_NOT_SUPPORTED);
    }
    const summary = failures.map((f) => `${f.member.label}: ${describeError(f.error)}`).join('; ');
    const code = last.error instanceof ProxyError ? last.error.code : 'UPSTREAM_FAILED';
    const err = new ProxyError(code, `every member of ${this.name} failed: ${summary}`, replyForError(last.error), { cause: last.error });
    // The code is the last member's, so the place is too: its hop, and its name (what "Edit Credentials" opens).
    markFailure(err, { hop: failurePlace(last.error)?.hop, member: last.name });
    throw err;
  }
}
