import * as vscode from 'vscode';
import { SECTION, SETTING_KEYS, type SettingKey } from '../ui/setting-keys';
import type { ExtensionSettings } from '../ui/settings';
import { consentKey, describeValue, EffectiveSettings, effectiveSettings, isRestrictedKey } from '../ui/workspace-policy';
import { settingInspector } from './configuration';
import { Disposables } from './disposable';
import { ExposureConsent } from './exposure-consent';
import { FolderSettingsFiles } from './folder-settings';

/**
 * The one place the extension reads its settings: VS Code's values (`inspect()`), filtered by workspace
 * trust and the user's per-folder answers (src/ui/workspace-policy.ts). Fires onDidChange when something
 * other than a configuration change alters the result: trust granted, the folder's settings file edited.
 */
export class SettingsSource extends Disposables {
  private current: EffectiveSettings;
  private logged = '';
  /** Widening values whose dialog was dismissed this session: not asked again until the user reviews them. */
  private readonly dismissed = new Set<string>();
  private asking: Promise<void> | undefined;
  private readonly consent: ExposureConsent;
  private readonly files: FolderSettingsFiles;
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    workspaceState: vscode.Memento,
  ) {
    super();
    this.consent = new ExposureConsent(workspaceState);
    this.files = this.register(new FolderSettingsFiles(log));
    this.current = this.resolve();
    this.register(this.files.onDidChange(() => this.changed.fire()));
    this.register(
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.log.info('folder trusted: its SOCKS Relay settings apply now');
        void this.files.refresh().then(() => this.changed.fire());
      }),
    );
  }

  /** Reads an untrusted folder's settings file, so the first notice is already complete. */
  async init(): Promise<void> {
    await this.files.refresh();
    this.refresh();
  }

  get settings(): ExtensionSettings {
    return this.current.settings;
  }
  get ignored(): EffectiveSettings['ignored'] {
    return this.current.ignored;
  }

  /** Re-reads everything; logs which folder values are not in effect whenever that changes. */
  refresh(): ExtensionSettings {
    this.current = this.resolve();
    const text = this.current.ignored.map((i) => `${i.key}=${describeValue(i.key, i.value)} (${i.reason})`).join(', ');
    if (text !== this.logged) {
      this.logged = text;
      if (text !== '') this.log.warn(`folder settings not applied: ${text}${vscode.workspace.isTrusted ? '' : '; the folder is in Restricted Mode, so your user settings are used'}`);
    }
    return this.current.settings;
  }

  /** Asks about widening folder values not answered yet (nor dismissed this session); true when it asked. */
  async confirm(): Promise<boolean> {
    if (this.asking) return this.asking.then(() => true);
    const asks = this.current.pending.filter((r) => !this.dismissed.has(consentKey(r.key, r.value)));
    if (asks.length === 0) return false;
    this.asking = (async () => {
      const answer = await this.consent.ask(asks);
      if (answer === undefined) for (const r of asks) this.dismissed.add(consentKey(r.key, r.value));
      this.refresh();
    })().finally(() => (this.asking = undefined));
    await this.asking;
    return true;
  }

  /** Asks again about every widening value not in effect (waiting or declined); false when there is none. */
  async review(): Promise<boolean> {
    const asks = this.current.withheld;
    if (asks.length === 0) return false;
    for (const a of asks) this.dismissed.delete(consentKey(a.key, a.value));
    await this.consent.ask(asks);
    this.refresh();
    return true;
  }

  /**
   * Where a command should write `key`: where it is defined now (folder, else user settings), except
   * that a folder value not in effect is never the target (the write would change nothing).
   */
  target(key: SettingKey): vscode.ConfigurationTarget {
    const ignoredHere = this.current.ignored.some((i) => i.key === key) || (!vscode.workspace.isTrusted && isRestrictedKey(key));
    if (ignoredHere) return vscode.ConfigurationTarget.Global;
    const where = settingInspector()(key);
    if (where?.workspaceFolderValue !== undefined) return vscode.ConfigurationTarget.WorkspaceFolder;
    return where?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  }

  /** The user chose `value` for the folder from our own UI (Edit Listener): that is their OK for it. */
  async allowFolderValue(key: SettingKey, value: unknown): Promise<void> {
    if (key === 'listen.host' || key === 'auth.mode') await this.consent.remember([{ key, value: String(value) }], 'allow');
  }

  /**
   * User-level values another window of this user saw change (the shared relay's owner is told by its
   * attached windows): used in place of this window's view of them until its own configuration changes.
   * The user settings are the same file for every window; only how soon each window sees an edit differs.
   */
  applyUserValues(set: Readonly<Record<string, unknown>>, unset: readonly string[]): void {
    const known = new Set<string>(SETTING_KEYS);
    const next = new Map<string, unknown>();
    for (const [k, v] of Object.entries(set)) if (known.has(k)) next.set(k, v);
    for (const k of unset) if (known.has(k)) next.set(k, undefined);
    this.userValues = next;
    this.refresh();
    this.changed.fire();
  }

  /** Drops another window's value for `key`; whether there was one. */
  forgetUserValue(key: SettingKey): boolean {
    if (!this.userValues?.has(key)) return false;
    this.userValues.delete(key);
    return true;
  }

  /** This window's own view changed: it is current again. */
  forgetUserValues(): void {
    this.userValues = undefined;
  }

  private userValues: Map<string, unknown> | undefined;

  private resolve(): EffectiveSettings {
    const own = settingInspector();
    const overrides = this.userValues;
    const inspect: typeof own = overrides ? (key) => {
      const i = own(key);
      return overrides.has(key) ? { key: `${SECTION}.${key}`, ...i, globalValue: overrides.get(key) } : i;
    } : own;
    return effectiveSettings({ inspect, trusted: vscode.workspace.isTrusted, consent: this.consent.record, fileValues: this.files.values });
  }
}
