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

async function main() {
  const contexts = await Promise.all([
    esbuild.context({ ...common, entryPoints: ['src/vscode/extension.ts'], outfile: 'dist/extension.js', external: ['vscode', 'bufferutil', 'utf-8-validate'] }),
    esbuild.context({ ...common, entryPoints: ['src/companion/extension.ts'], outfile: 'companion/dist/extension.js', external: ['vscode', 'bufferutil', 'utf-8-validate'] }),
    esbuild.context({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', external: ['bufferutil', 'utf-8-validate'], banner: { js: '#!/usr/bin/env node' } }),
  ]);
  if (watch) {
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
