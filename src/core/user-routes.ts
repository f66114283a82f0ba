/**
 * Routes of their own for some clients, told apart by the user they authenticate as: a terminal opened
 * with "New Terminal Through…" gets credentials of its own and a route (an upstream, direct, block or
 * this computer). Rules still come first: a rule that matches decides, as for everyone; otherwise the
 * client's own route replaces the default route. Clients without such a user route as before.
 */
import type { Endpoint } from './address';
import type { RouteContext, RouteDecision, Router } from './dialer';
import type { RuleRouter } from './routing';

export interface UserRoute {
  /** What chose the route, for the session's route text: `terminal "build"`. */
  readonly label: string;
  /** "direct", "block", "egress" or an upstream name; '' for the default route (rules, then the default). */
  readonly action: string;
}

export class UserRouteRouter implements Router {
  private readonly byUser = new Map<string, RouteDecision>();

  constructor(
    private readonly base: RuleRouter,
    routes: ReadonlyMap<string, UserRoute>,
  ) {
    for (const [user, r] of routes) if (r.action !== '') this.byUser.set(user, base.decisionFor(r.action, r.label));
  }

  decide(destination: Endpoint, context: RouteContext): RouteDecision {
    const own = context.user !== undefined ? this.byUser.get(context.user) : undefined;
    if (!own) return this.base.decide(destination, context);
    return this.base.ruleDecision(destination) ?? own;
  }

  /** Whether any route (the base's, or a user's) goes out through the egress tunnel. */
  get usesEgress(): boolean {
    return this.base.usesEgress;
  }

  summary(): string {
    return `${this.base.summary()}; ${this.byUser.size} client route(s)`;
  }
}
