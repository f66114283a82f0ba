// The packaged extension: only what it needs, small, with a manifest VS Code accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const VSIX = path.join(ROOT, 'socks-relay.vsix');

// koffi (GSSAPI's FFI to the system library) is the one native module: its JS and one prebuilt binary per platform.
const KOFFI = ['linux_x64', 'linux_arm64', 'linux_armhf', 'musl_x64', 'darwin_x64', 'darwin_arm64', 'win32_x64'].map((p) => `dist/node_modules/koffi/build/koffi/${p}/koffi.node`);

test('the .vsix holds only the bundle (with koffi), manifest, icons, README and LICENSE, and is under 4 MB', () => {
  const files = execFileSync(path.join(ROOT, 'node_modules/.bin/vsce'), ['ls', '--no-dependencies'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
  const expected = ['LICENSE', 'README.md', 'dist/extension.js', ...KOFFI, 'dist/node_modules/koffi/LICENSE.txt', 'dist/node_modules/koffi/index.js', 'dist/node_modules/koffi/package.json', 'media/icon.png', 'media/socks-relay.svg', 'package.json'];
  assert.deepEqual(files, expected.sort());
  const size = fs.statSync(VSIX).size;
  assert.ok(size < 4 * 1024 * 1024, `${size} bytes`);
  assert.ok(/require\("koffi"\)/.test(fs.readFileSync(path.join(ROOT, 'dist/extension.js'), 'utf8')), 'koffi stays external (loaded only when GSSAPI is used)');
  const bundle = fs.readFileSync(path.join(ROOT, 'dist/extension.js'), 'utf8');
  assert.ok(!bundle.includes('sourceMappingURL'), 'production bundle has no source map reference');
  assert.ok(/require\("vscode"\)/.test(bundle), 'vscode stays external');
});

test('manifest: every contributed command has the SOCKS Relay category and an icon; tree-only commands are hidden from the palette', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const hidden = new Set(pkg.contributes.menus.commandPalette.filter((m) => m.when === 'false').map((m) => m.command));
  for (const c of pkg.contributes.commands) {
    assert.equal(c.category, 'SOCKS Relay', c.command);
    assert.match(c.icon, /^\$\([a-z-]+\)$/, c.command);
    const treeOnly = /^socksRelay\.(upstream|rule|session)\./.test(c.command);
    assert.equal(hidden.has(c.command), treeOnly, `${c.command} hidden from palette iff tree-only`);
  }
  assert.deepEqual(pkg.extensionKind, ['workspace']);
  for (const [key, prop] of Object.entries(pkg.contributes.configuration.properties)) {
    assert.ok(prop.description || prop.markdownDescription, `${key} has a description`);
    assert.ok('default' in prop, `${key} has a default`);
    assert.ok(!/password/i.test(key) || key === 'socksRelay.auth.username', `${key}: no password settings`);
  }
});

test('the companion .vsix (extensionKind ui) holds only its bundle, manifest, icon, README and LICENSE; the main extension names it in extensionPack', () => {
  const dir = path.join(ROOT, 'companion');
  const files = execFileSync(path.join(ROOT, 'node_modules/.bin/vsce'), ['ls', '--no-dependencies'], { cwd: dir, encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
  assert.deepEqual(files, ['LICENSE', 'README.md', 'dist/extension.js', 'media/icon.png', 'package.json']);
  const companion = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const main = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.deepEqual(companion.extensionKind, ['ui'], 'runs where VS Code runs (the user\'s computer)');
  assert.equal(companion.version, main.version);
  assert.deepEqual(main.extensionPack, [`${companion.publisher}.${companion.name}`]);
  const vsix = path.join(ROOT, 'socks-relay-egress.vsix');
  assert.ok(fs.existsSync(vsix), 'built by scripts/package-companion.sh');
  assert.ok(fs.statSync(vsix).size < 150 * 1024, `${fs.statSync(vsix).size} bytes`);
  const bundle = fs.readFileSync(path.join(dir, 'dist/extension.js'), 'utf8');
  assert.ok(/require\("vscode"\)/.test(bundle), 'vscode stays external');
  for (const command of ['socksRelayEgress.connect', 'socksRelayEgress.disconnect', 'socksRelayEgress.status']) {
    assert.ok(companion.activationEvents.includes(`onCommand:${command}`), `${command} activates it`);
    assert.ok(bundle.includes(command), `${command} is registered`);
  }
});
