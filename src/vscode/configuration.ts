import * as vscode from 'vscode';
import { SECTION, SettingKey } from '../ui/setting-keys';
import type { SettingInspector } from '../ui/workspace-policy';

/** The one place the extension calls `getConfiguration()`: keys are typed by ui/setting-keys.ts. */
export function settingInspector(): SettingInspector {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  return (key) => cfg.inspect(key);
}

export function updateSetting(key: SettingKey, value: unknown, target: vscode.ConfigurationTarget): Thenable<void> {
  return vscode.workspace.getConfiguration(SECTION).update(key, value, target);
}
