import type * as vscode from 'vscode';

/**
 * Passwords live in VS Code's SecretStorage (the OS keychain where there is one), never in settings:
 * the listener's password and one per upstream hop that has a username.
 */
export class Secrets {
  constructor(private readonly storage: vscode.SecretStorage) {}

  static listenerKey = 'socksRelay.listener.password';

  static upstreamKey(name: string, hop: number): string {
    return `socksRelay.upstream.${hop}.${name}`;
  }

  listenerPassword(): Thenable<string | undefined> {
    return this.storage.get(Secrets.listenerKey);
  }

  async setListenerPassword(password: string): Promise<void> {
    await this.storage.store(Secrets.listenerKey, password);
  }

  upstreamPassword(name: string, hop: number): Thenable<string | undefined> {
    return this.storage.get(Secrets.upstreamKey(name, hop));
  }

  async setUpstreamPassword(name: string, hop: number, password: string | undefined): Promise<void> {
    if (password === undefined || password === '') await this.storage.delete(Secrets.upstreamKey(name, hop));
    else await this.storage.store(Secrets.upstreamKey(name, hop), password);
  }

  async deleteUpstream(name: string, hops: number): Promise<void> {
    for (let i = 0; i < Math.max(hops, 8); i++) await this.storage.delete(Secrets.upstreamKey(name, i));
  }
}
