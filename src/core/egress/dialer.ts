/**
 * The route "this computer": sessions leave from the machine VS Code runs on, through the egress tunnel.
 * CONNECT (and HTTP forwarding, which dials the same way) only: BIND and UDP ASSOCIATE answer X'07'.
 */
import type { Endpoint } from '../address';
import type { Dialer, DialOptions, OutboundStream } from '../dialer';
import type { EgressEndpoint } from './endpoint';

/** The route's name in rules, the default route and `--upstream`. */
export const EGRESS_ROUTE = 'egress';
export const EGRESS_URL = 'egress://';

/** Whether a route name or upstream URL means this computer ("egress", "egress://"). */
export function isEgressRoute(text: string): boolean {
  const t = text.trim().toLowerCase();
  return t === EGRESS_ROUTE || t === EGRESS_URL || t === 'egress:';
}

export class EgressDialer implements Dialer {
  readonly label = 'this computer (egress tunnel)';
  constructor(private readonly endpoint: EgressEndpoint) {}

  dial(destination: Endpoint, options: DialOptions): Promise<OutboundStream> {
    return this.endpoint.open(destination, options.signal);
  }
}
