// Bundles the extension and the headless CLI (recipe from the VS Code esbuild sample).
const esbuild = require('esbuild');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  logLevel: 'warning',
  // ESM builds first: jsonc-parser's UMD build loads its parts with a require() that esbuild cannot follow.
  mainFields: ['module', 'main'],
};

const fs = require('node:fs');
const path = require('node:path');

// koffi (the FFI that reaches the system's GSS-API library) is a native module: esbuild leaves it external
// and it is copied next to the bundles, with the prebuilt binaries for the platforms VS Code runs on.
const KOFFI_PLATFORMS = ['linux_x64', 'linux_arm64', 'linux_armhf', 'musl_x64', 'darwin_x64', 'darwin_arm64', 'win32_x64'];

function copyKoffi() {
  let from;
  try {
    from = path.dirname(require.resolve('koffi/package.json'));
  } catch {
    console.warn('koffi is not installed: the bundle will not offer GSSAPI');
    return;
  }
  const to = path.join(__dirname, 'dist', 'node_modules', 'koffi');
  fs.rmSync(to, { recursive: true, force: true });
  for (const file of ['package.json', 'index.js', 'LICENSE.txt']) {
    fs.mkdirSync(to, { recursive: true });
    fs.copyFileSync(path.join(from, file), path.join(to, file));
  }
  for (const platform of KOFFI_PLATFORMS) {
    const binary = path.join('build', 'koffi', platform, 'koffi.node');
    fs.mkdirSync(path.join(to, path.dirname(binary)), { recursive: true });
    fs.copyFileSync(path.join(from, binary), path.join(to, binary));
  }
}

async function main() {
  const contexts = await Promise.all([
    esbuild.context({ ...common, entryPoints: ['src/vscode/extension.ts'], outfile: 'dist/extension.js', external: ['vscode', 'bufferutil', 'utf-8-validate', 'koffi'] }),
    esbuild.context({ ...common, entryPoints: ['src/companion/extension.ts'], outfile: 'companion/dist/extension.js', external: ['vscode', 'bufferutil', 'utf-8-validate'] }),
    esbuild.context({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', external: ['bufferutil', 'utf-8-validate', 'koffi'], banner: { js: '#!/usr/bin/env node' } }),
  ]);
  if (watch) {
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  copyKoffi();
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
