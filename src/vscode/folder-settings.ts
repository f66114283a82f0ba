import * as vscode from 'vscode';
import { parseJsonc, sectionValues } from '../ui/jsonc';
import { RESTRICTED_KEYS, SECTION } from '../ui/setting-keys';
import { Disposables } from './disposable';

/**
 * What the open folder's settings file says for the restricted keys, read from the file itself.
 * In Restricted Mode VS Code hides those values from `getConfiguration()` (our restrictedConfigurations),
 * so without this the extension could not tell the user that the folder's values were ignored. Read
 * only while untrusted (once trusted, `inspect()` shows them), never used to configure anything.
 */
export class FolderSettingsFiles extends Disposables {
  private valuesNow: ReadonlyMap<string, unknown> = new Map();
  private watchers: vscode.Disposable[] = [];
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;
  private generation = 0;

  constructor(private readonly log: vscode.LogOutputChannel) {
    super();
    this.register(
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.watch();
        void this.refresh();
      }),
    );
    // The watchers are replaced on every folder change, so they are kept apart from register().
    this.onDispose(() => this.unwatch());
    this.watch();
  }

  get values(): ReadonlyMap<string, unknown> {
    return this.valuesNow;
  }

  /** Re-reads the file; fires onDidChange when what it says changed. */
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    const next = vscode.workspace.isTrusted ? new Map<string, unknown>() : await this.read();
    if (generation !== this.generation) return; // a newer read is under way
    if (JSON.stringify([...next]) === JSON.stringify([...this.valuesNow])) return;
    this.valuesNow = next;
    this.changed.fire();
  }

  /**
   * The file that is this window's workspace settings: a multi-root workspace's `.code-workspace` file
   * (its `settings`), else the single folder's `.vscode/settings.json`. Folder files in a multi-root
   * workspace cannot set window-scoped settings at all, so they are not read.
   */
  private target(): { uri: vscode.Uri; inWorkspaceFile: boolean } | undefined {
    const file = vscode.workspace.workspaceFile;
    if (file && file.scheme !== 'untitled') return { uri: file, inWorkspaceFile: true };
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder || file) return undefined;
    return { uri: vscode.Uri.joinPath(folder.uri, '.vscode', 'settings.json'), inWorkspaceFile: false };
  }

  private async read(): Promise<Map<string, unknown>> {
    const t = this.target();
    if (!t) return new Map();
    let text: string;
    try {
      text = new TextDecoder().decode(await vscode.workspace.fs.readFile(t.uri));
    } catch {
      return new Map(); // no settings file: nothing to report
    }
    const parsed = parseJsonc(text);
    if (parsed === undefined) this.log.warn(`${t.uri.toString(true)} is not valid JSON; cannot tell which of its settings SOCKS Relay ignores`);
    const settings = t.inWorkspaceFile ? (parsed as { settings?: unknown } | undefined)?.settings : parsed;
    return sectionValues(settings, SECTION, RESTRICTED_KEYS);
  }

  private unwatch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
  }

  private watch(): void {
    this.unwatch();
    const t = this.target();
    if (!t) return;
    const base = vscode.Uri.joinPath(t.uri, '..');
    const name = t.uri.path.slice(t.uri.path.lastIndexOf('/') + 1);
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(base, name));
    const again = (): void => void this.refresh();
    this.watchers.push(watcher, watcher.onDidCreate(again), watcher.onDidChange(again), watcher.onDidDelete(again));
  }
}
