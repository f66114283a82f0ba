import type * as vscode from 'vscode';

/**
 * Owns disposables and disposes them with itself (after vscode-pull-request-github's `Disposable` in
 * src/common/lifecycle.ts). Disposed in registration order; anything registered after dispose() is
 * disposed at once, so a late listener cannot outlive its owner.
 */
export abstract class Disposables implements vscode.Disposable {
  private owned: vscode.Disposable[] = [];
  private disposed = false;

  protected register<T extends vscode.Disposable>(d: T): T {
    if (this.disposed) d.dispose();
    else this.owned.push(d);
    return d;
  }

  /** Registers a cleanup function (clearInterval, an EventEmitter's off). */
  protected onDispose(fn: () => void): void {
    this.register({ dispose: fn });
  }

  protected get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const owned = this.owned;
    this.owned = [];
    for (const d of owned) d.dispose();
  }
}
