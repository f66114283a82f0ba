import * as vscode from 'vscode';
import type { ViewNode } from '../ui/view-node';
import { Disposables } from './disposable';

/** A TreeDataProvider over plain ViewNodes built by the pure models in src/ui. */
export class NodeTreeProvider extends Disposables implements vscode.TreeDataProvider<ViewNode> {
  private readonly changed = this.register(new vscode.EventEmitter<ViewNode | undefined>());
  readonly onDidChangeTreeData = this.changed.event;
  private roots: ViewNode[] | undefined;

  constructor(private readonly build: () => ViewNode[]) {
    super();
  }

  refresh(): void {
    this.roots = undefined;
    this.changed.fire(undefined);
  }

  getChildren(node?: ViewNode): ViewNode[] {
    if (node) return node.children ?? [];
    this.roots ??= this.build();
    return this.roots;
  }

  getTreeItem(node: ViewNode): vscode.TreeItem {
    const state = node.children ? (node.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed) : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, state);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    item.iconPath = new vscode.ThemeIcon(node.icon, node.iconColor ? new vscode.ThemeColor(node.iconColor) : undefined);
    if (node.command) item.command = { command: node.command, title: node.label, arguments: [node] };
    return item;
  }
}
