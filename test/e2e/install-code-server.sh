#!/usr/bin/env bash
# Installs a real VS Code (the npm package code-server, pinned) plus playwright-core
# into a cache directory OUTSIDE the repo, for the end-to-end tests in test/e2e.
#
# Idempotent: exits at once when a complete install (marker file) is already there.
#
#   bash test/e2e/install-code-server.sh          # install (or no-op when cached)
#   SOCKS_RELAY_CACHE=/some/dir bash test/e2e/install-code-server.sh
#   FORCE=1 bash test/e2e/install-code-server.sh  # wipe and reinstall
#
# Layout (CACHE = ${SOCKS_RELAY_CACHE:-/root/.cache/socks-relay}):
#   $CACHE/code-server-4.100.3/node_modules/code-server/out/node/entry.js   (run with node)
#   $CACHE/code-server-4.100.3/.socks-relay-install-complete                (marker)
#   $CACHE/playwright-core-1.64.1/node_modules/playwright-core               (no browsers downloaded)
#   $CACHE/playwright-core-1.64.1/.socks-relay-install-complete             (marker)
# The browser is Debian's /usr/bin/chromium.
#
# Nothing here downloads anything but npm packages and Debian packages: code-server's own
# postinstall (which would run `npm install` in lib/vscode and fetch a ripgrep binary from
# GitHub) is replaced by the steps below, run with --ignore-scripts, with the native
# modules built by node-gyp against Node's headers and Debian's rg put in place.
set -euo pipefail

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.64.1}"
CACHE="${SOCKS_RELAY_CACHE:-/root/.cache/socks-relay}"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
PW_DIR="$CACHE/playwright-core-$PLAYWRIGHT_CORE_VERSION"
MARKER_NAME=".socks-relay-install-complete"

log() { printf '[install-code-server] %s\n' "$*" >&2; }

print_paths() {
  echo "CODE_SERVER_DIR=$CS_DIR"
  echo "CODE_SERVER_ENTRY=$CS_DIR/node_modules/code-server/out/node/entry.js"
  echo "PLAYWRIGHT_CORE_DIR=$PW_DIR/node_modules/playwright-core"
  echo "CHROMIUM=/usr/bin/chromium"
}

cs_complete() {
  [[ -f "$CS_DIR/$MARKER_NAME" && -f "$CS_DIR/node_modules/code-server/out/node/entry.js" ]]
}
pw_complete() {
  [[ -f "$PW_DIR/$MARKER_NAME" && -f "$PW_DIR/node_modules/playwright-core/package.json" ]]
}
APT_PACKAGES=(libkrb5-dev build-essential python3)
apt_complete() {
  [[ -x /usr/bin/chromium && -x /usr/bin/rg ]] || return 1
  local p
  for p in "${APT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || return 1
  done
}

if [[ "${FORCE:-0}" != 1 ]] && cs_complete && pw_complete && apt_complete; then
  log "already installed (cached)"
  print_paths
  exit 0
fi

mkdir -p "$CACHE"
# Serialize concurrent runs (a developer's shell and CI on one machine).
exec 9>"$CACHE/.install.lock"
if command -v flock >/dev/null; then flock 9; fi

