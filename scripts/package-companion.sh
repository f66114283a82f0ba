#!/usr/bin/env bash
# Builds the companion extension (extensionKind "ui") into socks-relay-egress.vsix at the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
node esbuild.js --production
mkdir -p companion/media
cp LICENSE companion/LICENSE
cp media/icon.png companion/media/icon.png
cd companion
../node_modules/.bin/vsce package --no-dependencies --allow-missing-repository --no-rewrite-relative-links --out ../socks-relay-egress.vsix >/dev/null
echo "socks-relay-egress.vsix"
