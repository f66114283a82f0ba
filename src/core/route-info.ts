/** A session's route as data: what decided it, where it goes, and which failover member carried it. */

export interface RouteInfo {
  /** The rule that matched (1-based, with its match text); undefined for the default route. */
  readonly rule?: { readonly index: number; readonly match: string };
  /** 'direct', 'block' or the configured upstream name. */
  readonly action: string;
  /** The upstream's configured name when the action names one. */
  readonly upstream?: string;
  /** For a failover upstream: the member (configured name or redacted URL) that carried the request. */
  readonly via?: string;
  /** The redacted hop labels of a chain upstream (empty for direct, block and failover groups). */
  readonly hops: readonly string[];
  /** The rendered route, as logs and SessionInfo.route show it: `rule 2 (*.corp) → corp`, `default → ha via office`. */
  readonly text: string;
}

/** A rule's or the default's route to `action`; `chosenBy` names another chooser (a terminal's own route). */
export function routeInfo(rule: RouteInfo['rule'], action: string, upstream: string | undefined, hops: readonly string[], chosenBy?: string): RouteInfo {
  const label = rule ? `rule ${rule.index} (${rule.match})` : (chosenBy ?? 'default');
  return { ...(rule ? { rule } : {}), action, ...(upstream !== undefined ? { upstream } : {}), hops, text: `${label} → ${action}` };
}

/** The same route, carried by failover member `member`. */
export function routedVia(r: RouteInfo, member: string): RouteInfo {
  return { ...r, via: member, text: `${r.text} via ${member}` };
}
