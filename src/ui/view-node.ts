/**
 * Rows of the Configuration and Sessions views as plain data. Pure (no `vscode`). Rows a command acts on
 * carry a `kind` and the value the command needs, so handlers narrow with isNode() instead of casting
 * their argument or parsing ids.
 */
interface NodeBase {
  id: string;
  label: string;
  description?: string;
  tooltip?: string;
  /** A codicon id, e.g. 'arrow-swap'. */
  icon: string;
  /** A theme colour id for the icon, e.g. 'charts.green'. */
  iconColor?: string;
  contextValue: string;
  children?: ViewNode[];
  /** Expanded by default (groups). */
  expanded?: boolean;
  /** Command run when the row is clicked. */
  command?: string;
}

/** An upstream row (Direct included): the socksRelay.upstream.* commands. */
export interface UpstreamNode extends NodeBase {
  kind: 'upstream';
  /** The upstream's name; '' for Direct. */
  upstream: string;
}

/** A rule row: the socksRelay.rule.* commands. */
export interface RuleNode extends NodeBase {
  kind: 'rule';
  /** Position in the `rules` setting. */
  index: number;
}

/** A live or closed session: the socksRelay.session.* commands. */
export interface SessionNode extends NodeBase {
  kind: 'session';
  sessionId: number;
  destination?: string;
}

/** Groups, fields and notices: no command takes them as an argument. */
export interface InfoNode extends NodeBase {
  kind: 'info';
}

export type ViewNode = UpstreamNode | RuleNode | SessionNode | InfoNode;
export type NodeKind = ViewNode['kind'];

/** True when a command's argument is a row of this kind (VS Code passes the tree element it was invoked on). */
export function isNode<K extends NodeKind>(arg: unknown, kind: K): arg is Extract<ViewNode, { kind: K }> {
  return typeof arg === 'object' && arg !== null && 'kind' in arg && arg.kind === kind;
}
