import * as vscode from 'vscode';

// Placeholder entry so the bundle builds; the UI layer lands with its own issue.
export function activate(_context: vscode.ExtensionContext): void {}
export function deactivate(): void {}
