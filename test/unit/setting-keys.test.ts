/** The one table of settings (src/ui/setting-keys.ts) against package.json and the engine's defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultOptions } from '../../src/core/context';
import { RESTRICTED_KEYS, SECTION, SETTING_KEYS, SETTINGS, SettingSpec, TERMINAL_VARIABLES } from '../../src/ui/setting-keys';

interface ManifestProperty {
  type: string;
  default: unknown;
  enum?: string[];
  items?: { enum?: string[] };
  minimum?: number;
  maximum?: number;
  order: number;
}

const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
const properties = pkg.contributes.configuration.properties as Record<string, ManifestProperty>;
const manifestKeys = Object.keys(properties).map((k) => {
  assert.ok(k.startsWith(`${SECTION}.`), k);
  return k.slice(SECTION.length + 1);
});

test('manifest: every contributed setting is in the table and every table entry is contributed, in the same order', () => {
  const byOrder = [...manifestKeys].sort((a, b) => properties[`${SECTION}.${a}`].order - properties[`${SECTION}.${b}`].order);
  assert.deepEqual(SETTING_KEYS, byOrder);
});

test('manifest: each setting has the table\'s type, default, enum and bounds', () => {
  for (const key of SETTING_KEYS) {
    const spec: SettingSpec = SETTINGS[key];
    const p = properties[`${SECTION}.${key}`];
    assert.equal(p.type, spec.type, key);
    assert.deepEqual(p.default, spec.default, key);
    assert.deepEqual(p.enum, spec.enum, key);
    assert.equal(p.minimum, spec.minimum, key);
    assert.equal(p.maximum, spec.maximum, key);
  }
  assert.deepEqual(properties[`${SECTION}.terminal.variables`].items?.enum, [...TERMINAL_VARIABLES]);
});

test('manifest: restrictedConfigurations is the table\'s restricted keys (see also workspace-policy.test.ts)', () => {
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations, RESTRICTED_KEYS.map((k) => `${SECTION}.${k}`));
});

test('settings that set an engine option default to the engine\'s default (the CLI and the extension agree)', () => {
  let mapped = 0;
  for (const key of SETTING_KEYS) {
    const spec: SettingSpec = SETTINGS[key];
    if (!spec.engine) continue;
    mapped++;
    const value = typeof spec.default === 'number' ? spec.default * (spec.engine.scale ?? 1) : spec.default;
    assert.equal(value, defaultOptions[spec.engine.option], key);
  }
  assert.equal(mapped, 6);
});