# ---------------------------------------------------------------- Debian packages
ensure_apt() {
  local need=()
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  [[ -x /usr/bin/rg ]] || need+=(ripgrep)
  local p
  for p in "${APT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || need+=("$p")
  done
  if ((${#need[@]} == 0)); then return 0; fi
  log "apt-get install ${need[*]}"
  local SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Try without an update first (fast when the lists are fresh), then update and retry.
  if ! $SUDO apt-get install -y "${need[@]}" >&2; then
    $SUDO apt-get update >&2
    $SUDO apt-get install -y "${need[@]}" >&2
  fi
}
ensure_apt

# ---------------------------------------------------------------- npm environment
# (npm_config_unsafe_perm is not set: npm 11 warns it is unknown, and it only mattered for
# code-server's own postinstall check, which --ignore-scripts skips.)
export npm_config_yes=true
export npm_config_fund=false
export npm_config_audit=false
export npm_config_update_notifier=false
export npm_config_progress=false
# Build native addons against the machine's Node headers (no header download).
if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node.h ]]; then
  export npm_config_nodedir=/usr
fi
NODE_GYP=""
NPM_CLI_DIR="$(dirname "$(readlink -f "$(command -v npm)")")/.."
if [[ -f "$NPM_CLI_DIR/node_modules/node-gyp/bin/node-gyp.js" ]]; then
  NODE_GYP="node $NPM_CLI_DIR/node_modules/node-gyp/bin/node-gyp.js"
elif command -v node-gyp >/dev/null; then
  NODE_GYP="node-gyp"
else
  NODE_GYP="npx --yes node-gyp"
fi
JOBS="$(nproc 2>/dev/null || echo 2)"

gyp_rebuild() { # dir [extra node-gyp args...]
  local dir="$1"
  shift
  if [[ ! -f "$dir/binding.gyp" ]]; then
    log "ERROR: no binding.gyp in $dir"
    return 1
  fi
  log "node-gyp rebuild: ${dir#"$CACHE"/}"
  (cd "$dir" && $NODE_GYP rebuild --release --jobs="$JOBS" "$@" >"$dir/.node-gyp.log" 2>&1) || {
    tail -n 40 "$dir/.node-gyp.log" >&2
    return 1
  }
  # Intermediate objects are large and not needed at run time.
  rm -rf "$dir/build/Release/obj.target" "$dir/build/Release/.deps" "$dir/build/Release/obj" || true
}

# ---------------------------------------------------------------- code-server
install_code_server() {
  local tmp="$CS_DIR.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo '{"name":"socks-relay-code-server-cache","private":true}' >"$tmp/package.json"

  log "npm install code-server@$CODE_SERVER_VERSION (--ignore-scripts)"
  npm install --prefix "$tmp" --ignore-scripts --omit=dev --no-save \
    "code-server@$CODE_SERVER_VERSION" >&2

  local cs="$tmp/node_modules/code-server"
  local vs="$cs/lib/vscode"
  [[ -f "$cs/out/node/entry.js" && -f "$vs/package.json" ]] || {
    log "ERROR: unexpected code-server layout"
    return 1
  }

  # What code-server's postinstall.sh does, by hand and without install scripts.
  log "npm install in lib/vscode (--ignore-scripts)"
  (cd "$vs" && npm install --omit=dev --ignore-scripts >&2)
  ln -sfn node_modules "$vs/node_modules.asar"
  ln -sfn code-linux.sh "$vs/bin/remote-cli/code-server"
  ln -sfn browser-linux.sh "$vs/bin/helpers/browser.sh"
  log "npm install in lib/vscode/extensions (--ignore-scripts)"
  (cd "$vs/extensions" && npm install --omit=dev --ignore-scripts >&2)
  (cd "$vs/extensions" && node ./postinstall.mjs >/dev/null) || true # only trims typescript

  # ripgrep: @vscode/ripgrep's postinstall would download a binary; use Debian's rg.
  local rgdir found=0
  while IFS= read -r rgdir; do
    mkdir -p "$rgdir/bin"
    cp -f /usr/bin/rg "$rgdir/bin/rg"
    chmod 755 "$rgdir/bin/rg"
    found=1
    log "rg -> ${rgdir#"$tmp"/}/bin/rg"
  done < <(find "$tmp/node_modules" -type d -path '*/node_modules/@vscode/ripgrep' -prune)
  ((found)) || { log "ERROR: no @vscode/ripgrep found"; return 1; }

  # Native modules.
  local m
  for m in @vscode/spdlog kerberos native-watchdog node-pty @vscode/deviceid; do
    gyp_rebuild "$vs/node_modules/$m"
  done
  # argon2 0.31 builds through @mapbox/node-pre-gyp (whose install would try GitHub first);
  # give node-gyp the variables node-pre-gyp would, so the addon lands where argon2 looks.
  gyp_rebuild "$tmp/node_modules/argon2" --module_name=argon2 \
    --module_path="$tmp/node_modules/argon2/lib/binding/napi-v3" --napi_build_version=3

  # Sanity: every native module loads in this Node.
  log "checking native modules load"
  (cd "$vs" && node -e '
    for (const m of ["@vscode/spdlog","kerberos","native-watchdog","node-pty","@vscode/deviceid","@parcel/watcher"]) require(m);
  ') >&2
  (cd "$tmp" && node -e 'require("argon2")') >&2
  "$vs/node_modules/@vscode/ripgrep/bin/rg" --version >/dev/null

  node "$cs/out/node/entry.js" --version >&2

  printf 'code-server %s installed %s\n' "$CODE_SERVER_VERSION" "$(date -u +%FT%TZ)" >"$tmp/$MARKER_NAME"
  rm -rf "$CS_DIR"
  mv "$tmp" "$CS_DIR"
}

# ---------------------------------------------------------------- playwright-core
install_playwright_core() {
  local tmp="$PW_DIR.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo '{"name":"socks-relay-playwright-cache","private":true}' >"$tmp/package.json"
  log "npm install playwright-core@$PLAYWRIGHT_CORE_VERSION"
  # playwright-core has no install script and never downloads a browser by itself.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$tmp" --ignore-scripts --no-save \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  (cd "$tmp" && node -e 'require("playwright-core")')
  printf 'playwright-core %s installed %s\n' "$PLAYWRIGHT_CORE_VERSION" "$(date -u +%FT%TZ)" >"$tmp/$MARKER_NAME"
  rm -rf "$PW_DIR"
  mv "$tmp" "$PW_DIR"
}

if [[ "${FORCE:-0}" == 1 ]] || ! cs_complete; then
  start=$SECONDS
  install_code_server
  log "code-server installed in $((SECONDS - start))s"
fi
if [[ "${FORCE:-0}" == 1 ]] || ! pw_complete; then
  install_playwright_core
fi

log "done"
print_paths
